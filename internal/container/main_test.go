package container

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/podmantest"
)

func TestMain(m *testing.M) {
	code := podmantest.Main(m)
	if helloDir != "" {
		os.RemoveAll(helloDir)
	}
	os.Exit(code)
}

// connect returns a client of the package's shared podman (with a registry
// when asked); it skips, saying why, when podman is not installed.
func connect(t *testing.T, opts podmantest.Options) (*Engine, *podmantest.Engine) {
	t.Helper()
	pe := podmantest.Shared(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := Connect(ctx, pe.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, pe
}

var (
	helloOnce sync.Once
	helloDir  string
	helloErr  error
)

// helloContext returns a build context holding the static examples/hello
// binary (CGO_ENABLED=0, so it runs in a FROM scratch image), built once.
func helloContext(t *testing.T) string {
	t.Helper()
	helloOnce.Do(func() {
		helloDir, helloErr = os.MkdirTemp("", "rwy-hello-")
		if helloErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", filepath.Join(helloDir, "hello"), "./examples/hello")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			helloErr = fmt.Errorf("build examples/hello: %v\n%s", err, out)
		}
	})
	if helloErr != nil {
		t.Fatal(helloErr)
	}
	return helloDir
}

// contextDir copies the hello binary into a new directory with the given
// files (a Dockerfile, a .dockerignore, ...).
func contextDir(t *testing.T, files map[string]string) string {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join(helloContext(t), "hello"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const helloDockerfile = "FROM scratch\nCOPY hello /hello\nEXPOSE 8080\nENV PORT=8080 HOST=0.0.0.0\nCMD [\"/hello\"]\n"

var nameSeq atomic.Int64

// uniqueName returns a container or image name no other test of this run
// uses; a cleanup removes the container of that name.
func uniqueName(t *testing.T, e *Engine) string {
	name := fmt.Sprintf("rwy-test-%d-%d", os.Getpid(), nameSeq.Add(1))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Remove(ctx, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// buildHello builds the hello image under a new tag and returns the tag.
func buildHello(t *testing.T, e *Engine) string {
	t.Helper()
	tag := fmt.Sprintf("localhost/rwy-hello:t%d-%d", os.Getpid(), nameSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out strings.Builder
	if _, err := e.Build(ctx, Build{Context: contextDir(t, map[string]string{"Dockerfile": helloDockerfile}), Tags: []string{tag}}, &out); err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	return tag
}
