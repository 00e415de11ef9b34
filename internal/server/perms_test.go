package server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/server"
)

// A data dir that already existed with mode 0755, holding a 0644 token, is
// made private on start: the directory 0700, runway.db (and its -wal), the
// admin token and everything else 0600.
func TestServerDataDirMadePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "server")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tasks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, server.AdminTokenFile), []byte("rwy_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	agentToken := filepath.Join(t.TempDir(), "agent.token")
	if err := os.WriteFile(agentToken, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := server.Open(context.Background(), server.Options{DataDir: dir, Listen: "127.0.0.1:0",
		AgentURL: "http://127.0.0.1:1", AgentTokenFile: agentToken})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	waitFor(t, 30*time.Second, "the server's API", func() bool {
		resp, err := http.Get("http://" + s.Addr() + "/v1/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	want := map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "tasks"): 0o700,
		filepath.Join(dir, server.AdminTokenFile): 0o600, filepath.Join(dir, "runway.db"): 0o600}
	if _, err := os.Stat(filepath.Join(dir, "runway.db-wal")); err == nil {
		want[filepath.Join(dir, "runway.db-wal")] = 0o600
	}
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
