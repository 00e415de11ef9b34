package server_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
)

// The server decides what a release is (projects, policy, validation,
// targets); these tests call it as users and as an attacker would.

// writeProject writes a project directory under the cluster's dir: its
// runway.hcl and services (name → the body of the service block, appended
// to a hello service with fast health checks), and registers it.
func (c *cluster) writeProject(dir, runwayHCL string, services map[string]string) string {
	c.t.Helper()
	dir = filepath.Join(c.dir, dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte(runwayHCL), 0o644); err != nil {
		c.t.Fatal(err)
	}
	for name, body := range services {
		svc := fmt.Sprintf(`service %q {
  command = [%q, "--port", "{{PORT}}"]
  env = {
    GREETING  = %q
    TEST_MARK = %q
  }
  health {
    path              = "/healthz"
    interval          = "200ms"
    healthy_threshold = 1
  }
  scale {
    desired = 1
  }
  deploy {
    strategy         = "blue_green"
    scale_down_delay = "0s"
    timeout          = "90s"
  }
%s
}
`, name, helloBin, name, c.mark, body)
		if err := os.WriteFile(filepath.Join(dir, name+".service.hcl"), []byte(svc), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	if out, err := c.cliIn(dir, "project", "apply", "--yes"); err != nil {
		c.t.Fatalf("runway project apply in %s: %v\n%s", dir, err, out)
	}
	return dir
}

// deployIn runs runway deploy in dir and returns its output and error.
func (c *cluster) deployIn(dir, svc, environment, version string, extra ...string) (string, error) {
	c.t.Helper()
	return c.cliIn(dir, append([]string{"deploy", svc, "--env", environment, "--version", version, "--yes"}, extra...)...)
}

// TestProjectsSideBySide: two projects with a service of the same name in
// environments of the same name are two services: each serves its own
// version, and releasing one leaves the other alone. Two projects without a
// domain would share host names: the second is refused, told to set one.
func TestProjectsSideBySide(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	alpha := c.writeProject("alpha", "project \"alpha\" {\n  domain = \"alpha.test\"\n}\nenvironment \"dev\" {}\n", map[string]string{"hello": ""})
	beta := c.writeProject("beta", "project \"beta\" {\n  domain = \"beta.test\"\n}\nenvironment \"dev\" {}\n", map[string]string{"hello": ""})
	for _, d := range []struct{ dir, version string }{{alpha, "1"}, {beta, "2"}} {
		if out, err := c.deployIn(d.dir, "hello", "dev", d.version, "--wait"); err != nil {
			t.Fatalf("deploy %s: %v\n%s", d.dir, err, out)
		}
	}
	onlyAt := func(h, version string) {
		t.Helper()
		if got := c.versionsAt(h, 20); len(got) != 1 || got[version] != 20 {
			t.Fatalf("%s answers %v, want only v%s", h, got, version)
		}
	}
	onlyAt("hello.dev.alpha.test", "1")
	onlyAt("hello.dev.beta.test", "2")
	if out, err := c.deployIn(alpha, "hello", "dev", "3", "--wait"); err != nil {
		t.Fatalf("deploy alpha v3: %v\n%s", err, out)
	}
	onlyAt("hello.dev.alpha.test", "3")
	onlyAt("hello.dev.beta.test", "2")
	for project, want := range map[string]string{"alpha": "3", "beta": "2"} {
		st, err := c.api.Status(context.Background(), project, "dev", "hello")
		if err != nil || st.Current == nil || st.Current.Version != want || len(st.Groups) != 1 {
			t.Fatalf("status of %s: %+v %v; want version %s with one group", project, st, err, want)
		}
		list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Project: project, Service: "hello"})
		if err != nil || (project == "alpha" && len(list) != 2) || (project == "beta" && len(list) != 1) {
			t.Fatalf("releases of %s: %d (%v)", project, len(list), err)
		}
	}

	gamma := c.writeProject("gamma", "project \"gamma\" {}\nenvironment \"dev\" {}\n", map[string]string{"hello": ""})
	delta := c.writeProject("delta", "project \"delta\" {}\nenvironment \"dev\" {}\n", map[string]string{"hello": ""})
	if out, err := c.deployIn(gamma, "hello", "dev", "1", "--wait"); err != nil {
		t.Fatalf("deploy gamma: %v\n%s", err, out)
	}
	out, err := c.deployIn(delta, "hello", "dev", "1")
	if err == nil || !strings.Contains(out, "host hello.dev.localhost is already served by service hello of project gamma in environment dev") ||
		!strings.Contains(out, `domain = "delta.localhost"`) {
		t.Fatalf("a second project on the same host names: %v\n%s", err, out)
	}
}

// TestHostsBelongToTheirEnvironment: a development service may not claim a
// production host — refused by runway validate, and by the server for a
// client that calls the API directly; nor a host another service serves.
func TestHostsBelongToTheirEnvironment(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	project := "project \"shop\" {}\nenvironment \"dev\" {}\nenvironment \"prod\" {\n  protected = true\n}\n"
	dir := c.writeProject("shop", project, map[string]string{
		"hello": "  environment \"dev\" {\n    hosts = [\"hello.prod.localhost\"]\n  }\n",
	})
	line := lineOf(t, filepath.Join(dir, "hello.service.hcl"), "hello.prod.localhost")
	out, err := c.cliIn(dir, "validate")
	if err == nil || !strings.Contains(out, fmt.Sprintf("hello.service.hcl:%d:14: error: Host outside the environment", line)) {
		t.Fatalf("runway validate: %v\n%s", err, out)
	}
	req := deployRequestIn(t, dir, "shop", "dev", "hello", "1")
	_, err = c.api.Deploy(context.Background(), req)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 422 || len(ce.Diagnostics) == 0 || ce.Diagnostics[0].Summary != "Host outside the environment" ||
		ce.Diagnostics[0].File != "hello.service.hcl" || ce.Diagnostics[0].Line != line || ce.Diagnostics[0].Column != 14 {
		t.Fatalf("raw API deploy of a dev service on a prod host: %v %+v", err, ce)
	}

	// A host under the environment, but served by another service already.
	dir = c.writeProject("shop", project, map[string]string{
		"hello": "",
		"web":   "  environment \"dev\" {\n    hosts = [\"hello.dev.localhost\"]\n  }\n",
	})
	// (runway validate of the directory refuses the pair; hello alone is fine.)
	if out, err := c.cliIn(dir, "validate"); err == nil || !strings.Contains(out, "Host used twice") {
		t.Fatalf("runway validate of hello and web: %v\n%s", err, out)
	}
	if out, err := c.deployIn(dir, "hello", "dev", "1", "--wait", "--file", "hello.service.hcl"); err != nil {
		t.Fatalf("deploy hello: %v\n%s", err, out)
	}
	req = deployRequestIn(t, dir, "shop", "dev", "web", "1")
	_, err = c.api.Deploy(context.Background(), req)
	if !client.IsKind(err, "HostConflict") || !strings.Contains(err.Error(), "host hello.dev.localhost is already served by service hello of project shop in environment dev") {
		t.Fatalf("raw API deploy of web on hello's host: %v", err)
	}
}

// lineOf returns the 1-based line of file that contains s.
func lineOf(t *testing.T, file, s string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%s does not contain %q", file, s)
	return 0
}

// deployRequestIn is the API request runway deploy makes for svc in dir.
func deployRequestIn(t *testing.T, dir, project, environment, svc, version string) apiwire.DeployRequest {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, svc+".service.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	proj, err := os.ReadFile(filepath.Join(dir, "runway.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	return apiwire.DeployRequest{Project: project, Environment: environment, Service: svc, Version: version,
		Sources:       []apiwire.SourceFile{{Name: svc + ".service.hcl", Content: string(src)}},
		ProjectSource: string(proj), Dir: dir, RequestID: ulid.Make().String(), RequestedAt: time.Now().UTC()}
}

// TestTargetWithoutDriver: an environment whose target this server cannot
// run is refused at submit, before anything runs, naming what it runs.
func TestTargetWithoutDriver(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	dir := c.writeProject("cloud", "project \"cloud\" {}\nenvironment \"dev\" {}\nenvironment \"prod\" {\n  target = \"aws\"\n  region = \"us-east-2\"\n}\n",
		map[string]string{"hello": "  environment \"prod\" {\n    image   = \"registry.example.com/hello:1\"\n    command = []\n  }\n"})
	out, err := c.deployIn(dir, "hello", "prod", "1")
	if err == nil || !strings.Contains(out, `environment "prod" has target "aws"; this server has no aws driver configured: it runs local`) {
		t.Fatalf("deploy to an aws environment: %v\n%s", err, out)
	}
	list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Project: "cloud"})
	if err != nil || len(list) != 0 {
		t.Fatalf("a refused release was recorded: %d (%v)", len(list), err)
	}
}

// TestVersionInjection: a version that would be shell code in a hook is
// refused by the CLI and by the API, and no hook runs.
func TestVersionInjection(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	dir := c.writeProject("inj", "project \"inj\" {}\nenvironment \"dev\" {}\n",
		map[string]string{"hello": "  hooks {\n    pre_deploy = [\"/bin/sh\", \"-c\", \"echo migrating to {{VERSION}}\"]\n  }\n"})
	// runway validate warns about the template inside a shell script.
	out, err := c.cliIn(dir, "validate")
	if err != nil || !strings.Contains(out, "warning: Template value inside a shell script") {
		t.Fatalf("runway validate: %v\n%s", err, out)
	}
	const evil = "1.1;touch injected;#"
	out, err = c.deployIn(dir, "hello", "dev", evil)
	if err == nil || !strings.Contains(out, "is not valid: a version starts with a letter or digit") {
		t.Fatalf("runway deploy --version %q: %v\n%s", evil, err, out)
	}
	req := deployRequestIn(t, dir, "inj", "dev", "hello", evil)
	_, err = c.api.Deploy(context.Background(), req)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Detail, `field "version"`) {
		t.Fatalf("raw API deploy with version %q: %v", evil, err)
	}
	for _, d := range []string{dir, c.serverDir, c.dir} {
		if _, err := os.Stat(filepath.Join(d, "injected")); err == nil {
			t.Fatalf("the injected command ran: %s/injected exists", d)
		}
	}
}

// TestHooksSeeNoServerSecrets: a hook gets the environment an instance
// gets (an allow-list plus the release's values), never the server's; and
// its output kept in a failed release's record is redacted.
func TestHooksSeeNoServerSecrets(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	const secret = "rwy_servers0wnsecret0123456789abcdef"
	c.serverEnv = []string{"SERVER_ONLY_VARIABLE=" + secret, "DATABASE_PASSWORD=hunter2hunter2"}
	c.server.stop(t, 15)
	c.startServer()
	envFile := filepath.Join(c.dir, "hook.env")
	dir := c.writeProject("hooks", "project \"hooks\" {}\nenvironment \"dev\" {}\n", map[string]string{
		"hello": fmt.Sprintf("  hooks {\n    pre_deploy = [\"/bin/sh\", \"-c\", \"env > %s; echo token rwy_$(echo printedbythehook0123456789); exit 3\"]\n  }\n", envFile),
	})
	out, err := c.deployIn(dir, "hello", "dev", "1", "--wait")
	if err == nil {
		t.Fatalf("a release whose hook exits 3 succeeded:\n%s", out)
	}
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	hookEnv := string(b)
	for _, leak := range []string{secret, "SERVER_ONLY_VARIABLE", "hunter2", "TEST_FAULT"} {
		if strings.Contains(hookEnv, leak) {
			t.Errorf("the hook saw the server's %q:\n%s", leak, hookEnv)
		}
	}
	for _, want := range []string{"RUNWAY_SERVICE=hello", "RUNWAY_ENVIRONMENT=dev", "RUNWAY_PROJECT=hooks", "RUNWAY_TASK=pre_deploy", "GREETING=hello", "PATH="} {
		if !strings.Contains(hookEnv, want) {
			t.Errorf("the hook's environment lacks %s:\n%s", want, hookEnv)
		}
	}
	list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Project: "hooks"})
	if err != nil || len(list) != 1 {
		t.Fatalf("releases: %v %v", list, err)
	}
	rel, err := c.api.Release(context.Background(), list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rel.Error, "exited 3") || strings.Contains(rel.Error, "rwy_printedbythehook") || !strings.Contains(rel.Error, "[redacted]") {
		t.Fatalf("release error %q: want the exit code and the hook's token redacted", rel.Error)
	}
	if out, _ := c.cliIn(dir, "release", "show", rel.ID); strings.Contains(out, "rwy_printedbythehook") {
		t.Fatalf("runway release show prints the hook's token:\n%s", out)
	}
}

// TestTasksRunConcurrentlyAndHaltAtOnce: a hook that sleeps in one service
// does not hold up another service's release, and halting its release kills
// the hook at once.
func TestTasksRunConcurrentlyAndHaltAtOnce(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	dir := c.writeProject("slow", "project \"slow\" {}\nenvironment \"dev\" {}\n", map[string]string{
		"sleepy": "  hooks {\n    pre_deploy = [\"/bin/sh\", \"-c\", \"sleep 45\"]\n  }\n",
		"quick":  "  hooks {\n    pre_deploy = [\"/bin/sh\", \"-c\", \"true\"]\n  }\n",
	})
	out, err := c.deployIn(dir, "sleepy", "dev", "1", "--output", "json")
	if err != nil {
		t.Fatalf("deploy sleepy: %v\n%s", err, out)
	}
	var sleepy *apiwire.Release
	waitFor(t, 30*time.Second, "sleepy's hook to run", func() bool {
		list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Project: "slow", Service: "sleepy"})
		if err != nil || len(list) != 1 {
			return false
		}
		sleepy = list[0]
		d, err := c.api.Release(context.Background(), sleepy.ID)
		if err != nil {
			return false
		}
		for _, e := range d.Events {
			if strings.Contains(e.Message, "run pre_deploy task") {
				return true
			}
		}
		return false
	})
	if out, err := c.deployIn(dir, "quick", "dev", "1", "--wait"); err != nil {
		t.Fatalf("deploy quick while sleepy's hook sleeps: %v\n%s", err, out)
	}
	if r, err := c.api.Release(context.Background(), sleepy.ID); err != nil || r.Done {
		t.Fatalf("sleepy's release ended before quick's (%v, %v): the hooks did not overlap", r, err)
	}
	halted := time.Now()
	if out, err := c.cliIn(dir, "halt", "sleepy", "--env", "dev"); err != nil {
		t.Fatalf("halt: %v\n%s", err, out)
	}
	rel := c.wait(sleepy.ID, 10*time.Second)
	mustState(t, rel, "FailureClean")
	if rel.ErrorKind != "Halted" {
		t.Fatalf("sleepy ended %s (%s), want Halted", rel.ErrorKind, rel.Error)
	}
	t.Logf("halt to FailureClean: %s", time.Since(halted).Round(time.Millisecond))
	// The hook's process group is gone (the cluster's clean-up also checks
	// that no process of the test is left).
	waitFor(t, 30*time.Second, "the sleeping hook to be killed", func() bool {
		for _, pid := range marked(c.mark) {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), "sleep") {
				return false
			}
		}
		return true
	})
}

// TestRequestIDIsExact: the same request again returns its release; the
// same request id with another body is refused (409), naming that release.
func TestRequestIDIsExact(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	dir := c.writeProject("idem", "project \"idem\" {}\nenvironment \"dev\" {}\n", map[string]string{"hello": ""})
	req := deployRequestIn(t, dir, "idem", "dev", "hello", "1")
	first, err := c.api.Deploy(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.api.Deploy(context.Background(), req)
	if err != nil || again.ID != first.ID {
		t.Fatalf("the same request again: %v %v, want release %s", again, err, first.ID)
	}
	other := req
	other.Version = "2"
	_, err = c.api.Deploy(context.Background(), other)
	if !client.IsKind(err, "RequestIDReused") || !strings.Contains(err.Error(), first.ID) {
		t.Fatalf("the request id with another version: %v", err)
	}
	mustState(t, c.wait(first.ID, 60*time.Second), "Success")
	list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Project: "idem"})
	if err != nil || len(list) != 1 {
		t.Fatalf("%d releases (%v), want 1", len(list), err)
	}
}
