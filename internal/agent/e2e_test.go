package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/supervisor"
)

type agentProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func runAgentBinary(t *testing.T, mark, dir, addr, ports string, extra ...string) *agentProc {
	t.Helper()
	args := append([]string{"agent", "--data-dir", dir, "--listen", addr, "--port-range", ports, "--http", "127.0.0.1:0", "--https", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(runwayBin, args...)
	cmd.Env = append(os.Environ(), "TEST_MARK="+mark)
	p := &agentProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		t.Logf("agent %d stderr:\n%s", cmd.Process.Pid, p.stderr)
	})
	return p
}

func (p *agentProc) wait(t *testing.T) error {
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("agent did not exit")
		return nil
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func statusJSON(t *testing.T, dir, url string) []agentapi.GroupStatus {
	t.Helper()
	out, err := exec.Command(runwayBin, "agent", "status", "--data-dir", dir, "--agent-url", url, "--output", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("runway agent status: %v\n%s", err, out)
	}
	var gs []agentapi.GroupStatus
	if err := json.Unmarshal(out, &gs); err != nil {
		t.Fatalf("status json: %v\n%s", err, out)
	}
	return gs
}

// TestKill9AgentReadoptsInstances runs the real binary: kill -9 of the
// agent leaves its instances running and the next agent adopts the same
// pids, keeps checking them, and stops them on request.
func TestKill9AgentReadoptsInstances(t *testing.T) {
	mark := testMark(t)
	dir := filepath.Join(t.TempDir(), "agent")
	addr := freeAddr(t)
	url := "http://" + addr
	lo, hi := portRange()
	ports := fmt.Sprintf("%d-%d", lo, hi)
	ctx := context.Background()

	a1 := runAgentBinary(t, mark, dir, addr, ports)
	c := agentapi.NewClient(url, "")
	waitFor(t, 30*time.Second, "agent up", func() bool { _, err := c.Health(ctx); return err == nil })
	tok, err := os.ReadFile(filepath.Join(dir, TokenFileName))
	if err != nil {
		t.Fatal(err)
	}
	c.Token = strings.TrimSpace(string(tok))
	if _, _, err := c.CreateGroup(ctx, helloSpec("hello-r1", mark, 3)); err != nil {
		t.Fatal(err)
	}
	var before []agentapi.InstanceStatus
	waitFor(t, 30*time.Second, "3 healthy", func() bool {
		g, err := c.Group(ctx, "hello-r1")
		before = g.Instances
		return err == nil && g.Counts["healthy"] == 3
	})
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{"hello.localhost"},
		Backends: []agentapi.Backend{{Group: "hello-r1", Weight: 0}, {Group: "hello-r0", Weight: 100}}}); err == nil {
		t.Error("route to a missing group accepted")
	}
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{"hello.localhost"},
		Backends: []agentapi.Backend{{Group: "hello-r1", Weight: 0}}}); err == nil {
		t.Error("all-zero route accepted")
	}
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{"hello.localhost"},
		Backends: []agentapi.Backend{}}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(runwayBin, "agent", "status", "--data-dir", dir, "--agent-url", url).CombinedOutput()
	if !strings.Contains(string(out), "ROUTE development/hello  hosts: hello.localhost  backends: (none)") {
		t.Errorf("status lacks the route:\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "3/3 healthy") {
		t.Errorf("status table: %v\n%s", err, out)
	}
	for _, in := range before {
		if !strings.Contains(string(out), fmt.Sprint(in.PID)) {
			t.Errorf("status table lacks pid %d:\n%s", in.PID, out)
		}
	}

	// kill -9 the agent: instances keep running.
	a1.cmd.Process.Signal(syscall.SIGKILL)
	a1.wait(t)
	for _, in := range before {
		if !alive(in.PID) {
			t.Fatalf("instance %s (pid %d) died with the agent", in.ID, in.PID)
		}
	}

	// A new agent adopts the same pids.
	a2 := runAgentBinary(t, mark, dir, addr, ports)
	waitFor(t, 30*time.Second, "agent up again", func() bool { _, err := c.Health(ctx); return err == nil })
	var after []agentapi.InstanceStatus
	waitFor(t, 30*time.Second, "adopted instances healthy", func() bool {
		gs := statusJSON(t, dir, url)
		if len(gs) != 1 || gs[0].Counts["healthy"] != 3 {
			return false
		}
		after = gs[0].Instances
		return true
	})
	for i := range before {
		if after[i].ID != before[i].ID || after[i].PID != before[i].PID || !after[i].Adopted {
			t.Errorf("instance %d: before %+v after %+v", i, before[i], after[i])
		}
	}
	// It keeps watching them: an adopted instance killed is replaced.
	syscall.Kill(after[1].PID, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "killed instance replaced", func() bool {
		in, err := c.Instance(ctx, "hello-r1", after[1].ID)
		// (Restarts may pass 1: a first start can fail when another process
		// took the port meanwhile, and is retried.)
		return err == nil && in.State == "healthy" && in.PID != after[1].PID && in.Restarts >= 1
	})
	g, _ := c.Group(ctx, "hello-r1")

	// SIGTERM: the agent exits and leaves instances running.
	a2.cmd.Process.Signal(syscall.SIGTERM)
	if err := a2.wait(t); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
	for _, in := range g.Instances {
		if !alive(in.PID) {
			t.Errorf("instance %s stopped on SIGTERM without --stop-instances", in.ID)
		}
	}

	// --stop-instances: adopted, then all stopped on SIGTERM.
	a3 := runAgentBinary(t, mark, dir, addr, ports, "--stop-instances")
	waitFor(t, 30*time.Second, "third agent healthy", func() bool {
		g, err := c.Group(ctx, "hello-r1")
		return err == nil && g.Counts["healthy"] == 3
	})
	a3.cmd.Process.Signal(syscall.SIGTERM)
	if err := a3.wait(t); err != nil {
		t.Errorf("agent exit: %v", err)
	}
	for _, in := range g.Instances {
		if alive(in.PID) {
			t.Errorf("instance %s (pid %d) still running after --stop-instances", in.ID, in.PID)
		}
	}

	// A corrupt state file: the agent refuses to start, naming the file.
	state := filepath.Join(dir, supervisor.StateFileName)
	os.WriteFile(state, []byte("{not json"), 0o600)
	cmd := exec.Command(runwayBin, "agent", "--data-dir", dir, "--listen", addr, "--http", "127.0.0.1:0", "--https", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "TEST_MARK="+mark)
	out, err = cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), state) || !strings.Contains(string(out), "mv "+state) {
		t.Errorf("corrupt state: %v\n%s", err, out)
	}
}

func TestAgentCLIUsage(t *testing.T) {
	out, err := exec.Command(runwayBin, "agent", "--port-range", "9-1").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--port-range") {
		t.Errorf("bad port range: %v %s", err, out)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	out, err = exec.Command(runwayBin, "agent", "--data-dir", filepath.Join(f, "sub"), "--listen", freeAddr(t), "--http", "127.0.0.1:0", "--https", "127.0.0.1:0").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "data dir") {
		t.Errorf("unwritable data dir: %v %s", err, out)
	}
	out, err = exec.Command(runwayBin, "agent", "status", "--data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "agent.token") {
		t.Errorf("status without token: %v %s", err, out)
	}
}
