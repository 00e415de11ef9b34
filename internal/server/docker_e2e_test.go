package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/podmantest"
)

// imageRepo is the repository the e2e hello images are tagged in, one tag
// per release version.
var imageRepo = fmt.Sprintf("localhost/rwy-e2e-hello-%d", os.Getpid())

// dockerCluster is a cluster whose agent and server use the package's
// podman (DOCKER_HOST, inherited by both), with the tests' hello image
// tagged imageRepo:<version> for each of versions. It skips, saying why,
// without podman. Not parallel: it sets DOCKER_HOST.
func dockerCluster(t *testing.T, versions ...string) (*cluster, *container.Engine) {
	t.Helper()
	c, e, _ := dockerClusterWith(t, podmantest.Options{}, versions...)
	return c, e
}

// dockerClusterWith is dockerCluster on the package's engine of opts (one
// with a registry), which it returns too.
func dockerClusterWith(t *testing.T, opts podmantest.Options, versions ...string) (*cluster, *container.Engine, *podmantest.Engine) {
	t.Helper()
	pe := podmantest.Shared(t, opts)
	t.Setenv("DOCKER_HOST", pe.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := container.Connect(ctx, pe.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	hello := pe.HelloImage(t)
	for _, v := range versions {
		if err := e.Tag(ctx, hello, imageRepo+":"+v); err != nil {
			t.Fatal(err)
		}
	}
	return startCluster(t), e, pe
}

// writeDockerManifest writes a project whose dev environment has target
// docker and the hello service run from imageRepo:{{VERSION}}; the bodies
// are added to its deploy and hooks blocks and to the service (a canary
// block, a pre_deploy hook, an env override).
func (c *cluster) writeDockerManifest(strategy, deployBody, hooksBody, body string) {
	c.t.Helper()
	project := fmt.Sprintf("project %q {}\nenvironment \"dev\" {\n  target = \"docker\"\n}\n", projectName)
	svc := fmt.Sprintf(`service %q {
  image   = "%s:{{VERSION}}"
  port    = 8080
  version = "1.0.0"
  env = {
    GREETING  = "e2e"
    TEST_MARK = %q
  }
  health {
    path                = "/healthz"
    interval            = "200ms"
    timeout             = "200ms"
    healthy_threshold   = 1
    unhealthy_threshold = 3
    start_period        = "5s"
  }
  scale {
    min     = 1
    desired = 2
    max     = 10
  }
  deploy {
    strategy         = %q
    timeout          = "60s"
    scale_down_delay = "1s"
    drain_timeout    = "5s"
    rolling {
      max_surge       = 1
      max_unavailable = 0
    }
%s
  }
  hooks {
    stop_timeout = "5s"
%s
  }
%s
}
`, service, imageRepo, c.mark, strategy, deployBody, hooksBody, body)
	dir := filepath.Join(c.dir, "project")
	if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte(project), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, service+".service.hcl"), []byte(svc), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.applyProject()
}

// TestDockerStrategies: releases of target docker — containers run by the
// agent on podman, behind its proxy — with blue_green, rolling and canary
// under steady load: no request fails, v2 serves alone after, and v1's
// containers are gone.
func TestDockerStrategies(t *testing.T) {
	for _, strategy := range []string{"blue_green", "rolling", "canary"} {
		t.Run(strategy, func(t *testing.T) {
			c, e := dockerCluster(t, "1", "2")
			canary := ""
			if strategy == "canary" {
				canary = "    canary {\n" + canarySteps + "\n    }"
			}
			c.writeDockerManifest(strategy, canary, "", "")
			mustState(t, c.deploy(service, "1"), "Success")
			c.onlyVersion(service, "1")
			v1, err := e.List(context.Background(), map[string]string{"dev.runway.service": service, "dev.runway.environment": env})
			if err != nil || len(v1) != 2 {
				t.Fatalf("v1 containers: %d (%v), want 2", len(v1), err)
			}

			stop := c.load(service)
			start := time.Now()
			rel := c.deploy(service, "2")
			res := stop()
			t.Logf("docker %s v1→v2 took %s", strategy, time.Since(start).Round(time.Millisecond))
			mustState(t, rel, "Success")
			noFailures(t, "docker "+strategy+" v1→v2", res)
			if rel.Failed != 0 || rel.Served == 0 {
				t.Errorf("release record: served %d, failed %d; want served > 0, failed 0", rel.Served, rel.Failed)
			}
			c.onlyVersion(service, "2")
			waitFor(t, 30*time.Second, "v1's containers gone", func() bool {
				for _, old := range v1 {
					if _, err := e.Inspect(context.Background(), old.ID); err == nil {
						return false
					}
				}
				return true
			})
		})
	}
}

// TestDockerCrashLoopFailsClean: a v2 whose containers exit at once ends
// FailureClean, its error quoting the container's last line, while v1
// keeps serving.
func TestDockerCrashLoopFailsClean(t *testing.T) {
	c, _ := dockerCluster(t, "1", "2")
	c.writeDockerManifest("blue_green", "", "", "")
	mustState(t, c.deploy(service, "1"), "Success")
	c.writeDockerManifest("blue_green", "", "", "  environment \"dev\" {\n    env = { REQUIRE = \"DATABASE_URL\" }\n  }")
	stop := c.load(service)
	rel := c.deploy(service, "2")
	res := stop()
	mustState(t, rel, "FailureClean")
	if !strings.Contains(rel.Error, "FATAL: DATABASE_URL is not set") {
		t.Errorf("release error %q does not quote the container's last line", rel.Error)
	}
	noFailures(t, "docker crash loop", res)
	c.onlyVersion(service, "1")
}

// TestDockerPreDeploy: the pre_deploy hook runs as a one-off container of
// the release's image with the release's environment; one that succeeds
// lets the release go on, one that fails ends it FailureClean naming its
// exit status and quoting its output, v1 serving on.
func TestDockerPreDeploy(t *testing.T) {
	c, e := dockerCluster(t, "1", "2")
	c.writeDockerManifest("blue_green", "", `    pre_deploy = ["/hello", "migrate"]`, "")
	rel := c.deploy(service, "1")
	mustState(t, rel, "Success")
	c.writeDockerManifest("blue_green", "", `    pre_deploy = ["/hello", "migrate"]`, "  environment \"dev\" {\n    env = { MIGRATE_FAIL = \"{{VERSION}}\" }\n  }")
	stop := c.load(service)
	rel = c.deploy(service, "2")
	noFailures(t, "docker pre_deploy fails", stop())
	mustState(t, rel, "FailureClean")
	if rel.ErrorKind != "DeployError" || !strings.Contains(rel.Error, "exited 1") || !strings.Contains(rel.Error, "migrations: nothing to do\n") || !strings.Contains(rel.Error, "migrations: failed (MIGRATE_FAIL is set)\n") {
		t.Errorf("release error %s: %q, want a DeployError with the exit status and the hook's output", rel.ErrorKind, rel.Error)
	}
	c.onlyVersion(service, "1")
	tasks, err := e.List(context.Background(), map[string]string{"dev.runway.task-name": "pre_deploy"})
	if err != nil || len(tasks) != 0 {
		t.Errorf("pre_deploy containers left: %d (%v), want none once their results are kept", len(tasks), err)
	}
}

// TestDockerAgentKill9: the agent killed with SIGKILL leaves its containers
// running; the agent started again re-adopts the same containers, the
// proxy serves them, and the next release goes through.
func TestDockerAgentKill9(t *testing.T) {
	c, e := dockerCluster(t, "1", "2")
	c.writeDockerManifest("blue_green", "", "", "")
	mustState(t, c.deploy(service, "1"), "Success")
	labels := map[string]string{"dev.runway.service": service, "dev.runway.environment": env}
	before, err := e.List(context.Background(), labels)
	if err != nil || len(before) != 2 {
		t.Fatalf("v1 containers: %d (%v), want 2", len(before), err)
	}
	args := c.agent.cmd.Args[1:]
	c.agent.stop(t, syscall.SIGKILL)
	for _, ct := range before {
		got, err := e.Inspect(context.Background(), ct.ID)
		if err != nil || !got.Running {
			t.Fatalf("container %s after the agent's SIGKILL: %+v, %v; want it running", ct.Name, got, err)
		}
	}
	c.agent = startProc(t, "agent", []string{"TEST_MARK=" + c.mark}, args...)
	waitFor(t, 30*time.Second, "the restarted agent's proxy serving v1", func() bool {
		got := c.versions(service, 5)
		return got["1"] == 5
	})
	after, err := e.List(context.Background(), labels)
	if err != nil || len(after) != 2 {
		t.Fatalf("containers after the restart: %d (%v), want the same 2", len(after), err)
	}
	for i := range before {
		if containerIDs(after)[i] != containerIDs(before)[i] {
			t.Fatalf("containers %v after the restart, want the same %v", containerIDs(after), containerIDs(before))
		}
	}
	for _, g := range c.groups(service) {
		for _, in := range g.Instances {
			if !in.Adopted {
				t.Errorf("instance %s not adopted after the restart", in.ID)
			}
		}
	}
	stop := c.load(service)
	mustState(t, c.deploy(service, "2"), "Success")
	noFailures(t, "docker v1→v2 after an agent restart", stop())
	c.onlyVersion(service, "2")
}

func containerIDs(cs []container.Container) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	sort.Strings(ids)
	return ids
}

// TestDockerDeployBuilds: runway deploy of a service with a build block
// builds its image on the environment's engine when the version's tag is
// missing, then releases it; a second deploy of the same version does not
// build again.
func TestDockerDeployBuilds(t *testing.T) {
	c, e := dockerCluster(t)
	dir, app := c.helloApp()
	df := "FROM scratch\nCOPY hello /hello\nENV HOST=0.0.0.0\nEXPOSE 8080\nCMD [\"/hello\"]\n"
	if err := os.WriteFile(filepath.Join(app, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := fmt.Sprintf("localhost/rwy-e2e-built-%d", os.Getpid())
	c.writeDockerManifest("blue_green", "", "", fmt.Sprintf("  environment \"dev\" {\n    image = \"%s:{{VERSION}}\"\n    build {\n      context = \"app\"\n    }\n  }", repo))
	t.Cleanup(func() { _ = e.RemoveImage(context.Background(), repo+":7") })
	out, err := c.cli("deploy", service, "--env", env, "--file", dir, "--version", "7", "--yes", "--wait")
	if err != nil {
		t.Fatalf("runway deploy: %v\n%s", err, out)
	}
	if !strings.Contains(out, "is not on the engine: building it") || !strings.Contains(out, "COPY hello /hello") {
		t.Fatalf("runway deploy did not build the missing image:\n%s", out)
	}
	c.onlyVersion(service, "7")
	out, err = c.cli("deploy", service, "--env", env, "--file", dir, "--version", "7", "--yes", "--wait")
	if err != nil {
		t.Fatalf("second runway deploy: %v\n%s", err, out)
	}
	if strings.Contains(out, "building it") {
		t.Fatalf("the second deploy built the image again:\n%s", out)
	}
}

// TestDockerImagesPrune: runway images lists each release's image and
// whether the engine has it; runway images prune --keep 1 removes the
// images of older releases and keeps the one the newest release (serving)
// runs.
func TestDockerImagesPrune(t *testing.T) {
	c, e := dockerCluster(t)
	dir, app := c.helloApp()
	repo := fmt.Sprintf("localhost/rwy-e2e-pruned-%d", os.Getpid())
	c.writeDockerManifest("blue_green", "", "", fmt.Sprintf("  environment \"dev\" {\n    image = \"%s:{{VERSION}}\"\n    build {\n      context = \"app\"\n      args = { V = \"{{VERSION}}\" }\n    }\n  }", repo))
	for _, v := range []string{"1", "2", "3"} {
		t.Cleanup(func() { _ = e.RemoveImage(context.Background(), repo+":"+v) })
		// A layer per version, so that each version is an image of its own.
		df := fmt.Sprintf("FROM scratch\nARG V\nCOPY hello /hello\nLABEL version=%s\nENV HOST=0.0.0.0\nEXPOSE 8080\nCMD [\"/hello\"]\n", v)
		if err := os.WriteFile(filepath.Join(app, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := c.cli("deploy", service, "--env", env, "--file", dir, "--version", v, "--yes", "--wait"); err != nil {
			t.Fatalf("runway deploy %s: %v\n%s", v, err, out)
		}
	}
	out, err := c.cli("images", service, "--env", env, "--file", dir)
	if err != nil {
		t.Fatalf("runway images: %v\n%s", err, out)
	}
	for _, v := range []string{"1", "2", "3"} {
		if !strings.Contains(out, repo+":"+v+"  sha256:") {
			t.Fatalf("runway images does not list %s:%s on the engine:\n%s", repo, v, out)
		}
	}
	out, err = c.cli("images", "prune", service, "--env", env, "--file", dir, "--keep", "1", "--yes")
	if err != nil {
		t.Fatalf("runway images prune: %v\n%s", err, out)
	}
	for v, want := range map[string]bool{"1": false, "2": false, "3": true} {
		_, err := e.InspectImage(context.Background(), repo+":"+v)
		if got := err == nil; got != want {
			t.Errorf("image %s:%s on the engine after prune --keep 1: %v, want %v (%v)\n%s", repo, v, got, want, err, out)
		}
	}
	c.onlyVersion(service, "3")
}

// TestDockerRegistryPinsDigest: with a registry in the environment, runway
// deploy pushes the built image and the release pins its digest; a
// rollback runs that digest (pulled from the registry once the engine's
// copies are gone), so exactly the bytes v1 ran before.
func TestDockerRegistryPinsDigest(t *testing.T) {
	c, e, pe := dockerClusterWith(t, podmantest.Options{Registry: true})
	dir, app := c.helloApp()
	repo := pe.Registry + "/e2e/hello"
	c.writeDockerManifest("blue_green", "", "", fmt.Sprintf("  environment \"dev\" {\n    image = \"%s:{{VERSION}}\"\n    build {\n      context = \"app\"\n    }\n  }", repo))
	project := fmt.Sprintf("project %q {}\nenvironment \"dev\" {\n  target   = \"docker\"\n  registry = %q\n}\n", projectName, pe.Registry+"/e2e")
	if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte(project), 0o644); err != nil {
		t.Fatal(err)
	}
	c.applyProject()
	pinned := map[string]string{}
	for _, v := range []string{"1", "2"} {
		df := fmt.Sprintf("FROM scratch\nCOPY hello /hello\nLABEL version=%s\nENV HOST=0.0.0.0\nEXPOSE 8080\nCMD [\"/hello\"]\n", v)
		if err := os.WriteFile(filepath.Join(app, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := c.cli("deploy", service, "--env", env, "--file", dir, "--version", v, "--yes", "--wait")
		if err != nil {
			t.Fatalf("runway deploy %s: %v\n%s", v, err, out)
		}
		list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Environment: env, Service: service, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		rel, err := c.api.Release(context.Background(), list[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		var spec struct{ Image string }
		if err := json.Unmarshal(rel.Manifest, &spec); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(spec.Image, repo+"@sha256:") {
			t.Fatalf("release v%s runs %q, want %s pinned by digest", v, spec.Image, repo)
		}
		pinned[v] = spec.Image
	}
	if pinned["1"] == pinned["2"] {
		t.Fatalf("v1 and v2 pinned the same digest %s", pinned["1"])
	}
	// The engine's copies of v1 go: the rollback must pull v1's bytes.
	for _, ref := range []string{repo + ":1", pinned["1"]} {
		_ = e.RemoveImage(context.Background(), ref)
	}
	stop := c.load(service)
	if out, err := c.cli("rollback", service, "--env", env, "--yes", "--wait"); err != nil {
		t.Fatalf("runway rollback: %v\n%s", err, out)
	}
	noFailures(t, "docker rollback to a pinned digest", stop())
	c.onlyVersion(service, "1")
	cs, err := e.List(context.Background(), map[string]string{"dev.runway.service": service, "dev.runway.environment": env})
	if err != nil || len(cs) == 0 {
		t.Fatalf("containers after the rollback: %v (%v)", cs, err)
	}
	for _, ct := range cs {
		if ct.Running && ct.Image != pinned["1"] {
			t.Errorf("container %s runs %s after the rollback, want v1's digest %s", ct.Name, ct.Image, pinned["1"])
		}
	}
}

// helloApp makes the build context project/app (the static examples/hello)
// and returns the project's directory and the context's.
func (c *cluster) helloApp() (dir, app string) {
	c.t.Helper()
	dir = filepath.Join(c.dir, "project")
	app = filepath.Join(dir, "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(app, "hello"), "../../examples/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("build examples/hello: %v\n%s", err, out)
	}
	return dir, app
}

// TestDockerSecrets: containers get the release's secrets like processes
// (the value reaches the instance), and neither the instances' logs nor a
// failed pre_deploy container's kept output nor any file of the server's
// and the agent's data dirs holds the value, though both print it.
func TestDockerSecrets(t *testing.T) {
	c, _ := dockerCluster(t, "1", "2")
	value := distinctive(t, "docker")
	body := "  secrets = [\"DB_PASSWORD\"]\n  environment \"dev\" {\n    env = { LOG_ENV = \"DB_PASSWORD\" }\n  }"
	c.writeDockerManifest("blue_green", "", `    pre_deploy = ["/hello", "migrate"]`, body)
	c.putSecret(service, false, map[string]string{"DB_PASSWORD": value})
	mustState(t, c.deploy(service, "1"), "Success")
	c.onlyDigest("DB_PASSWORD", value, "containers of v1")
	failing := "  secrets = [\"DB_PASSWORD\"]\n  environment \"dev\" {\n    env = { LOG_ENV = \"DB_PASSWORD\", MIGRATE_FAIL = \"1\" }\n  }"
	c.writeDockerManifest("blue_green", "", `    pre_deploy = ["/hello", "migrate"]`, failing)
	rel := c.deploy(service, "2")
	mustState(t, rel, "FailureClean")
	if !strings.Contains(rel.Error, "DB_PASSWORD=") || strings.Contains(rel.Error, value) {
		t.Errorf("the failed hook's kept output %q: want its DB_PASSWORD line, without the value", redactFor(rel.Error, value))
	}
	var logs string
	waitFor(t, 30*time.Second, "the instances' start lines in runway logs", func() bool {
		logs, _ = c.cli("logs", service, "--env", env)
		return strings.Count(logs, "DB_PASSWORD=") >= 2
	})
	if strings.Contains(logs, value) {
		t.Errorf("runway logs shows the value:\n%s", redactFor(logs, value))
	}
	for _, dir := range []string{c.serverDir, c.agentDir} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(value)) {
				t.Errorf("file %s holds the secret value", p)
			}
			return nil
		})
	}
}
