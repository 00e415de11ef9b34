package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/podmantest"
)

// buildProject writes a project whose dev environment has target docker
// on the package's podman, and service web built from app/ holding the
// static examples/hello and dockerfile.
func buildProject(t *testing.T, host, dockerfile string) string {
	t.Helper()
	dir := t.TempDir()
	app := filepath.Join(dir, "web", "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(app, "hello"), "../../examples/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build examples/hello: %v\n%s", err, out)
	}
	files := map[string]string{
		"runway.hcl":            fmt.Sprintf("project \"acme\" {}\nenvironment \"dev\" {\n  target = \"docker\"\n  docker {\n    host = %q\n  }\n}\n", host),
		"web/web.service.hcl":   "service \"web\" {\n  image = \"localhost/rwy-cli-web:{{VERSION}}\"\n  build {\n    context = \"app\"\n    args = { GREETING = \"{{ENVIRONMENT}}\" }\n  }\n}\n",
		"web/app/Dockerfile":    dockerfile,
		"web/app/.dockerignore": "secret.txt\n",
		"web/app/secret.txt":    "not sent",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "web", "web.service.hcl")
}

// TestBuildCommand: runway build sends the build context to the
// environment's engine, streams the output and tags the image with the
// version; a failing step is named, exit 1.
func TestBuildCommand(t *testing.T) {
	pe := podmantest.Shared(t, podmantest.Options{})
	file := buildProject(t, pe.Host, "FROM scratch\nARG GREETING\nENV GREETING=$GREETING\nCOPY hello /hello\nCMD [\"/hello\"]\n")
	stdout, stderr, code := run(t, "build", "web", "--env", "dev", "--file", file, "--version", "1.2.0")
	if code != 0 {
		t.Fatalf("runway build exited %d:\n%s%s", code, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "built localhost/rwy-cli-web:1.2.0 (sha256:") {
		t.Fatalf("stdout %q", stdout)
	}
	if !strings.Contains(stderr, "COPY hello /hello") {
		t.Fatalf("the build's output was not streamed:\n%s", stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := container.Connect(ctx, pe.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	img, err := e.InspectImage(ctx, "localhost/rwy-cli-web:1.2.0")
	if err != nil || img.Labels["dev.runway.version"] != "1.2.0" {
		t.Fatalf("image %+v, %v", img, err)
	}
	t.Cleanup(func() { _ = e.RemoveImage(context.Background(), "localhost/rwy-cli-web:1.2.0") })

	bad := buildProject(t, pe.Host, "FROM scratch\nCOPY hello /hello\nRUN [\"/nope\"]\n")
	stdout, stderr, code = run(t, "build", "web", "--env", "dev", "--file", bad, "--version", "1.3.0")
	// The engine may count steps of its own (podman adds the labels'), so
	// the total is not checked; the failing step is the third.
	if code != 1 || !regexp.MustCompile(`build failed at step 3/\d+: RUN \["/nope"\]`).MatchString(stderr) {
		t.Fatalf("failing build: exit %d\nstdout: %q\nstderr: %q", code, stdout, stderr)
	}
}

// TestBuildRefusals: nothing to build, and a missing context, are errors
// that say where and what to do (no engine needed).
func TestBuildRefusals(t *testing.T) {
	file := buildProject(t, "unix:///nonexistent/engine.sock", "FROM scratch\n")
	if err := os.RemoveAll(filepath.Join(filepath.Dir(file), "app")); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, "build", "web", "--env", "dev", "--file", file)
	if code != 1 || !strings.Contains(stderr, "web.service.hcl:4:15") || !strings.Contains(stderr, "Build context not found") {
		t.Fatalf("missing context: exit %d\n%s", code, stderr)
	}
	_, stderr, code = run(t, "build", "web", "--file", file)
	if code != 2 || !strings.Contains(stderr, "--env is required") {
		t.Fatalf("no --env: exit %d\n%s", code, stderr)
	}
}
