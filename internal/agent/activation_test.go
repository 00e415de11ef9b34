package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/activation"
	"github.com/runwayhq/runway/internal/agentapi"
)

// TestSystemdSocketActivation starts the agent binary as systemd does: the
// sockets on fds 3 and on, LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID set to
// the agent's own pid (a shell sets LISTEN_PID=$$, then execs the agent, so
// the pid is the same). The agent serves its API and proxy on them instead
// of binding --listen and --http; a request sent while no agent runs waits
// in the backlog and is answered by the next agent.
func TestSystemdSocketActivation(t *testing.T) {
	mark := testMark(t)
	dir := filepath.Join(t.TempDir(), "agent")
	lo, hi := portRange()
	var ls []activation.Listener
	for _, name := range []string{"http", "api"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, activation.Listener{Name: name, Listener: ln})
	}
	httpAddr, apiAddr := ls[0].Addr().String(), ls[1].Addr().String()
	files, err := activation.NewFiles(ls)
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	for _, l := range ls {
		l.Close()
	}
	start := func() *agentProc {
		t.Helper()
		// --listen and --http name addresses nobody may bind: only the
		// passed sockets can serve.
		cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, runwayBin, "agent", "--data-dir", dir,
			"--listen", "127.0.0.1:1", "--http", "192.0.2.1:1", "--https", "off", "--port-range", fmt.Sprintf("%d-%d", lo, hi))
		if err := files.Pass(cmd); err != nil {
			t.Fatal(err)
		}
		// As systemd: LISTEN_PID names the process, no RUNWAY_LISTEN_PPID.
		cmd.Env = append(cmd.Env, "TEST_MARK="+mark, activation.EnvParent+"=")
		p := &agentProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
		cmd.Stderr = p.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- cmd.Wait() }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-p.done
			if t.Failed() {
				t.Logf("agent %d stderr:\n%s", cmd.Process.Pid, p.stderr)
			}
		})
		return p
	}
	c := agentapi.NewClient("http://"+apiAddr, "")
	a1 := start()
	waitFor(t, 30*time.Second, "the agent on the passed API socket", func() bool {
		h, err := c.Health(context.Background())
		return err == nil && h.PID == a1.cmd.Process.Pid
	})
	// No route yet: the proxy answers 404 on the passed HTTP socket.
	get := func() (int, error) {
		hc := &http.Client{Timeout: 30 * time.Second}
		defer hc.CloseIdleConnections()
		resp, err := hc.Get("http://" + httpAddr + "/")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(); err != nil || code != http.StatusNotFound {
		t.Fatalf("GET through the passed HTTP socket: %d %v, want the proxy's 404", code, err)
	}
	a1.cmd.Process.Kill()
	a1.wait(t)
	// Nobody accepts now: the connection is made (not refused) and the
	// request waits in the backlog until the next agent reads it.
	conn, err := net.DialTimeout("tcp", httpAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("connect while no agent runs: %v", err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: nothing.localhost\r\nConnection: close\r\n\r\n")
	a2 := start()
	conn.SetReadDeadline(time.Now().Add(40 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("request sent while no agent ran: %v %v, want the next agent's 404", resp, err)
	}
	resp.Body.Close()
	if h, err := c.Health(context.Background()); err != nil || h.PID != a2.cmd.Process.Pid {
		t.Errorf("health after the restart: %+v %v, want pid %d", h, err, a2.cmd.Process.Pid)
	}
}
