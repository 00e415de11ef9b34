package agent

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A data dir that already existed with mode 0755, holding a 0644 token and
// 0644 logs of an earlier run, is made private on start, and what the agent
// writes afterwards (state, routes, logs) is private too.
func TestAgentDataDirMadePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "agent")
	oldLogs := filepath.Join(dir, "logs", "old-group")
	if err := os.MkdirAll(oldLogs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, b := range map[string]string{filepath.Join(dir, TokenFileName): "0123456789abcdef0123456789abcdef0123\n",
		filepath.Join(oldLogs, "0a1b2c3d.log"): "2026-12-01T00:00:00Z stderr FATAL: DATABASE_URL is not set\n"} {
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mark := testMark(t)
	_, c := startAgent(t, Options{DataDir: dir})
	ctx := context.Background()
	st, _, err := c.CreateGroup(ctx, helloSpec("perm-r1", mark, 1))
	if err != nil {
		t.Fatal(err)
	}
	id := st.Instances[0].ID
	logPath := filepath.Join(dir, "logs", "perm-r1", id+".log")
	waitFor(t, 30*time.Second, "the instance's first log line", func() bool {
		st, err := os.Stat(logPath)
		return err == nil && st.Size() > 0
	})
	want := map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "logs"): 0o700, oldLogs: 0o700,
		filepath.Join(dir, TokenFileName): 0o600, filepath.Join(oldLogs, "0a1b2c3d.log"): 0o600,
		filepath.Join(dir, "state.json"): 0o600, filepath.Join(dir, "logs", "perm-r1"): 0o700, logPath: 0o600}
	for p, m := range want {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != m {
			t.Errorf("%s: mode %o, want %o", p, st.Mode().Perm(), m)
		}
	}
}
