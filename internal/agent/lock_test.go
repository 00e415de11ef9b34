package agent

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
)

// TestTwoAgentsOneDataDir: a second agent on a data dir in use exits at once
// with status 1, naming the first agent's pid, and leaves the first one
// serving.
func TestTwoAgentsOneDataDir(t *testing.T) {
	mark := testMark(t)
	dir := filepath.Join(t.TempDir(), "agent")
	lo, hi := portRange()
	ports := fmt.Sprintf("%d-%d", lo, hi)
	addr := freeAddr(t)
	a1 := runAgentBinary(t, mark, dir, addr, ports)
	c := agentapi.NewClient("http://"+addr, "")
	var h agentapi.Health
	waitFor(t, 30*time.Second, "agent up", func() bool {
		var err error
		h, err = c.Health(context.Background())
		return err == nil
	})
	if h.PID != a1.cmd.Process.Pid {
		t.Errorf("health reports pid %d, want the agent's %d", h.PID, a1.cmd.Process.Pid)
	}

	a2 := runAgentBinary(t, mark, dir, freeAddr(t), ports)
	err := a2.wait(t)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("second agent: %v, want exit status 1\n%s", err, a2.stderr)
	}
	want := fmt.Sprintf("is in use by another runway agent (pid %d)", a1.cmd.Process.Pid)
	if !strings.Contains(a2.stderr.String(), want) {
		t.Errorf("second agent's error lacks %q:\n%s", want, a2.stderr)
	}
	if _, err := c.Health(context.Background()); err != nil {
		t.Errorf("first agent after the second one's attempt: %v", err)
	}
}
