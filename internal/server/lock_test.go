package server_test

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agent"
)

// TestTwoServersOneDataDir: a second server on a data dir in use exits at
// once with status 1, naming the first server's pid; the first keeps
// serving.
func TestTwoServersOneDataDir(t *testing.T) {
	c := startCluster(t)
	second := startProc(t, "server 2", []string{"TEST_MARK=" + c.mark}, "server", "--data-dir", c.serverDir,
		"--listen", freeAddrs(t, 1)[0], "--agent-url", "http://"+c.agentAddr,
		"--agent-token-file", filepath.Join(c.agentDir, agent.TokenFileName))
	select {
	case <-second.done:
	case <-time.After(30 * time.Second):
		second.stop(t, 9)
		t.Fatalf("the second server did not exit:\n%s", second.out)
	}
	var ee *exec.ExitError
	if !errors.As(second.err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("second server: %v, want exit status 1\n%s", second.err, second.out)
	}
	want := fmt.Sprintf("is in use by another runway server (pid %d)", c.server.cmd.Process.Pid)
	if !strings.Contains(second.out.String(), want) {
		t.Errorf("second server's error lacks %q:\n%s", want, second.out)
	}
	if err := c.api.Health(t.Context()); err != nil {
		t.Errorf("first server after the second one's attempt: %v", err)
	}
}
