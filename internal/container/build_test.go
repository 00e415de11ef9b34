package container

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/runwayhq/runway/internal/podmantest"
)

func tarNames(t *testing.T, dir, dockerfile string) []string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteContext(&buf, dir, dockerfile); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	slices.Sort(names)
	return names
}

// TestWriteContextHonoursDockerignore: excluded files and directories are
// not sent, "!" re-includes, and the Dockerfile and .dockerignore are sent
// even when excluded (as the Docker CLI does).
func TestWriteContextHonoursDockerignore(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile", "main.go", "secret.env", "node_modules/x/y.js", "logs/a.log", "logs/keep.log", "docs/readme.md"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ignore := "# comment\n*.env\nnode_modules\nlogs/*\n!logs/keep.log\nDockerfile\n.dockerignore\n**/*.md\n"
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(ignore), 0o644); err != nil {
		t.Fatal(err)
	}
	got := tarNames(t, dir, "Dockerfile")
	want := []string{".dockerignore", "Dockerfile", "docs/", "logs/", "logs/keep.log", "main.go"}
	if !slices.Equal(got, want) {
		t.Fatalf("context holds %q, want %q", got, want)
	}
}

func TestWriteContextErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ dir, dockerfile, want string }{
		{filepath.Join(dir, "missing"), "Dockerfile", "no such file"},
		{dir, "Dockerfile", "dockerfile"},
		{dir, "../Dockerfile", "outside the context"},
	} {
		err := WriteContext(io.Discard, c.dir, c.dockerfile)
		var ce *ContextError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("WriteContext(%s, %s) = %v, want a ContextError with %q", c.dir, c.dockerfile, err, c.want)
		}
	}
}

func TestReadBuildStreamNamesStep(t *testing.T) {
	for _, c := range []struct{ name, stream, step string }{
		{"podman", `{"stream":"STEP 1/3: FROM scratch\n"}{"stream":"STEP 2/3: COPY hello /hello\n"}{"stream":"--\u003e abc\n"}{"stream":"STEP 3/3: RUN [\"/nope\"]\n"}{"stream":"error running container\n"}{"error":"exit status 1","errorDetail":{"message":"exit status 1"}}`, `3/3: RUN ["/nope"]`},
		{"docker", `{"stream":"Step 1/2 : FROM scratch"}{"stream":"\n"}{"stream":"Step 2/2 : COPY nope /nope\n"}{"errorDetail":{"message":"COPY failed: file not found"},"error":"COPY failed: file not found"}`, "2/2: COPY nope /nope"},
		{"before any step", `{"errorDetail":{"message":"dockerfile parse error line 1"},"error":"dockerfile parse error line 1"}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out strings.Builder
			err := readBuildStream(strings.NewReader(c.stream), &out)
			var be *BuildError
			if !errors.As(err, &be) || be.Step != c.step {
				t.Fatalf("err = %#v, want a BuildError at step %q", err, c.step)
			}
			if c.step != "" && !strings.Contains(err.Error(), "at step "+c.step) {
				t.Fatalf("error %q does not name the step", err)
			}
			if c.step != "" && !strings.Contains(out.String(), c.step[strings.Index(c.step, ":")+2:]) {
				t.Fatalf("output was not streamed: %q", out.String())
			}
		})
	}
}

// TestBuildFailureNamesStep: a real build whose third step fails returns a
// BuildError naming that step, and the output streamed the earlier steps.
func TestBuildFailureNamesStep(t *testing.T) {
	e, _ := connect(t, podmantest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := contextDir(t, map[string]string{"Dockerfile": "FROM scratch\nCOPY hello /hello\nRUN [\"/hello\", \"migrate\"]\nRUN [\"/nope\"]\n"})
	var out strings.Builder
	_, err := e.Build(ctx, Build{Context: dir, Tags: []string{"localhost/rwy-fail:" + uniqueName(t, e)}}, &out)
	var be *BuildError
	if !errors.As(err, &be) {
		t.Fatalf("want a BuildError, got %v\n%s", err, out.String())
	}
	if be.Step != `4/4: RUN ["/nope"]` {
		t.Fatalf("failing step %q, want 4/4: RUN [\"/nope\"] (%v)", be.Step, err)
	}
	if !strings.Contains(out.String(), "migrations: nothing to do") {
		t.Fatalf("output of step 3 not streamed:\n%s", out.String())
	}
}

// TestBuildHonoursArgsAndDockerignore: build args reach the build and an
// ignored file is not in the image.
func TestBuildHonoursArgsAndDockerignore(t *testing.T) {
	e, _ := connect(t, podmantest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := contextDir(t, map[string]string{
		"Dockerfile":    "FROM scratch\nARG GREETING=default\nENV GREETING=$GREETING\nCOPY . /\n",
		".dockerignore": "secret.txt\n",
		"secret.txt":    "do not send",
	})
	tag := "localhost/rwy-args:" + uniqueName(t, e)
	t.Cleanup(func() { _ = e.RemoveImage(context.Background(), tag) })
	if _, err := e.Build(ctx, Build{Context: dir, Tags: []string{tag}, Args: map[string]string{"GREETING": "bonjour"}}, nil); err != nil {
		t.Fatal(err)
	}
	name := uniqueName(t, e)
	if _, err := e.Run(ctx, Spec{Name: name, Image: tag, Cmd: []string{"/hello", "migrate"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Wait(ctx, name, 0); err != nil {
		t.Fatal(err)
	}
	// The image's filesystem, through the engine's archive API, has no secret.
	if _, err := e.api.ContainerStatPath(ctx, name, client.ContainerStatPathOptions{Path: "/secret.txt"}); err == nil {
		t.Fatal("secret.txt excluded by .dockerignore is in the image")
	}
	if _, err := e.api.ContainerStatPath(ctx, name, client.ContainerStatPathOptions{Path: "/hello"}); err != nil {
		t.Fatalf("hello not in the image: %v", err)
	}
	img, err := e.InspectImage(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.Container.Config.Env, "GREETING=bonjour") {
		t.Fatalf("build arg not applied: env %q (image %s)", c.Container.Config.Env, img.ID)
	}
}

// FuzzReadBuildStream: any engine output — truncated JSON, odd step lines,
// errors without a step — is read without a panic, and an error message in
// it is returned as a *BuildError.
func FuzzReadBuildStream(f *testing.F) {
	f.Add(`{"stream":"STEP 1/2: FROM scratch\n"}{"stream":"STEP 2/2: RUN [\"/x\"]\n"}{"error":"exit status 1","errorDetail":{"message":"exit status 1"}}`)
	f.Add(`{"stream":"Step 1/1 : COPY a /a"}{"stream":"\n"}{"errorDetail":{"message":"COPY failed"}}`)
	f.Add(`{"stream":"partial`)
	f.Add(`{"aux":{"ID":"sha256:00"}}`)
	f.Add(`{"errorDetail":{"message":" "},"error":"\n"}`)
	f.Fuzz(func(t *testing.T, s string) {
		err := readBuildStream(strings.NewReader(s), io.Discard)
		var be *BuildError
		if errors.As(err, &be) && be.Message == "" {
			t.Fatalf("a BuildError without a message: %#v", be)
		}
	})
}
