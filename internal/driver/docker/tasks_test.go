package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/podmantest"
	"github.com/runwayhq/runway/internal/target"
)

func TestMain(m *testing.M) { os.Exit(podmantest.Main(m)) }

// engine returns a client of the package's podman and the tests' hello
// image; it skips, saying why, without podman.
func engine(t *testing.T) (*container.Engine, string) {
	t.Helper()
	pe := podmantest.Shared(t, podmantest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := container.Connect(ctx, pe.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, pe.HelloImage(t)
}

var taskSeq atomic.Int64

// task returns a task of a release of image with a unique id; its
// container is removed after the test.
func task(t *testing.T, e *container.Engine, image string, env map[string]string, cmd ...string) target.Task {
	id := fmt.Sprintf("rel-%d-%d/pre_deploy", os.Getpid(), taskSeq.Add(1))
	t.Cleanup(func() { _ = e.Remove(context.Background(), TaskContainer(id)) })
	ref := target.ServiceRef{Project: "acme", Environment: "development", Service: "web"}
	return target.Task{ID: id, Name: "pre_deploy", Ref: ref, Release: "r1", Command: cmd,
		Spec: &config.Service{Name: "web", Project: "acme", Version: "1.2.3", Image: image, Env: env, Init: true}}
}

func await(t *testing.T, ts *Tasks, tk target.Task) target.TaskResult {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := ts.ObserveTask(context.Background(), tk.Ref, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Done {
			return st.Result
		}
		if time.Now().After(deadline) {
			t.Fatal("task not done within a minute")
		}
		<-time.After(50 * time.Millisecond)
	}
}

// TestTaskExitCodeAndOutput: a pre_deploy in a container of the release's
// image, with the release's environment, ends with its exit code and
// output kept; its container is then removed, and starting it again does
// nothing.
func TestTaskExitCodeAndOutput(t *testing.T) {
	e, image := engine(t)
	ts := NewTasks(e, t.TempDir(), "127.0.0.1:8080")
	tk := task(t, e, image, map[string]string{"MIGRATE_FAIL": "{{VERSION}}"}, "/hello", "migrate")
	ctx := context.Background()
	if err := ts.StartTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	res := await(t, ts, tk)
	if res.ExitCode != 1 || !strings.Contains(res.Output, "migrations: nothing to do\n") || !strings.Contains(res.Output, "migrations: failed (MIGRATE_FAIL is set)\n") {
		t.Fatalf("task ended %d with %q; want 1 and both lines (stdout and stderr: the engine reads them apart, so in no fixed order)", res.ExitCode, res.Output)
	}
	if _, err := e.Inspect(ctx, TaskContainer(tk.ID)); !errors.Is(err, container.ErrNotFound) {
		t.Fatalf("the finished task's container is still there (%v)", err)
	}
	if err := ts.StartTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Inspect(ctx, TaskContainer(tk.ID)); !errors.Is(err, container.ErrNotFound) {
		t.Fatal("a finished task was started again")
	}
	if again := await(t, ts, tk); again != res {
		t.Fatalf("result %+v after a second start, want the first %+v", again, res)
	}
}

// TestTaskReattachAfterCrash: a restarted server (a new Tasks over the
// same records and engine) does not start a running task again, and
// observes it to its end.
func TestTaskReattachAfterCrash(t *testing.T) {
	e, image := engine(t)
	dir := t.TempDir()
	ctx := context.Background()
	tk := task(t, e, image, map[string]string{"PORT": "8080"}, "/hello")
	if err := NewTasks(e, dir, "").StartTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	first, err := e.Inspect(ctx, TaskContainer(tk.ID))
	if err != nil {
		t.Fatal(err)
	}
	ts := NewTasks(e, dir, "")
	if err := ts.StartTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if st, err := ts.ObserveTask(ctx, tk.Ref, tk.ID); err != nil || st.Done {
		t.Fatalf("observe after the restart: %+v, %v; want running", st, err)
	}
	cs, err := e.List(ctx, map[string]string{LabelTask: tk.ID})
	if err != nil || len(cs) != 1 || cs[0].ID != first.ID {
		t.Fatalf("containers of the task after a second start: %+v (%v), want only %s", cs, err, first.ID)
	}
	// It ends (SIGTERM: hello exits 0 once its requests are done).
	if err := e.Stop(ctx, first.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	res := await(t, ts, tk)
	if res.ExitCode != 0 || !strings.Contains(res.Output, "stopping") {
		t.Fatalf("task ended %d with %q", res.ExitCode, res.Output)
	}
}

// TestStopTaskRunsAgain: a stopped task is forgotten (its container
// killed and removed), so it starts again; a task whose container was
// removed from outside is lost, not restarted.
func TestStopTaskRunsAgain(t *testing.T) {
	e, image := engine(t)
	ts := NewTasks(e, t.TempDir(), "")
	ctx := context.Background()
	tk := task(t, e, image, map[string]string{"PORT": "8080"}, "/hello")
	if err := ts.StartTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	first, err := e.Inspect(ctx, TaskContainer(tk.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.StopTask(ctx, tk.Ref, tk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.ObserveTask(ctx, tk.Ref, tk.ID); !errors.Is(err, target.ErrTaskNotStarted) {
		t.Fatalf("observe after stop: %v, want ErrTaskNotStarted", err)
	}
	if err := ts.StartTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	second, err := e.Inspect(ctx, TaskContainer(tk.ID))
	if err != nil || second.ID == first.ID {
		t.Fatalf("after stop and start: container %s (%v), want a new one", second.ID, err)
	}
	if err := e.Remove(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.ObserveTask(ctx, tk.Ref, tk.ID); !errors.Is(err, target.ErrTaskLost) {
		t.Fatalf("observe of a task whose container was removed: %v, want ErrTaskLost", err)
	}
}
