package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/store"
)

// runway runs the runway binary with args (no server flags) and returns its
// combined output.
func (c *cluster) runway(args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command(runwayBin, args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "TEST_MARK="+c.mark)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// backup runs `runway server backup` of the cluster's server to file.
func (c *cluster) backup(file string) {
	c.t.Helper()
	out, err := c.runway("server", "backup", "--data-dir", c.serverDir, file)
	if err != nil || !strings.Contains(out, "backed up") {
		c.t.Fatalf("runway server backup: %v\n%s", err, out)
	}
	c.t.Log(strings.TrimSpace(out))
}

// resync runs `runway server resync` with args on the cluster's server.
func (c *cluster) resync(args ...string) string {
	c.t.Helper()
	out, err := c.runway(append([]string{"server", "resync", "--data-dir", c.serverDir, "--agent-url", "http://" + c.agentAddr}, args...)...)
	if err != nil {
		c.t.Fatalf("runway server resync: %v\n%s", err, out)
	}
	c.t.Logf("runway server resync:\n%s", out)
	return out
}

// restoreDB replaces the (stopped) server's database with file, as an
// operator restoring a backup or a VM snapshot without its WAL would.
func (c *cluster) restoreDB(file string) {
	c.t.Helper()
	db := filepath.Join(c.serverDir, "runway.db")
	b, err := os.ReadFile(file)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, f := range []string{db + "-wal", db + "-shm"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.t.Fatal(err)
		}
	}
	if err := os.WriteFile(db, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// startServerFails starts a server on the cluster's data dir and returns its
// output once it has exited, failing the test if it keeps running.
func (c *cluster) startServerFails() string {
	c.t.Helper()
	p := startProc(c.t, "server", []string{"TEST_MARK=" + c.mark}, "server", "--data-dir", c.serverDir,
		"--listen", freeAddrs(c.t, 1)[0], "--agent-url", "http://"+c.agentAddr,
		"--agent-token-file", filepath.Join(c.agentDir, agent.TokenFileName), "--proxy-http", c.proxyHTTP)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.stop(c.t, syscall.SIGKILL)
		c.t.Fatalf("the server started; want it to refuse:\n%s", p.out)
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != 1 {
		c.t.Fatalf("the server exited with %v, want exit status 1:\n%s", p.err, p.out)
	}
	return p.out.String()
}

func fileSizes(t *testing.T, paths ...string) string {
	t.Helper()
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			out = append(out, filepath.Base(p)+":missing")
			continue
		}
		out = append(out, fmt.Sprintf("%s:%d", filepath.Base(p), st.Size()))
	}
	return strings.Join(out, " ")
}

// pidsOf returns the instance pids of the service's only group.
func (c *cluster) pidsOf(svc string) (string, []int) {
	c.t.Helper()
	g, pids := c.servingGroup(svc)
	slices.Sort(pids)
	return g, pids
}

// TestStoreRewind is the story: v1, then v2 (Success); the server
// is killed and its database replaced by a copy taken in the middle of v2
// (the WAL is gone), after v2's deploy.timeout passed. The restarted server
// resumes v2 from that copy, times out and would roll back to v1 (re-create
// its group and route 100 % to it); the agent refuses it instead: the
// release ends StoreBehind naming resync, v2 keeps serving with the same
// processes, no request fails, status and the log say so, and a new deploy
// is refused too. `runway server resync` recovers, and v3 deploys. A second
// server opened on a backup taken (online, under load) right after v1 is
// refused the same way.
func TestStoreRewind(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	ctx := context.Background()
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "1"), "Success")
	stop := c.load(service)
	afterV1 := filepath.Join(c.dir, "after-v1.db")
	c.backup(afterV1) // online: the server runs and the proxy serves

	// Blue/green Deploy: 0 ensure group, 1 wait healthy, 2 route. The copy
	// is taken with the server killed just before the switch to v2.
	const timeout = 15 * time.Second
	c.writeManifest(manifest{Timeout: timeout.String()})
	midV2 := filepath.Join(c.dir, "mid-v2.db")
	var created time.Time
	rel2 := c.crashAt("Deploy:2", "2", func(at time.Time) {
		created = at
		c.backup(midV2)
	})
	mustState(t, c.wait(rel2.ID, 60*time.Second), "Success")
	c.onlyVersion(service, "2")
	group2, pids2 := c.pidsOf(service)

	c.killServer()
	c.restoreDB(midV2)
	deadline := created.Add(timeout)
	waitFor(t, timeout+5*time.Second, "v2's deploy.timeout to pass", func() bool { return time.Now().After(deadline) })
	c.startServer()

	// The resumed v2 times out, and every step of its rollback is refused.
	done := c.wait(rel2.ID, 60*time.Second)
	mustState(t, done, "FailureDirty")
	if done.ErrorKind != "StoreBehind" || !strings.Contains(done.Error, "runway server resync --data-dir "+c.serverDir+" hello --env dev") {
		t.Errorf("the resumed release ended %s: %s; want StoreBehind naming the resync command", done.ErrorKind, done.Error)
	}
	c.onlyVersion(service, "2")
	if g, pids := c.pidsOf(service); g != group2 || !slices.Equal(pids, pids2) {
		t.Errorf("after the refused resume %s %v serves, want %s %v untouched", g, pids, group2, pids2)
	}
	st, err := c.api.Status(ctx, projectName, env, service)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.StoreBehind, "behind the agent") || !strings.Contains(st.StoreBehind, "runway server resync") {
		t.Errorf("status does not say the store is behind: %q", st.StoreBehind)
	}
	if st.Current == nil || st.Current.Version != "2" {
		t.Errorf("status names current release %+v, want v2 (what serves)", st.Current)
	}
	out, err := c.cli("status", service, "--env", env)
	if err != nil || !strings.Contains(out, "STORE BEHIND") || !strings.Contains(out, "version 2") {
		t.Errorf("runway status: %v\n%s", err, out)
	}
	t.Logf("the resumed release: %s: %s\nrunway status:\n%s", done.ErrorKind, done.Error, out)
	if log := c.server.out.String(); !strings.Contains(log, "the store is behind the agent") {
		t.Errorf("the server's log does not say the store is behind:\n%s", log)
	}

	// A new release is refused before it touches anything.
	c.writeManifest(manifest{})
	rel3 := c.deploy(service, "3")
	mustState(t, rel3, "FailureClean")
	if rel3.ErrorKind != "StoreBehind" || !strings.Contains(rel3.Error, "runway server resync") {
		t.Errorf("a deploy while behind ended %s: %s; want StoreBehind naming resync", rel3.ErrorKind, rel3.Error)
	}
	if g, pids := c.pidsOf(service); g != group2 || !slices.Equal(pids, pids2) {
		t.Errorf("after the refused deploy %s %v serves, want %s %v", g, pids, group2, pids2)
	}

	out = c.resync(service, "--env", env)
	if !strings.Contains(out, "adopted agent generation") || !strings.Contains(out, group2) {
		t.Errorf("resync output does not say what it adopted:\n%s", out)
	}
	st, err = c.api.Status(ctx, projectName, env, service)
	if err != nil || st.StoreBehind != "" {
		t.Errorf("after resync status still says %q (%v)", st.StoreBehind, err)
	}
	mustState(t, c.deploy(service, "3"), "Success")
	c.onlyVersion(service, "3")
	noFailures(t, "kill -9, restore, refused resume, resync, v3", stop())

	// A second server on the backup taken after v1 is as far behind.
	dir2 := filepath.Join(c.dir, "server2")
	if err := os.MkdirAll(dir2, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(afterV1)
	os.WriteFile(filepath.Join(dir2, "runway.db"), b, 0o600)
	addr2 := freeAddrs(t, 1)[0]
	s2 := startProc(t, "server2", []string{"TEST_MARK=" + c.mark}, "server", "--data-dir", dir2, "--listen", addr2,
		"--agent-url", "http://"+c.agentAddr, "--agent-token-file", filepath.Join(c.agentDir, agent.TokenFileName), "--proxy-http", c.proxyHTTP)
	defer s2.stop(t, syscall.SIGTERM)
	var api2 *client.Client
	waitFor(t, 30*time.Second, "the second server", func() bool {
		if s2.exited() {
			t.Fatalf("the server on the backup exited: %v\n%s", s2.err, s2.out)
		}
		tok, err := os.ReadFile(filepath.Join(dir2, "admin.token"))
		if err != nil {
			return false
		}
		api2, _ = client.New("http://"+addr2, string(bytes.TrimSpace(tok)))
		return api2.Health(ctx) == nil
	})
	st2, err := api2.Status(ctx, projectName, env, service)
	if err != nil || !strings.Contains(st2.StoreBehind, "behind the agent") {
		t.Errorf("the server on the v1 backup: status %+v %v, want store behind", st2, err)
	}
	if st2 != nil && st2.Current != nil {
		t.Errorf("the server on the v1 backup names current release %s v%s; v3, which it does not know, serves", st2.Current.ID, st2.Current.Version)
	}
	r, err := api2.Deploy(ctx, c.deployRequest(service, "4"))
	if err != nil {
		t.Fatal(err)
	}
	var d *apiwire.ReleaseDetail
	waitFor(t, 60*time.Second, "the stale server's release to end", func() bool {
		d, err = api2.Release(ctx, r.ID)
		return err == nil && d.Done
	})
	if d.State != "FailureClean" || d.ErrorKind != "StoreBehind" {
		t.Errorf("the stale server's release ended %s %s: %s", d.State, d.ErrorKind, d.Error)
	}
	c.onlyVersion(service, "3")
}

// TestLostDatabaseRefusesStart: a 0-byte runway.db beside the WAL a kill -9
// left refuses to start, naming both files and how to recover, and changes
// neither; a missing database while the agent holds a server's state
// refuses too; `runway server resync` (every service) rebuilds the records
// from the agent, and the server then starts, names v1 as current and
// deploys v2.
func TestLostDatabaseRefusesStart(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "1"), "Success")
	stop := c.load(service)
	group, pids := c.pidsOf(service)
	c.killServer()
	db := filepath.Join(c.serverDir, "runway.db")
	if st, err := os.Stat(db + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("kill -9 left no WAL to test with: %v", err)
	}
	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}
	before := fileSizes(t, db, db+"-wal")
	out := c.startServerFails()
	t.Logf("0-byte database beside its WAL:\n%s", out)
	for _, want := range []string{"empty (0 bytes)", "runway.db-wal holds", "Nothing was changed", "Restore the database from a backup", "runway server resync --data-dir " + c.serverDir} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if after := fileSizes(t, db, db+"-wal"); after != before {
		t.Errorf("the refused start changed the files: %s, were %s", after, before)
	}

	// Without a backup: the operator moves the files aside. A new database
	// is still refused: the agent holds what a server recorded.
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Rename(f, f+".broken"); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	out = c.startServerFails()
	t.Logf("missing database, the agent holds a server's state:\n%s", out)
	for _, want := range []string{"is new (missing or empty)", "dev/hello", "history is gone", "runway server resync --data-dir " + c.serverDir} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused start created %s: %v", db, err)
	}
	// What a WAL lost before the first checkpoint leaves: a database with
	// the schema and nothing in it.
	empty, err := store.OpenSQLite(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	empty.Close()
	out = c.startServerFails()
	if !strings.Contains(out, "holds no release and no record of the agent") || !strings.Contains(out, "history is gone") {
		t.Errorf("an empty database beside the agent's state was not refused as such:\n%s", out)
	}
	out = c.resync()
	if !strings.Contains(out, "hello in dev") || !strings.Contains(out, "recorded") {
		t.Errorf("resync of every service does not report hello:\n%s", out)
	}
	c.startServer()
	// The lost database lost the project too: an admin applies it again.
	c.applyProject()
	st, err := c.api.Status(context.Background(), projectName, env, service)
	if err != nil {
		t.Fatal(err)
	}
	if st.StoreBehind != "" || st.Current == nil || st.Current.Version != "1" {
		t.Errorf("after resync status %+v (behind %q), want v1 current", st.Current, st.StoreBehind)
	}
	if g, now := c.pidsOf(service); g != group || !slices.Equal(now, pids) {
		t.Errorf("resync touched the running group: %s %v, was %s %v", g, now, group, pids)
	}
	mustState(t, c.deploy(service, "2"), "Success")
	c.onlyVersion(service, "2")
	noFailures(t, "lost database, resync, v2", stop())
}
