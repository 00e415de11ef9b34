package server_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/podmantest"
)

var (
	imageOnce sync.Once
	imageDir  string
	imageErr  error
)

// imageRepo is the repository the e2e hello images are tagged in, one tag
// per release version.
var imageRepo = fmt.Sprintf("localhost/rwy-e2e-hello-%d", os.Getpid())

// dockerCluster is a cluster whose agent and server use the package's
// podman (DOCKER_HOST, inherited by both), with the hello image (FROM
// scratch + the static examples/hello) tagged for each of versions. It
// skips, saying why, without podman. Not parallel: it sets DOCKER_HOST.
func dockerCluster(t *testing.T, versions ...string) (*cluster, *container.Engine) {
	t.Helper()
	pe := podmantest.Shared(t, podmantest.Options{})
	t.Setenv("DOCKER_HOST", pe.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := container.Connect(ctx, pe.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	imageOnce.Do(func() {
		if imageDir, imageErr = os.MkdirTemp("", "rwy-e2e-image-"); imageErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", filepath.Join(imageDir, "hello"), "./examples/hello")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			imageErr = fmt.Errorf("build examples/hello: %v\n%s", err, out)
			return
		}
		df := "FROM scratch\nCOPY hello /hello\nENV HOST=0.0.0.0\nEXPOSE 8080\nCMD [\"/hello\"]\n"
		if imageErr = os.WriteFile(filepath.Join(imageDir, "Dockerfile"), []byte(df), 0o644); imageErr != nil {
			return
		}
		_, imageErr = e.Build(ctx, container.Build{Context: imageDir, Tags: []string{imageRepo + ":base"}}, io.Discard)
		os.RemoveAll(imageDir)
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	for _, v := range versions {
		if err := e.Tag(ctx, imageRepo+":base", imageRepo+":"+v); err != nil {
			t.Fatal(err)
		}
	}
	return startCluster(t), e
}

// writeDockerManifest writes a project whose dev environment has target
// docker and the hello service run from imageRepo:{{VERSION}}; body is
// added to the service (a canary block, an env override).
func (c *cluster) writeDockerManifest(strategy, deployBody, body string) {
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
  }
%s
}
`, service, imageRepo, c.mark, strategy, deployBody, body)
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
			c.writeDockerManifest(strategy, canary, "")
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
	c.writeDockerManifest("blue_green", "", "")
	mustState(t, c.deploy(service, "1"), "Success")
	c.writeDockerManifest("blue_green", "", "  environment \"dev\" {\n    env = { REQUIRE = \"DATABASE_URL\" }\n  }")
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
