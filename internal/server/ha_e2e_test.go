package server_test

// Several servers on one PostgreSQL database (issue 19): real server
// processes sharing a real PostgreSQL (internal/pgtest), one agent, steady
// traffic through its proxy, and the replica that runs a release killed
// (-9) or paused (-STOP) mid-release.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/pgtest"
)

// claimTTL is the replicas' claim TTL in these tests: a takeover comes
// within it plus a third of it.
const claimTTL = "3s"

// replica is a second server process sharing the cluster's store.
type replica struct {
	name, dir, addr string
	proc            *proc
	api             *client.Client
}

// masterKey returns a new master key (base64 of 32 bytes): replicas share it.
func masterKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// startPGCluster starts a cluster whose server is replica "a" on the
// PostgreSQL database dsn.
func startPGCluster(t *testing.T, dsn, key string) *cluster {
	t.Helper()
	return startClusterWith(t, func(c *cluster) {
		c.serverArgs = []string{"--store", dsn, "--replica", "a", "--claim-ttl", claimTTL}
		c.serverEnv = []string{"RUNWAY_MASTER_KEY=" + key}
	})
}

// startReplica starts another server named name on the cluster's store,
// with a data dir and address of its own.
func (c *cluster) startReplica(name, dsn, key string) *replica {
	t := c.t
	t.Helper()
	r := &replica{name: name, dir: filepath.Join(c.dir, "server-"+name), addr: freeAddrs(t, 1)[0]}
	r.proc = startProc(t, "server "+name, []string{"TEST_MARK=" + c.mark, "RUNWAY_MASTER_KEY=" + key}, "server", "--data-dir", r.dir,
		"--listen", r.addr, "--agent-url", "http://"+c.agentAddr, "--agent-token-file", filepath.Join(c.agentDir, agent.TokenFileName),
		"--proxy-http", c.proxyHTTP, "--store", dsn, "--replica", name, "--claim-ttl", claimTTL)
	t.Cleanup(func() {
		_ = r.proc.cmd.Process.Signal(syscall.SIGCONT) // a paused replica must hear the TERM
		r.proc.stop(t, syscall.SIGTERM)
		if t.Failed() {
			t.Logf("server %s output:\n%s", name, r.proc.out)
		}
	})
	waitFor(t, 30*time.Second, "server "+name, func() bool {
		if r.proc.exited() {
			t.Fatalf("server %s exited: %v\n%s", name, r.proc.err, r.proc.out)
		}
		b, err := os.ReadFile(filepath.Join(r.dir, "admin.token"))
		if err != nil {
			return false
		}
		cl, err := client.New("http://"+r.addr, strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if cl.Health(context.Background()) != nil {
			return false
		}
		r.api = cl
		return true
	})
	return r
}

// health reads GET /v1/health of the server at addr.
func health(t *testing.T, addr string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// waitMidRelease waits until release id, run by api's server, is in
// one of the states of a release's middle (its new group starting, traffic
// moving, or the old group waiting out scale_down_delay), and returns its
// detail.
func waitMidRelease(t *testing.T, api *client.Client, id string) *apiwire.ReleaseDetail {
	t.Helper()
	var rel *apiwire.ReleaseDetail
	waitFor(t, 60*time.Second, "release "+id+" to be mid-way", func() bool {
		r, err := api.Release(context.Background(), id)
		if err != nil {
			return false
		}
		if r.Done {
			t.Fatalf("release %s ended %s before the test could interrupt it", id, r.State)
		}
		rel = r
		return r.State == "Deploy" || r.State == "CheckHealthy" || r.State == "CleanUpSuccess"
	})
	return rel
}

// finishes waits for release id to end and checks that it succeeded on
// replica r, with no step recorded twice.
func (r *replica) finishes(t *testing.T, id string) {
	t.Helper()
	var done *apiwire.ReleaseDetail
	waitFor(t, 90*time.Second, "replica "+r.name+" to finish release "+id, func() bool {
		rel, err := r.api.Release(context.Background(), id)
		if err != nil {
			t.Fatalf("replica %s: %v", r.name, err)
		}
		done = rel
		return rel.Done
	})
	mustState(t, done, "Success")
	if done.Runner != r.name {
		t.Errorf("the release ended on %q, want %s", done.Runner, r.name)
	}
	noStepTwice(t, done)
}

// noStepTwice fails the test if a step of rel was recorded as started more
// than once, or if it entered an end state more than once. ("resumed" marks
// where a runner picked the release up, at the step it was on.)
func noStepTwice(t *testing.T, rel *apiwire.ReleaseDetail) {
	t.Helper()
	seen := map[string]int{}
	ends := 0
	var all strings.Builder
	for _, e := range rel.Events {
		fmt.Fprintf(&all, "  %s %-18s %2d %s\n", e.At.Format("15:04:05.000"), e.State, e.Step, e.Message)
		if e.Message == "resumed" {
			continue
		}
		if e.Step < 0 && (e.State == "Success" || e.State == "FailureClean" || e.State == "FailureDirty") {
			ends++
		}
		seen[fmt.Sprintf("%s/%d/%s", e.State, e.Step, e.Message)]++
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("recorded %d times: %s", n, k)
		}
	}
	if ends != 1 {
		t.Errorf("release entered an end state %d times", ends)
	}
	if t.Failed() {
		t.Logf("events of %s:\n%s", rel.ID, all.String())
	}
}

// TestReplicasKillRunner: two servers on one PostgreSQL; the replica that
// runs a release is killed (-9) mid-release under steady traffic; the other
// takes the release over when its claim lapses and finishes it: no failed
// request, no step recorded twice, the release ends once, on replica b.
func TestReplicasKillRunner(t *testing.T) {
	t.Parallel()
	dsn, key := pgtest.Database(t), masterKey(t)
	c := startPGCluster(t, dsn, key)
	b := c.startReplica("b", dsn, key)
	code, h := health(t, b.addr)
	if st, _ := h["store"].(map[string]any); code != 200 || h["replica"] != "b" || st["database"] != "postgres" || st["reachable"] != true {
		t.Fatalf("health of b: %d %v", code, h)
	}
	c.writeManifest(manifest{Desired: 2, Strategy: "rolling", ScaleDownDelay: "4s"})
	mustState(t, c.deploy(service, "1.0.0"), "Success")
	stop := c.load(service)
	rel := c.submit(service, "2.0.0") // through a: a runs it
	mid := waitMidRelease(t, b.api, rel.ID)
	if mid.Runner != "a" {
		t.Fatalf("release runs on %q, want a (the replica that recorded it)", mid.Runner)
	}
	out, err := c.cliIn(c.dir, "status", service, "--project", projectName, "--env", env)
	if err != nil || !strings.Contains(out, "on replica a") {
		t.Fatalf("runway status: %v\n%s", err, out)
	}
	c.killServer()
	b.finishes(t, rel.ID)
	noFailures(t, "traffic while the runner was killed", stop())
	c.onlyVersion(service, "2.0.0")
	if !strings.Contains(b.proc.out.String(), "taking over release") {
		t.Errorf("replica b's log does not tell the takeover:\n%s", b.proc.out)
	}
}

// TestReplicasPausedRunnerFenced: the replica running a release is paused
// (-STOP) past its claim; the other takes the release over; the paused one
// is continued (-CONT) while the other runs it: its next write is refused
// by fencing, and the release ends once, on the other replica.
func TestReplicasPausedRunnerFenced(t *testing.T) {
	t.Parallel()
	dsn, key := pgtest.Database(t), masterKey(t)
	c := startPGCluster(t, dsn, key)
	b := c.startReplica("b", dsn, key)
	c.writeManifest(manifest{Desired: 2, Strategy: "rolling", ScaleDownDelay: "4s"})
	mustState(t, c.deploy(service, "1.0.0"), "Success")
	stop := c.load(service)
	rel := c.submit(service, "2.0.0")
	waitMidRelease(t, b.api, rel.ID)
	if err := c.server.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := false
	defer func() {
		if !continued {
			_ = c.server.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	waitFor(t, 30*time.Second, "replica b to take the release over", func() bool {
		r, err := b.api.Release(context.Background(), rel.ID)
		if err != nil {
			t.Fatalf("replica b: %v", err)
		}
		// (b may even have finished it by now: a's next write is refused
		// all the same.)
		return r.Runner == "b"
	})
	if err := c.server.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	continued = true
	waitFor(t, 30*time.Second, "replica a to be refused by fencing", func() bool {
		out := c.server.out.String()
		return strings.Contains(out, "refused by fencing") || strings.Contains(out, "taken over by another replica")
	})
	b.finishes(t, rel.ID)
	noFailures(t, "traffic while the runner was paused", stop())
	c.onlyVersion(service, "2.0.0")
	// a keeps serving the API.
	if _, err := c.api.Release(context.Background(), rel.ID); err != nil {
		t.Errorf("replica a after it was continued: %v", err)
	}
}

// TestPostgresDownMidRelease: PostgreSQL stops mid-release and starts
// again: meanwhile the data plane keeps serving (no failed request), the
// API answers 503 StoreUnavailable with a clear message and /v1/health
// says the store is unreachable; once it is back the release resumes and
// succeeds, no step recorded twice.
func TestPostgresDownMidRelease(t *testing.T) {
	t.Parallel()
	if _, err := pgtest.BinDir(); err != nil {
		t.Skipf("PostgreSQL tests skipped: %v", err)
	}
	// A cluster of its own: stopping it must not disturb other tests.
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	dsn, err := pg.NewDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	key := masterKey(t)
	c := startPGCluster(t, dsn, key)
	c.writeManifest(manifest{Desired: 2, Strategy: "rolling", ScaleDownDelay: "4s"})
	mustState(t, c.deploy(service, "1.0.0"), "Success")
	stop := c.load(service)
	rel := c.submit(service, "2.0.0")
	waitMidRelease(t, c.api, rel.ID)
	if err := pg.StopServer(); err != nil {
		t.Fatal(err)
	}
	started := false
	defer func() {
		if !started {
			pg.StartServer()
		}
	}()
	_, err = c.api.Release(context.Background(), rel.ID)
	if !client.IsKind(err, apiwire.KindStoreUnavailable) || !strings.Contains(err.Error(), "cannot reach its store") {
		t.Fatalf("API with the store down: %v", err)
	}
	if code, h := health(t, c.serverAddr); code != http.StatusServiceUnavailable || h["status"] != "store-unavailable" {
		t.Fatalf("health with the store down: %d %v", code, h)
	}
	// Past the claim: the runner stops at its next step.
	// The outage lasts past the claim TTL (its length is the scenario, not
	// a wait for a condition): the runner stops at its next step.
	<-time.After(4 * time.Second)
	if err := pg.StartServer(); err != nil {
		t.Fatal(err)
	}
	started = true
	done := c.wait(rel.ID, 90*time.Second)
	mustState(t, done, "Success")
	noFailures(t, "traffic while PostgreSQL was down", stop())
	noStepTwice(t, done)
	// The runner stopped during the outage and the release was picked up
	// again from its recorded step once the store was back.
	resumed := 0
	for _, e := range done.Events {
		if e.Message == "resumed" {
			resumed++
		}
	}
	// (Once, unless a loaded machine let the new claim lapse too: each
	// pick-up is from the recorded step, as noStepTwice checked.)
	if resumed < 1 || done.Runner != "a" {
		t.Errorf("resumed %d times (want once), on %q", resumed, done.Runner)
	}
	c.onlyVersion(service, "2.0.0")
	if code, h := health(t, c.serverAddr); code != 200 || h["status"] != "ok" {
		t.Fatalf("health after the outage: %d %v", code, h)
	}
}

// TestMigrateSQLiteToPostgres: a server's state moves from its SQLite
// database to PostgreSQL with `runway server migrate`: the server started
// on the copy (same data dir, so the same master key and audit head) lists
// the same releases, opens the same secrets, verifies the audit chain and
// keeps deploying; the SQLite database is left as it was, the way back.
func TestMigrateSQLiteToPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	c := startCluster(t)
	c.writeManifest(manifest{Desired: 1})
	mustState(t, c.deploy(service, "1.0.0"), "Success")
	mustState(t, c.deploy(service, "2.0.0"), "Success")
	if out, err := c.cli("secret", "put", "--env", env, "API_KEY=s3cr3t-value"); err != nil {
		t.Fatalf("secret put: %v\n%s", err, out)
	}
	before, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.runway("server", "migrate", "--from", c.serverDir, "--to", dsn); err == nil || !strings.Contains(out, "stop the server first") {
		t.Fatalf("migrate of a running server: %v\n%s", err, out)
	}
	c.server.stop(t, syscall.SIGTERM)
	sqliteBefore, err := os.ReadFile(filepath.Join(c.serverDir, "runway.db"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.runway("server", "migrate", "--from", c.serverDir, "--to", dsn)
	if err != nil || !strings.Contains(out, "audit chain verified before and after the copy") {
		t.Fatalf("runway server migrate: %v\n%s", err, out)
	}
	t.Logf("runway server migrate:\n%s", out)
	if out, err := c.runway("server", "migrate", "--from", c.serverDir, "--to", dsn); err == nil || !strings.Contains(out, "copy into a new, empty database") {
		t.Fatalf("a second migrate into the same database: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(filepath.Join(c.serverDir, "runway.db")); string(after) != string(sqliteBefore) {
		t.Error("migrate changed the SQLite database")
	}
	c.serverArgs = []string{"--store", dsn, "--replica", "a", "--claim-ttl", claimTTL}
	c.startServer()
	after, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || len(after) < 2 {
		t.Fatalf("releases after the migration: %d, before %d", len(after), len(before))
	}
	for i := range before {
		a, b := after[i], before[i]
		if a.ID != b.ID || a.State != b.State || a.Version != b.Version || a.Digest != b.Digest || !a.CreatedAt.Equal(b.CreatedAt) {
			t.Errorf("release %d: %+v, before %+v", i, a, b)
		}
	}
	if out, err := c.cli("secret", "get", "--env", env, "API_KEY"); err != nil || !strings.Contains(out, "s3cr3t-value") {
		t.Fatalf("secret get after the migration: %v\n%s", err, out)
	}
	if out, err := c.cli("audit", "verify"); err != nil || !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit verify after the migration: %v\n%s", err, out)
	}
	mustState(t, c.deploy(service, "3.0.0"), "Success")
	c.onlyVersion(service, "3.0.0")
	if out, err := c.cli("audit", "verify"); err != nil || !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit verify after a deploy on PostgreSQL: %v\n%s", err, out)
	}
}
