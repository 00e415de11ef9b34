package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
)

// sleepersOf lists the live `sleep` processes that carry instance id's
// marker in their environment.
func sleepersOf(id string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
		if strings.TrimSpace(string(comm)) == "sleep" && bytes.Contains(env, []byte("RUNWAY_INSTANCE="+id+"\x00")) {
			out = append(out, pid)
		}
	}
	return out
}

// An instance that starts `setsid sleep 1000 &` (a child in its own session,
// out of the instance's process group): the child stops with its instance on
// a scale down; and after `kill -9` of the agent and of the instance's main
// process, the next agent does not adopt the child as the instance but stops
// it and starts a new process.
func TestSetsidChildOfInstance(t *testing.T) {
	mark := testMark(t)
	dir := filepath.Join(t.TempDir(), "agent")
	addr := freeAddr(t)
	lo, hi := portRange()
	ports := fmt.Sprintf("%d-%d", lo, hi)
	ctx := context.Background()
	a1 := runAgentBinary(t, mark, dir, addr, ports)
	c := agentapi.NewClient("http://"+addr, "")
	waitFor(t, 30*time.Second, "agent up", func() bool { _, err := c.Health(ctx); return err == nil })
	tok, err := os.ReadFile(filepath.Join(dir, TokenFileName))
	if err != nil {
		t.Fatal(err)
	}
	c.Token = strings.TrimSpace(string(tok))
	spec := helloSpec("setsid-r1", mark, 2)
	spec.Command = []string{"/bin/sh", "-c", "setsid sleep 1000 & exec ./hello --port {{PORT}}"}
	if _, _, err := c.CreateGroup(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var ins [2]struct {
		ID           string
		pid, sleeper int
	}
	waitFor(t, 30*time.Second, "2 healthy, each with its setsid sleep", func() bool {
		g, err := c.Group(ctx, "setsid-r1")
		if err != nil || g.Counts["healthy"] != 2 {
			return false
		}
		for i, in := range g.Instances {
			s := sleepersOf(in.ID)
			if len(s) != 1 {
				return false
			}
			ins[i].ID, ins[i].pid, ins[i].sleeper = in.ID, in.PID, s[0]
		}
		return true
	})

	// Scale down: the removed instance's setsid child goes with it.
	g, err := c.ScaleGroup(ctx, "setsid-r1", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	kept, removed := ins[0], ins[1]
	if g.Instances[0].ID != kept.ID {
		kept, removed = ins[1], ins[0]
	}
	if alive(removed.pid) || alive(removed.sleeper) {
		t.Errorf("after the scale down: main %d alive %v, setsid child %d alive %v", removed.pid, alive(removed.pid), removed.sleeper, alive(removed.sleeper))
	}

	// kill -9 the agent, then the instance's main process: only its setsid
	// child is left, with the instance's marker.
	a1.cmd.Process.Signal(syscall.SIGKILL)
	a1.wait(t)
	syscall.Kill(kept.pid, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "the main process gone", func() bool { return !alive(kept.pid) })
	if !alive(kept.sleeper) {
		t.Fatal("the setsid child died with its parent")
	}
	a2 := runAgentBinary(t, mark, dir, addr, ports, "--stop-instances")
	waitFor(t, 30*time.Second, "a new healthy process for the instance", func() bool {
		in, err := c.Instance(ctx, "setsid-r1", kept.ID)
		return err == nil && in.State == "healthy" && in.PID != kept.pid
	})
	in, _ := c.Instance(ctx, "setsid-r1", kept.ID)
	if in.PID == kept.sleeper || in.Adopted {
		t.Errorf("instance after the restart: %+v; the setsid child %d was adopted", in, kept.sleeper)
	}
	waitFor(t, 30*time.Second, "the old setsid child stopped", func() bool { return !alive(kept.sleeper) })
	if err := c.DeleteGroup(ctx, "setsid-r1", true, 0); err != nil {
		t.Fatal(err)
	}
	if left := sleepersOf(kept.ID); len(left) != 0 {
		t.Errorf("setsid children left after the deletion: %v", left)
	}
	// A graceful stop also removes the agent's cgroup directories.
	a2.cmd.Process.Signal(syscall.SIGTERM)
	if err := a2.wait(t); err != nil {
		t.Errorf("agent exit after SIGTERM: %v", err)
	}
}
