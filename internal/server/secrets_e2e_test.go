package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/redact"
)

// distinctive returns a value no test output or file holds by chance.
func distinctive(t *testing.T, label string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "leak-" + label + "-" + hex.EncodeToString(b)
}

func digest(v string) string {
	s := sha256.Sum256([]byte(v))
	return hex.EncodeToString(s[:])
}

// putSecret stores values of service (empty: environment-wide) through the API.
func (c *cluster) putSecret(service string, overwrite bool, values map[string]string) {
	c.t.Helper()
	if _, err := c.api.PutSecrets(context.Background(), projectName, env, apiwire.SecretPutRequest{Service: service, Values: values, Overwrite: overwrite}); err != nil {
		c.t.Fatalf("put secrets: %v", err) // the API's errors never carry values
	}
}

// envDigests asks the proxy n times for the digest of variable name and
// counts the answers (digests only: the test never sees a value).
func (c *cluster) envDigests(name string, n int) map[string]int {
	c.t.Helper()
	out := map[string]int{}
	hc := &http.Client{Timeout: 5 * time.Second}
	for range n {
		req, _ := http.NewRequest(http.MethodGet, "http://"+c.proxyHTTP+"/env-digest/"+name, nil)
		req.Host = host(service)
		resp, err := hc.Do(req)
		if err != nil {
			out["error: "+err.Error()]++
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out[strings.TrimSpace(string(b))]++
	}
	return out
}

// onlyDigest fails unless every instance answers the digest of want.
func (c *cluster) onlyDigest(name, want, what string) {
	c.t.Helper()
	got := c.envDigests(name, 20)
	if len(got) != 1 || got[digest(want)] != 20 {
		c.t.Fatalf("%s: instances answer digests %v of %s, want only %s", what, got, name, digest(want))
	}
}

const secretManifest = `  secrets    = ["DB_PASSWORD"]
  secret_env = { SHARED = "SHARED_TOKEN" }`

// TestSecretRotationUnderLoad: a new version of a secret reaches the
// instances through a zero-downtime deploy (0 failed requests, every new
// instance has the new value), and rollback brings back the version the
// earlier release pinned.
func TestSecretRotationUnderLoad(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Extra: secretManifest})
	v1, v2, shared := distinctive(t, "v1"), distinctive(t, "v2"), distinctive(t, "shared")
	c.putSecret(service, false, map[string]string{"DB_PASSWORD": v1})
	c.putSecret("", false, map[string]string{"SHARED_TOKEN": shared})
	r1 := c.deploy(service, "1")
	mustState(t, r1, "Success")
	c.onlyDigest("DB_PASSWORD", v1, "v1")
	c.onlyDigest("SHARED", shared, "the environment-wide secret")
	if len(r1.Secrets) != 2 || r1.Secrets[0].Name != "DB_PASSWORD" || r1.Secrets[0].Version != 1 || r1.Secrets[1].Service != "" {
		t.Fatalf("pins of release 1: %+v", r1.Secrets)
	}

	stop := c.load(service)
	c.putSecret(service, true, map[string]string{"DB_PASSWORD": v2})
	out, err := c.cli("deploy", service, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "2", "--yes", "--wait")
	if err != nil {
		t.Fatalf("deploy of the new secret version: %v\n%s", err, redactFor(out, v1, v2, shared))
	}
	if !strings.Contains(out, "DB_PASSWORD: v1 → v2") {
		t.Fatalf("the deploy's plan does not show the secret's versions:\n%s", redactFor(out, v1, v2, shared))
	}
	c.onlyDigest("DB_PASSWORD", v2, "after the deploy of v2")

	rel, err := c.api.Rollback(context.Background(), apiwire.RollbackRequest{Project: projectName, Environment: env, Service: service, To: r1.ID,
		RequestID: newID(), RequestedAt: time.Now().UTC(), Confirmed: true})
	if err != nil {
		t.Fatal(err)
	}
	back := c.wait(rel.ID, 90*time.Second)
	mustState(t, back, "Success")
	if back.Secrets[0].Version != 1 {
		t.Fatalf("the rollback pins %+v, want DB_PASSWORD v1", back.Secrets)
	}
	c.onlyDigest("DB_PASSWORD", v1, "after the rollback")
	noFailures(t, "requests during the secret's rotation and rollback", stop())

	// Deleting the pinned secret is refused; with --force it goes.
	if out, err := c.cli("secret", "delete", service, "DB_PASSWORD", "--env", env, "--yes"); err == nil || !strings.Contains(out, "is pinned by running release(s) "+back.ID) {
		t.Fatalf("delete of a pinned secret: %v\n%s", err, out)
	}
	if out, err := c.cli("secret", "delete", service, "DB_PASSWORD", "--env", env, "--yes", "--force"); err != nil || !strings.Contains(out, "warning: still pinned by "+back.ID) {
		t.Fatalf("forced delete: %v\n%s", err, out)
	}
	// A deploy now lists the missing key and changes nothing.
	_, err = c.api.Deploy(context.Background(), c.deployRequest(service, "3"))
	if err == nil || !strings.Contains(err.Error(), "names secret(s) with no value: DB_PASSWORD") {
		t.Fatalf("deploy without the secret: %v", err)
	}
}

// redactFor replaces the values in s (for a failure message).
func redactFor(s string, values ...string) string {
	for _, v := range values {
		s = strings.ReplaceAll(s, v, "[value]")
	}
	return s
}

func newID() string { return ulid.Make().String() }

// TestSecretAgentRestartResupplies: the agent keeps secrets in memory only.
// Killed (-9) and restarted by `runway up`, it adopts the running instances
// (they keep their environment and keep serving) and reports the group's
// secrets missing until the server sends them again; an instance that
// crashes afterwards starts again with them.
func TestSecretAgentRestartResupplies(t *testing.T) {
	t.Parallel()
	c := startUp(t)
	c.writeManifest(manifest{Extra: secretManifest})
	v1, shared := distinctive(t, "v1"), distinctive(t, "shared")
	c.putSecret(service, false, map[string]string{"DB_PASSWORD": v1})
	c.putSecret("", false, map[string]string{"SHARED_TOKEN": shared})
	mustState(t, c.deploy(service, "1"), "Success")
	group, pids := c.servingGroup(service)

	old := c.agentPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.restartedPID("agent", c.agentPID, old)
	waitFor(t, 30*time.Second, "the server to give the restarted agent the group's secrets", func() bool {
		g, err := c.agentAPI.Group(context.Background(), group)
		return err == nil && !g.SecretsMissing
	})
	g, err := c.agentAPI.Group(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range g.Instances {
		if in.PID != pids[i] {
			t.Fatalf("instance %s has pid %d, want the adopted %d", in.ID, in.PID, pids[i])
		}
	}
	c.onlyDigest("DB_PASSWORD", v1, "adopted instances")
	// A crash after the restart: the new process has the secret too.
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the crashed instance to be healthy again", func() bool {
		g, err := c.agentAPI.Group(context.Background(), group)
		if err != nil {
			return false
		}
		for _, in := range g.Instances {
			if in.PID == pids[0] || in.State != agentapi.StateHealthy {
				return false
			}
		}
		return true
	})
	c.onlyDigest("DB_PASSWORD", v1, "the restarted instance")
}

// TestSecretNeverShown puts distinctive values, deploys, rotates, rolls
// back, runs a failing hook that prints its environment, reads status,
// releases, events, config, secret lists, the audit log and the agent's
// groups, routes and instance logs in table and JSON form, then scans
// every captured output, the server's and agent's logs and every file
// under their data dirs for the values: none may hold one.
func TestSecretNeverShown(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	// The app logs its secrets at start: the agent keeps them out of the
	// instance logs.
	logEnv := map[string]string{"LOG_ENV": "DB_PASSWORD,SHARED"}
	c.writeManifest(manifest{Extra: secretManifest, Env: logEnv})
	v1, v2, shared := distinctive(t, "v1"), distinctive(t, "v2"), distinctive(t, "shared")
	values := []string{v1, v2, shared}
	c.putSecret(service, false, map[string]string{"DB_PASSWORD": v1})
	c.putSecret("", false, map[string]string{"SHARED_TOKEN": shared})
	var outputs []string
	run := func(args ...string) string {
		t.Helper()
		out, err := c.cli(args...)
		if err != nil {
			t.Fatalf("runway %s: %v\n%s", strings.Join(args, " "), err, redactFor(out, values...))
		}
		outputs = append(outputs, "runway "+strings.Join(args, " ")+"\n"+out)
		return out
	}
	file := filepath.Join(c.dir, "project")
	run("deploy", service, "--env", env, "--file", file, "--version", "1", "--yes", "--wait")
	c.putSecret(service, true, map[string]string{"DB_PASSWORD": v2})
	run("deploy", service, "--env", env, "--file", file, "--version", "2", "--yes", "--wait")
	run("rollback", service, "--env", env, "--yes", "--wait")
	c.onlyDigest("DB_PASSWORD", v1, "after the rollback")

	// A failing pre_deploy hook that prints its whole environment.
	c.writeManifest(manifest{Extra: secretManifest, Env: logEnv, Hook: []string{"/bin/sh", "-c", "env; echo \"db=$DB_PASSWORD\" >&2; exit 3"}})
	out, err := c.cli("deploy", service, "--env", env, "--file", file, "--version", "3", "--yes", "--wait")
	outputs = append(outputs, "failing deploy\n"+out)
	if err == nil {
		t.Fatalf("the failing hook's release succeeded:\n%s", redactFor(out, values...))
	}
	if !strings.Contains(out, "DB_PASSWORD=[redacted]") || !strings.Contains(out, "SHARED=[redacted]") {
		t.Fatalf("the hook's output is not in the release's error, redacted:\n%s", redactFor(out, values...))
	}

	for _, o := range []string{"", "json"} {
		args := func(a ...string) []string {
			if o != "" {
				a = append(a, "--output", o)
			}
			return a
		}
		run(args("status", service, "--env", env)...)
		run(args("status", "--env", env)...)
		releases := run("releases", service, "--env", env, "--output", "json")
		run(args("releases", service, "--env", env)...)
		var list []apiwire.Release
		if err := json.Unmarshal([]byte(releases), &list); err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			run(args("release", "show", r.ID)...)
		}
		run(args("config", "show", service, "--env", env, "--dir", file)...)
		run(args("secret", "list", "--env", env)...)
		run(args("secret", "history", service, "DB_PASSWORD", "--env", env)...)
		run(args("audit")...)
	}
	// The agent's API: groups (with their specs), routes, instance logs.
	ctx := context.Background()
	groups, err := c.agentAPI.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(groups)
	outputs = append(outputs, "GET /v1/groups\n"+string(b))
	routes, err := c.agentAPI.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(routes)
	outputs = append(outputs, "GET /v1/routes\n"+string(b))
	for _, g := range groups {
		if len(g.Spec.Secrets) == 0 {
			t.Fatalf("group %s's spec names no secrets", g.Name)
		}
		for _, in := range g.Instances {
			var logs strings.Builder
			if err := c.agentAPI.Logs(ctx, g.Name, in.ID, agentapi.LogQuery{}, func(l agentapi.LogLine) error {
				logs.WriteString(l.Text + "\n")
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(logs.String(), "DB_PASSWORD="+redact.Mark) {
				t.Errorf("instance %s's log does not show the redacted secret it printed:\n%s", in.ID, redactFor(logs.String(), values...))
			}
			outputs = append(outputs, "logs of "+in.ID+"\n"+logs.String())
		}
	}
	// Every release's record and events through the API.
	rels, err := c.api.Releases(ctx, apiwire.ReleaseFilter{Project: projectName, Environment: env, Service: service, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rels {
		d, err := c.api.Release(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(d)
		outputs = append(outputs, "GET /v1/releases/"+r.ID+"\n"+string(b))
	}
	outputs = append(outputs, "server log\n"+c.server.out.String(), "agent log\n"+c.agent.out.String())

	// Every file of the server's and the agent's data dirs (the database
	// and its WAL, state files, task records, logs).
	scanned := noValueIn(t, outputs, []string{c.serverDir, c.agentDir}, values)
	if scanned < 5 {
		t.Fatalf("scanned only %d files", scanned)
	}
	t.Logf("scanned %d outputs and %d files", len(outputs), scanned)
}

// noValueIn fails t for every output (its first line names it) and every
// file below dirs that holds one of values, naming the value by its index
// only; it returns how many files it read.
func noValueIn(t *testing.T, outputs, dirs, values []string) int {
	t.Helper()
	for i, o := range outputs {
		for j, v := range values {
			if strings.Contains(o, v) {
				first, _, _ := strings.Cut(o, "\n")
				t.Errorf("output %d (%s) holds secret value %d", i, first, j)
			}
		}
	}
	scanned := 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			scanned++
			for j, v := range values {
				if bytes.Contains(b, []byte(v)) {
					t.Errorf("file %s holds secret value %d", p, j)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return scanned
}

// TestSecretWrongMasterKeyRefusesStart: a server given another master key
// (or none) than the one its secrets were sealed with refuses to start,
// says which key it needs, and changes nothing: with the right key back it
// opens every value.
func TestSecretWrongMasterKeyRefusesStart(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{})
	v1 := distinctive(t, "v1")
	c.putSecret(service, false, map[string]string{"DB_PASSWORD": v1})
	c.server.stop(t, syscall.SIGTERM)
	keyFile := filepath.Join(c.serverDir, "master.key")
	right, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	other := make([]byte, 32)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := fileSizes(t, filepath.Join(c.serverDir, "runway.db"))
	out := c.startServerFails()
	if !strings.Contains(out, "but the stored secrets were sealed with master key mk-") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("a wrong master key: %s", out)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	out = c.startServerFails()
	if !strings.Contains(out, "master key file "+keyFile+" is missing") {
		t.Fatalf("a missing master key: %s", out)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Fatal("the server made a new master key over stored secrets")
	}
	if got := fileSizes(t, filepath.Join(c.serverDir, "runway.db")); got != db {
		t.Fatalf("the refused starts changed the database: %s, was %s", got, db)
	}
	if err := os.WriteFile(keyFile, right, 0o600); err != nil {
		t.Fatal(err)
	}
	c.startServer()
	v, err := c.api.SecretValue(context.Background(), projectName, env, service, "DB_PASSWORD", 0)
	if err != nil || v.Value != v1 || v.Version != 1 {
		t.Fatalf("with the right key back: version %d, same value %v, %v", v.Version, v.Value == v1, err)
	}
}
