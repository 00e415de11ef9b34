package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/awsfake"
	"github.com/runwayhq/runway/internal/driver/ecs"
)

// TestAWSSecretsPinnedVersions: for an aws environment, `runway secret put`
// writes the value into the service's Secrets Manager container (the
// generated Terraform's), as a version named after Runway's; a release's
// task definition names exactly the version it pins, so the tasks of a
// release read their own value after a newer one was put, and a rollback
// runs the old value again without writing a version twice; a secret
// rollback writes a new version. No value
// appears in any CLI output, API answer, log, data file or in what the fake
// AWS recorded.
func TestAWSSecretsPinnedVersions(t *testing.T) {
	f := startFakeAWS(t, awsfake.Options{ThrottleEvery: 23})
	arn := f.CreateSecret("runway/staging/web/DATABASE_URL") // as the service root does
	c, _ := startAWSCluster(t, f, func(so *ecs.ServiceOutputs) {
		so.SecretARNs = map[string]string{"DATABASE_URL": arn}
	}, awsManifest{Extra: `  secrets = ["DATABASE_URL"]`})
	v1, v2 := distinctive(t, "aws-v1"), distinctive(t, "aws-v2")
	values := []string{v1, v2}
	var outputs []string
	run := func(args ...string) string {
		t.Helper()
		out, err := c.cli(args...)
		outputs = append(outputs, strings.Join(args[:2], " ")+"\n"+out)
		if err != nil {
			t.Fatalf("runway %s: %v\n%s", args[0], err, redactFor(out, values...))
		}
		return out
	}
	digestOf := func(what string) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range 10 {
			req, _ := http.NewRequest(http.MethodGet, "http://"+f.LoadBalancerAddr()+"/digest/DATABASE_URL", nil)
			req.Host = "web.staging.localhost"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got[strings.TrimSpace(string(b))]++
		}
		return got
	}
	only := func(want, what string) {
		t.Helper()
		if got := digestOf(what); len(got) != 1 || got[digest(want)] != 10 {
			t.Fatalf("%s: the tasks answer digests %v, want only %s", what, got, digest(want))
		}
	}
	deploy := func(version string) string {
		t.Helper()
		out := run("deploy", "web", "--env", "staging", "--version", version, "--yes", "--output", "json")
		var rel struct{ ID string }
		if err := json.Unmarshal([]byte(out), &rel); err != nil {
			t.Fatalf("runway deploy output: %v", err)
		}
		return rel.ID
	}

	run("secret", "put", "web", "--env", "staging", "DATABASE_URL="+v1)
	if got := f.SecretVersions(arn); len(got) != 1 {
		t.Fatalf("Secrets Manager holds %d versions after secret put, want 1", len(got))
	}
	r1 := c.wait(deploy("1.0.0"), 2*time.Minute)
	mustState(t, r1, "Success")
	only(v1, "release 1")

	run("secret", "put", "web", "--env", "staging", "--overwrite", "DATABASE_URL="+v2)
	versions := f.SecretVersions(arn)
	if len(versions) != 2 {
		t.Fatalf("Secrets Manager holds %d versions after the second put, want 2", len(versions))
	}
	// AWSCURRENT moved to v2, but release 1's tasks were started with the
	// version it pins, and a task started now would read it too.
	only(v1, "release 1 after v2 was put")
	r2 := c.wait(deploy("2.0.0"), 2*time.Minute)
	mustState(t, r2, "Success")
	only(v2, "release 2")

	rel, err := c.api.Rollback(context.Background(), apiwire.RollbackRequest{Project: projectName, Environment: "staging", Service: "web", To: r1.ID,
		RequestID: newID(), RequestedAt: time.Now().UTC(), Confirmed: true})
	if err != nil {
		t.Fatal(err)
	}
	back := c.wait(rel.ID, 2*time.Minute)
	mustState(t, back, "Success")
	only(v1, "the rollback to release 1")
	if got := f.SecretVersions(arn); len(got) != 2 || got[0] != versions[0] || got[1] != versions[1] {
		t.Errorf("Secrets Manager versions after the rollback %v, want the same two %v", got, versions)
	}

	// A secret rollback is a new version with the old value: written into
	// Secrets Manager as a third version, which takes AWSCURRENT.
	run("secret", "rollback", "web", "DATABASE_URL", "--env", "staging", "--to", "1")
	if got := f.SecretVersions(arn); len(got) != 3 {
		t.Errorf("Secrets Manager versions after secret rollback: %d, want 3", len(got))
	}

	// Where a value could leak: every CLI output, release records through
	// the API, the server's log, every file of the server's data dir, and
	// what the fake AWS recorded of refused requests.
	outputs = append(outputs, "status\n"+run("status", "--env", "staging"), "events\n"+run("events", "--env", "staging"),
		"secret list\n"+run("secret", "list", "--env", "staging"))
	rels, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Project: projectName, Environment: "staging", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rels {
		d, err := c.api.Release(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(d)
		outputs = append(outputs, "GET /v1/releases/"+r.ID+"\n"+string(b))
	}
	outputs = append(outputs, "server log\n"+c.server.out.String(), "fake violations\n"+strings.Join(f.Violations(), "\n"))
	if scanned := noValueIn(t, outputs, []string{c.serverDir}, values); scanned < 3 {
		t.Fatalf("scanned only %d files", scanned)
	}
}
