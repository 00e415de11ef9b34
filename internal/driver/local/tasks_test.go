package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/procfs"
	"github.com/runwayhq/runway/internal/target"
)

// TestTaskStartCrashWindow: a server that dies after starting a task's
// process and before recording its pid leaves the record "starting"; the
// next server finds the task running (its wrapper holds the task's lock),
// follows it to its result and does not start it again; one whose process
// never started is started by the next StartTask; and one still running is
// stopped by StopTask.
func TestTaskStartCrashWindow(t *testing.T) {
	lt := startLocal(t)
	ref := target.ServiceRef{Project: "acme", Environment: "staging", Service: "web"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runs := filepath.Join(t.TempDir(), "runs")
	task := func(n string, script string) target.Task {
		return target.Task{ID: "01JTASKCRASH00000000000001/" + n, Name: n, Ref: ref, Release: "01JTASKCRASH00000000000001",
			Spec: lt.spec(ref), Command: []string{"sh", "-c", script, "sh", runs}}
	}
	observe := func(d *Driver, tk target.Task) target.TaskStatus {
		t.Helper()
		for {
			st, err := d.ObserveTask(ctx, ref, tk.ID)
			if err != nil {
				t.Fatalf("observe %s: %v", tk.Name, err)
			}
			if st.Done {
				return st
			}
			if ctx.Err() != nil {
				t.Fatalf("task %s did not end", tk.Name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// Started, then the server "died" before recording the pid.
	crashed := task("migrate", `echo run >> "$1"; sleep 0.3; echo migrated`)
	lt.d.crashAfterTaskStart = func() bool { return true }
	if err := lt.d.StartTask(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	if r, _ := lt.d.readTask(crashed.ID); r == nil || r.State != taskStarting {
		t.Fatalf("record after the crash: %+v, want starting", r)
	}
	next := lt.newDriver()
	if err := next.StartTask(ctx, crashed); err != nil { // the resumed release's step again
		t.Fatal(err)
	}
	if st := observe(next, crashed); st.Result.ExitCode != 0 || !strings.Contains(st.Result.Output, "migrated") {
		t.Fatalf("result %+v", st.Result)
	}
	if b, _ := os.ReadFile(runs); string(b) != "run\n" {
		t.Fatalf("runs %q: want the task run once", b)
	}
	for _, ext := range taskFiles {
		if _, err := os.Stat(next.taskPath(crashed.ID, ext)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", ext, err)
		}
	}

	// Recorded "starting", never started (the server died before the fork).
	never := task("seed", `echo seeded`)
	if err := os.MkdirAll(lt.taskDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := next.writeTask(never.ID, taskRecord{State: taskStarting, Release: never.Release}); err != nil {
		t.Fatal(err)
	}
	if _, err := next.ObserveTask(ctx, ref, never.ID); !errors.Is(err, target.ErrTaskNotStarted) {
		t.Fatalf("observe a task that never started: %v, want ErrTaskNotStarted", err)
	}
	if err := next.StartTask(ctx, never); err != nil {
		t.Fatal(err)
	}
	if st := observe(next, never); !strings.Contains(st.Result.Output, "seeded") {
		t.Fatalf("result %+v", st.Result)
	}

	// Still running after the crash: StopTask finds its pid and kills it.
	long := task("long", `sleep 30`)
	next.crashAfterTaskStart = func() bool { return true }
	if err := next.StartTask(ctx, long); err != nil {
		t.Fatal(err)
	}
	var pid int
	for pid == 0 && ctx.Err() == nil {
		b, _ := os.ReadFile(next.taskPath(long.ID, ".pid"))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		time.Sleep(5 * time.Millisecond)
	}
	start, err := procfs.ProcessStartTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := lt.newDriver().StopTask(ctx, ref, long.ID); err != nil {
		t.Fatal(err)
	}
	if procfs.ProcessAlive(pid, start) {
		t.Errorf("the task's wrapper (pid %d) outlived StopTask", pid)
	}
	if r, _ := next.readTask(long.ID); r != nil {
		t.Errorf("record after StopTask: %+v", r)
	}
}
