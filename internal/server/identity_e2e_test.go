package server_test

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/server"
)

// cliAs runs the runway CLI in dir as a user of its own config dir (xdg):
// no --server and no --token, only what `runway login` recorded there.
func (c *cluster) cliAs(dir, xdg string, env []string, args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command(runwayBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "XDG_CONFIG_HOME="+xdg, "RUNWAY_SERVER=", "RUNWAY_TOKEN=", "RUNWAY_CONTEXT=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDeployerForCI: an admin makes a staging deployer of project a for CI;
// from another directory, with only its token file, CI logs in and deploys
// to staging; production, project b's service of the same name, user
// management and the audit log are refused with what is needed; the audit
// log shows all of it and verify catches an entry edited behind the
// server's back.
func TestDeployerForCI(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	envs := "environment \"staging\" {}\nenvironment \"production\" {\n  protected = true\n}\n"
	dirA := c.writeProject("a", "project \"a\" {\n  domain = \"a.localhost\"\n}\n"+envs, map[string]string{"web": ""})
	dirB := c.writeProject("b", "project \"b\" {\n  domain = \"b.localhost\"\n}\n"+envs, map[string]string{"web": ""})

	out, err := c.cliIn(dirA, "user", "create", "ci", "--role", "staging_deployer", "--project", "a", "--expires", "720h", "--output", "json")
	if err != nil {
		t.Fatalf("runway user create: %v\n%s", err, out)
	}
	var created apiwire.UserCreated
	if err := json.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.Token, "rwy_") {
		t.Fatalf("user create output: %v\n%s", err, out)
	}
	// CI's machine: another directory, its own config dir, the token in a file.
	ci := t.TempDir()
	xdg := filepath.Join(ci, "config")
	tokenFile := filepath.Join(ci, "ci.token")
	if err := os.WriteFile(tokenFile, []byte(created.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serverURL := "http://" + c.serverAddr
	if out, err := c.cliAs(ci, xdg, nil, "login", "--server", serverURL, "--token-file", tokenFile, "--name", "ci"); err != nil || !strings.Contains(out, "logged in to "+serverURL+" as ci (staging_deployer@a)") {
		t.Fatalf("runway login: %v\n%s", err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(xdg, "runway", "config.toml"))
	if err != nil || strings.Contains(string(cfg), created.Token) {
		t.Fatalf("config.toml (%v) holds the token instead of its file:\n%s", err, cfg)
	}
	if st, _ := os.Stat(filepath.Join(xdg, "runway", "config.toml")); st == nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config.toml mode %v, want 0600", st.Mode())
	}
	out, err = c.cliAs(ci, xdg, nil, "whoami")
	if err != nil || !strings.Contains(out, "user:      ci") || !strings.Contains(out, "deploy to: staging of project a") || !strings.Contains(out, "(context ci)") {
		t.Fatalf("runway whoami: %v\n%s", err, out)
	}
	if strings.Contains(out, created.Token) {
		t.Fatal("whoami printed the token")
	}

	// Staging of project a: allowed.
	if out, err := c.cliAs(dirA, xdg, nil, "deploy", "web", "--env", "staging", "--version", "1", "--yes", "--wait"); err != nil {
		t.Fatalf("ci deploy to staging: %v\n%s", err, out)
	}
	out, err = c.cliAs(dirA, xdg, nil, "releases", "web", "--env", "staging")
	if err != nil || !strings.Contains(out, " ci ") {
		t.Fatalf("runway releases does not show the actor: %v\n%s", err, out)
	}
	// A changed copy of project a's runway.hcl, for an apply.
	changed := filepath.Join(ci, "a")
	if err := os.MkdirAll(changed, 0o755); err != nil {
		t.Fatal(err)
	}
	hcl, _ := os.ReadFile(filepath.Join(dirA, "runway.hcl"))
	if err := os.WriteFile(filepath.Join(changed, "runway.hcl"), append(hcl, "environment \"qa\" {}\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		dir  string
		args []string
		want string
	}{
		// (deploy reads the service's status first, which is refused already)
		{dirA, []string{"deploy", "web", "--env", "production", "--version", "1", "--yes"},
			"in environment production of project a needs role production_deployer, production_admin, read_only or global_admin; ci has staging_deployer@a"},
		{dirB, []string{"deploy", "web", "--env", "staging", "--version", "1", "--yes"},
			"in environment staging of project b needs role staging_deployer, staging_admin, read_only or global_admin; ci has staging_deployer@a"},
		{dirA, []string{"rollback", "web", "--env", "production", "--yes"},
			"forbidden: release.rollback in environment production of project a needs role production_deployer, production_admin or global_admin; ci has staging_deployer@a"},
		{ci, []string{"user", "list"}, "forbidden: user.read needs role read_only or global_admin"},
		{ci, []string{"user", "create", "eve", "--role", "global_admin"}, "forbidden: user.write needs role global_admin"},
		{ci, []string{"audit"}, "forbidden: audit.read needs role read_only or global_admin"},
		{changed, []string{"project", "apply", "--yes"}, "forbidden: project.apply of project a needs role global_admin"},
	}
	for _, r := range refused {
		out, err := c.cliAs(r.dir, xdg, nil, r.args...)
		if err == nil || !strings.Contains(out, r.want) {
			t.Errorf("runway %s as ci: %v\n%s\nwant %q", strings.Join(r.args, " "), err, out, r.want)
		}
		if code := exitCode(err); code != 1 {
			t.Errorf("runway %s as ci: exit %d, want 1", strings.Join(r.args, " "), code)
		}
	}

	// The admin sees it all in the audit log.
	out, err = c.cliIn(dirA, "audit", "--actor", "ci", "--output", "json")
	if err != nil {
		t.Fatalf("runway audit: %v\n%s", err, out)
	}
	var entries []apiwire.AuditEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("audit output: %v\n%s", err, out)
	}
	var deployed, forbidden bool
	for _, e := range entries {
		deployed = deployed || (e.Action == "release.deploy" && e.Target == "a/staging/web" && e.Outcome == "201 Created" && e.TokenID == created.TokenInfo.ID && e.Source == "127.0.0.1")
		forbidden = forbidden || (e.Action == "release.rollback" && e.Target == "a/production/web" && e.Outcome == "403 Forbidden")
		if !strings.HasPrefix(e.RequestDigest, "sha-256=:") {
			t.Errorf("entry %d has no request digest: %+v", e.Seq, e)
		}
	}
	if !deployed || !forbidden {
		t.Errorf("audit of ci lacks the deploy (%v) or the refusal (%v):\n%s", deployed, forbidden, out)
	}
	if out, err := c.cliIn(dirA, "audit", "verify"); err != nil || !strings.Contains(out, "audit log intact") {
		t.Fatalf("runway audit verify: %v\n%s", err, out)
	}

	// Someone with the database file edits the deploy's entry (after
	// dropping the trigger that refuses it, which they put back).
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.serverDir, "runway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seq int64
	if err := db.QueryRow(`SELECT seq FROM audit WHERE actor = 'ci' AND outcome = '201 Created' ORDER BY seq LIMIT 1`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET actor = 'admin' WHERE seq = ` + itoa(seq),
		`CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	out, err = c.cliIn(dirA, "audit", "verify")
	if exitCode(err) != 1 || !strings.Contains(out, "audit log TAMPERED: entry "+itoa(seq)+" was edited") {
		t.Fatalf("runway audit verify after an edit: %v\n%s", err, out)
	}
	// No token in the server's log, the admin's or CI's.
	admin, _ := os.ReadFile(filepath.Join(c.serverDir, server.AdminTokenFile))
	if log := c.server.out.String(); strings.Contains(log, created.Token) || strings.Contains(log, strings.TrimSpace(string(admin))) || strings.Contains(log, "rwy_") {
		t.Errorf("a token in the server's output:\n%s", log)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// TestTokenStaysWithItsServer: with a context current, a command pointed at
// another server (--server) sends no token at all, and RUNWAY_TOKEN still
// overrides.
func TestTokenStaysWithItsServer(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	var mu sync.Mutex
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer other.Close()
	home := t.TempDir()
	xdg := filepath.Join(home, "config")
	tokenFile := filepath.Join(c.serverDir, server.AdminTokenFile)
	if out, err := c.cliAs(home, xdg, nil, "login", "--server", "http://"+c.serverAddr, "--token-file", tokenFile); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	if out, err := c.cliAs(home, xdg, nil, "whoami"); err != nil || !strings.Contains(out, "user:      admin") {
		t.Fatalf("whoami against the context's server: %v\n%s", err, out)
	}
	out, err := c.cliAs(home, xdg, nil, "--server", other.URL, "whoami")
	if err == nil {
		t.Fatalf("whoami against the other server succeeded:\n%s", out)
	}
	_, _ = c.cliAs(home, xdg, []string{"RUNWAY_SERVER=" + other.URL}, "whoami")
	_, _ = c.cliAs(home, xdg, []string{"RUNWAY_TOKEN=rwy_explicit"}, "--server", other.URL, "whoami")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[0] != "" || seen[1] != "" || seen[2] != "Bearer rwy_explicit" {
		t.Fatalf("the other server saw Authorization %q; want none, none, then the explicit RUNWAY_TOKEN", seen)
	}
}

// TestServerOverTLS: a server with --tls-local-ca serves https with a
// certificate of the agent's local CA; runway login --ca-file trusts it and
// the context keeps doing so. Without TLS, a non-loopback --listen is refused.
func TestServerOverTLS(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	out, err := exec.Command(runwayBin, "server", "--data-dir", filepath.Join(t.TempDir(), "s"), "--listen", "0.0.0.0:0",
		"--agent-token-file", filepath.Join(c.agentDir, agent.TokenFileName)).CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), "--listen 0.0.0.0:0 is not a loopback address: API tokens would cross the network in clear") {
		t.Fatalf("plain HTTP on every address: %v\n%s", err, out)
	}
	dataDir := filepath.Join(t.TempDir(), "tls")
	addr := freeAddrs(t, 1)[0]
	srv := startProc(t, "tls-server", []string{"TEST_MARK=" + c.mark}, "server", "--data-dir", dataDir, "--listen", addr,
		"--agent-url", "http://"+c.agentAddr, "--agent-token-file", filepath.Join(c.agentDir, agent.TokenFileName),
		"--tls-local-ca", filepath.Join(c.agentDir, "ca"))
	defer srv.stop(t, syscall.SIGTERM)
	waitFor(t, 30*time.Second, "the TLS server's admin token", func() bool {
		if srv.exited() {
			t.Fatalf("tls server exited: %v\n%s", srv.err, srv.out)
		}
		_, err := os.Stat(filepath.Join(dataDir, server.AdminTokenFile))
		return err == nil
	})
	_, port, _ := strings.Cut(addr, ":")
	url := "https://localhost:" + port
	home := t.TempDir()
	xdg := filepath.Join(home, "config")
	// Without the CA the certificate is not trusted.
	var out2 string
	waitFor(t, 30*time.Second, "the TLS server to answer", func() bool {
		out2, err = c.cliAs(home, xdg, nil, "login", "--server", url, "--token-file", filepath.Join(dataDir, server.AdminTokenFile))
		return strings.Contains(out2, "certificate")
	})
	if err == nil {
		t.Fatalf("login without the CA succeeded:\n%s", out2)
	}
	if out, err := c.cliAs(home, xdg, nil, "login", "--server", url, "--token-file", filepath.Join(dataDir, server.AdminTokenFile),
		"--ca-file", filepath.Join(c.agentDir, "ca", "ca.crt")); err != nil || !strings.Contains(out, "logged in to "+url+" as admin") {
		t.Fatalf("login with the CA: %v\n%s", err, out)
	}
	if out, err := c.cliAs(home, xdg, nil, "whoami"); err != nil || !strings.Contains(out, "server:    "+url) {
		t.Fatalf("whoami over TLS: %v\n%s", err, out)
	}
}
