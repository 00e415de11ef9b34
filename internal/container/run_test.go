package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/podmantest"
)

// TestRunServesOnPublishedPort: a container of the hello image answers on
// its port published on 127.0.0.1, is found by its labels, logs what it
// wrote, stops on SIGTERM with exit 0 and is removed.
func TestRunServesOnPublishedPort(t *testing.T) {
	e, _ := connect(t, podmantest.Options{})
	tag := buildHello(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := uniqueName(t, e)
	labels := map[string]string{"dev.runway.test": name, "dev.runway.service": "web"}
	c, err := e.Run(ctx, Spec{
		Name: name, Image: tag, Env: []string{"PORT=8080", "GREETING=containers"}, Labels: labels,
		Port: 8080, StopTimeout: 5 * time.Second, Init: true, CPUs: 0.5, MemoryBytes: 64 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Running || c.HostPort == 0 {
		t.Fatalf("container not running with a published port: %+v", c)
	}
	again, err := e.Run(ctx, Spec{Name: name, Image: tag, Port: 8080})
	if err != nil || again.ID != c.ID {
		t.Fatalf("a second Run of the same name made %v (err %v), want the first container %s", again.ID, err, c.ID)
	}
	body := awaitGet(t, fmt.Sprintf("http://127.0.0.1:%d/", c.HostPort))
	if !strings.Contains(body, "hello containers") {
		t.Fatalf("GET / = %q", body)
	}
	list, err := e.List(ctx, map[string]string{"dev.runway.test": name})
	if err != nil || len(list) != 1 || list[0].ID != c.ID || list[0].Labels["dev.runway.service"] != "web" {
		t.Fatalf("List by label = %+v, %v", list, err)
	}
	if err := e.Stop(ctx, name, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c, err = e.Inspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if c.Running || c.ExitCode != 0 {
		t.Fatalf("after Stop: running %v, exit %d; want a graceful exit 0", c.Running, c.ExitCode)
	}
	var lines []LogLine
	if err := e.Logs(ctx, name, LogOptions{}, func(l LogLine) error { lines = append(lines, l); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 || lines[0].Time.IsZero() {
		t.Fatalf("no timestamped log lines: %+v", lines)
	}
	if err := e.Stop(ctx, name, time.Second); err != nil {
		t.Fatalf("Stop of a stopped container: %v", err)
	}
	if err := e.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Inspect(ctx, name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Inspect after Remove: %v, want ErrNotFound", err)
	}
	if err := e.Remove(ctx, name); err != nil {
		t.Fatalf("Remove of a removed container: %v", err)
	}
}

// TestRunMissingImage: a container of an image the engine does not have is
// ErrNotFound, naming the image.
func TestRunMissingImage(t *testing.T) {
	e, _ := connect(t, podmantest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := e.Run(ctx, Spec{Name: uniqueName(t, e), Image: "localhost/rwy-none:missing"})
	if err == nil || !strings.Contains(err.Error(), "rwy-none:missing") {
		t.Fatalf("Run of a missing image: %v", err)
	}
}

// TestTaskExitCodeAndOutput: a one-off container's exit code and output are
// kept, and Wait answers again, the same, after it ended (a re-attach).
func TestTaskExitCodeAndOutput(t *testing.T) {
	e, _ := connect(t, podmantest.Options{})
	tag := buildHello(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name := uniqueName(t, e)
	if _, err := e.Run(ctx, Spec{Name: name, Image: tag, Cmd: []string{"/hello", "migrate"}, Env: []string{"MIGRATE_FAIL=1"}, Init: true}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res, err := e.Wait(ctx, name, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 1 || !strings.Contains(res.Output, "migrations: nothing to do\n") || !strings.Contains(res.Output, "migrations: failed (MIGRATE_FAIL is set)\n") {
			t.Fatalf("task ended %d with %q; want 1 with both lines (stdout and stderr: the engine reads them apart, so in no fixed order)", res.ExitCode, res.Output)
		}
	}
	if _, err := e.Wait(ctx, "rwy-no-such-task", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Wait for a missing task: %v, want ErrNotFound", err)
	}
}

// TestPushPinsDigest: an image pushed to a local registry is named by its
// digest, and a container runs from that digest after the local tag is gone.
func TestPushPinsDigest(t *testing.T) {
	e, pe := connect(t, podmantest.Options{Registry: true})
	tag := buildHello(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	remote := pe.Registry + "/runway/hello:v1"
	if err := e.Tag(ctx, tag, remote); err != nil {
		t.Fatal(err)
	}
	ref, err := e.Push(ctx, remote, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, pe.Registry+"/runway/hello@sha256:") {
		t.Fatalf("Push = %q, want %s/runway/hello@sha256:…", ref, pe.Registry)
	}
	local, err := e.InspectImage(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{tag, remote} {
		if err := e.RemoveImage(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	name := uniqueName(t, e)
	c, err := e.Run(ctx, Spec{Name: name, Image: ref, Port: 8080, Init: true})
	if err != nil {
		t.Fatal(err)
	}
	awaitGet(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", c.HostPort))
	img, err := e.InspectImage(ctx, ref)
	if err != nil || img.ID != local.ID {
		t.Fatalf("digest %s runs image %s, the pushed tag was %s (%v)", ref, img.ID, local.ID, err)
	}
}

// awaitGet polls url until it answers 200 (or 30 s pass) and returns the body.
func awaitGet(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(wait)
	}
}

// TestRunOnChosenPortFollowAndUsage: a container published on a port the
// caller chose answers there; following its logs sees a line written
// after the follow began and ends when the container stops; WaitStopped
// reports the exit; Usage reads memory in use.
func TestRunOnChosenPortFollowAndUsage(t *testing.T) {
	e, _ := connect(t, podmantest.Options{})
	tag := buildHello(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := freePort(t)
	name := uniqueName(t, e)
	c, err := e.Run(ctx, Spec{Name: name, Image: tag, Port: 8080, HostPort: port, Init: true, StopTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c.HostPort != port {
		t.Fatalf("published on %d, want the chosen %d", c.HostPort, port)
	}
	awaitGet(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
	u, err := e.Usage(ctx, name)
	if err != nil || u.MemoryBytes <= 0 {
		t.Fatalf("Usage = %+v, %v; want memory in use", u, err)
	}
	followed := make(chan error, 1)
	lines := make(chan LogLine, 100)
	// Since is taken before the stop: a follow that attaches only after the
	// container exited (a loaded machine) still reads the line from there.
	since := time.Now().Add(-time.Second)
	go func() {
		followed <- e.Logs(ctx, name, LogOptions{Follow: true, Since: since}, func(l LogLine) error {
			lines <- l
			return nil
		})
	}()
	// hello logs "stopping, finishing requests in flight" on SIGTERM: a
	// line written after the follow began.
	go func() { _ = e.Stop(ctx, name, 5*time.Second) }()
	stopped, err := e.WaitStopped(ctx, name)
	if err != nil || stopped.Running || stopped.ExitCode != 0 {
		t.Fatalf("WaitStopped = %+v, %v", stopped, err)
	}
	select {
	case err := <-followed:
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("follow did not end when the container stopped")
	}
	close(lines)
	var got []string
	for l := range lines {
		got = append(got, l.Text)
	}
	if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "stopping") }) {
		t.Fatalf("follow saw %q, not the shutdown line written after it began", got)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestStarts: the engine's events count the starts of a container name,
// also of containers removed since.
func TestStarts(t *testing.T) {
	e, _ := connect(t, podmantest.Options{})
	tag := buildHello(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	since := time.Now().Add(-time.Second)
	name := uniqueName(t, e)
	for range 2 {
		if _, err := e.Run(ctx, Spec{Name: name, Image: tag, Cmd: []string{"/hello", "migrate"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.WaitStopped(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := e.Remove(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	n, err := e.Starts(ctx, name, since)
	if err != nil || n != 2 {
		t.Fatalf("Starts = %d, %v; want 2", n, err)
	}
}
