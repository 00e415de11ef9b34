package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/procfs"
	"github.com/runwayhq/runway/internal/redact"
	"github.com/runwayhq/runway/internal/runenv"
	"github.com/runwayhq/runway/internal/target"
)

// A task runs as its own process group, a child of a /bin/sh that writes the
// task's exit code to a file when it ends, with its output in another file:
// neither needs the server that started it, so a task outlives a crash of
// the server and the next server re-attaches to it (ObserveTask reads the
// files). Under DATA_DIR/tasks, per task id:
//
//	<id>.json  the record: starting, running (pid and start time) or done (exit code, output)
//	<id>.out   the output of a running task
//	<id>.lock  locked (flock) by the wrapper for as long as it lives
//	<id>.pid   the wrapper's pid, written first
//	<id>.exit  its exit code, written (atomically, by rename) as it ends
//
// The record says "starting" before the process starts, and the server
// holds the lock while it starts it: the wrapper inherits the lock, so a
// server that crashed before it recorded the pid finds out from the lock
// whether the task started (held, or the exit file there) or not (free,
// no exit file), and starts it only then (settleStarting). A task is
// never started twice.

// taskRecord is a task's record. Records written before tasks re-attached
// have no state: they are done.
type taskRecord struct {
	State string `json:"state,omitempty"` // "starting", "running", or "" when done
	// Release is the task's release: its secrets are redacted from the
	// output kept when it ends.
	Release  string `json:"release,omitempty"`
	PID      int    `json:"pid,omitempty"`
	Start    uint64 `json:"start_ticks,omitempty"`
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
}

const (
	taskRunning  = "running"
	taskStarting = "starting"
	// maxTaskOutput is the tail of a task's output its result keeps.
	maxTaskOutput = 4 << 10
)

// taskWrapper writes its pid to $1.pid, runs the task ("$@", without the
// lock's descriptor 3, which the wrapper keeps until it exits) and writes
// the task's exit status to $1.exit when it ends (128+n for a signal).
const taskWrapper = `f=$1; shift; echo $$ > "$f.pid.tmp" && mv "$f.pid.tmp" "$f.pid"; "$@" 3>&-; c=$?; printf '%s' "$c" > "$f.exit.tmp" && mv "$f.exit.tmp" "$f.exit"`

// taskFiles are the files of a task besides its record.
var taskFiles = []string{".out", ".exit", ".pid", ".lock"}

// lockTask opens the task's lock file and tries to lock it: ok is false
// when another process (a live wrapper) holds it.
func (d *Driver) lockTask(id string) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(d.taskPath(id, ".lock"), os.O_CREATE|os.O_RDWR, fsutil.FileMode)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock task %s: %w", id, err)
	}
	return f, true, nil
}

// settleStarting decides a task whose record says "starting" (a server
// stopped between writing it and recording the started process): it
// returns the task's record as running (its pid from the wrapper's pid
// file; pid 0 when it ended already, its exit file there), the record
// unchanged while the wrapper lives but has not written its pid yet, or
// nil when the task never started (its record removed).
func (d *Driver) settleStarting(id string, r *taskRecord) (*taskRecord, error) {
	f, free, err := d.lockTask(id)
	if err != nil {
		return nil, err
	}
	if free {
		// The wrapper is gone (it writes its exit file before it exits), or
		// never ran.
		defer f.Close()
		if _, err := os.Stat(d.taskPath(id, ".exit")); err == nil {
			done := taskRecord{State: taskRunning, Release: r.Release}
			return &done, d.writeTask(id, done)
		}
		if err := os.Remove(d.taskPath(id, ".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, nil
	}
	b, err := os.ReadFile(d.taskPath(id, ".pid"))
	pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || perr != nil || pid <= 0 {
		return r, nil // the wrapper has only just started
	}
	start, err := procfs.ProcessStartTicks(pid)
	if err != nil {
		return r, nil
	}
	running := taskRecord{State: taskRunning, Release: r.Release, PID: pid, Start: start}
	return &running, d.writeTask(id, running)
}

func (d *Driver) taskPath(id, ext string) string {
	return filepath.Join(d.taskDir, safeName(id)+ext)
}

func (d *Driver) readTask(id string) (*taskRecord, error) {
	b, err := os.ReadFile(d.taskPath(id, ".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r taskRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("task record %s: %w", id, err)
	}
	return &r, nil
}

func (d *Driver) writeTask(id string, r taskRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(d.taskPath(id, ".json"), b, fsutil.FileMode)
}

// StartTask starts a one-off command with the release's environment, once
// per task id (a started or finished task is not started again). Tasks of
// different ids run concurrently.
func (d *Driver) StartTask(ctx context.Context, t target.Task) error {
	unlock := d.taskLocks.Lock(t.ID)
	defer unlock()
	r, err := d.readTask(t.ID)
	if err == nil && r != nil && r.State == taskStarting {
		r, err = d.settleStarting(t.ID, r)
	}
	if err != nil || r != nil {
		return err
	}
	if len(t.Command) == 0 {
		return errors.New("task has no command")
	}
	if err := os.MkdirAll(d.taskDir, fsutil.DirMode); err != nil {
		return err
	}
	p := runenv.Process{Project: t.Spec.Project, Service: t.Ref.Service, Environment: t.Ref.Environment,
		Release: t.Release, Version: t.Spec.Version, Instance: "task"}
	argv := runenv.ExpandAll(t.Command, p.Values())
	argv[0] = commandPath(t.Spec, argv[0])
	for _, ext := range []string{".exit", ".pid"} {
		if err := os.Remove(d.taskPath(t.ID, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	out, err := os.OpenFile(d.taskPath(t.ID, ".out"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fsutil.FileMode)
	if err != nil {
		return err
	}
	defer out.Close()
	lock, free, err := d.lockTask(t.ID)
	if err != nil {
		return err
	}
	if !free {
		return fmt.Errorf("task %s: its lock file %s is held by another process", t.Name, d.taskPath(t.ID, ".lock"))
	}
	defer lock.Close() // the wrapper holds it on
	// Not CommandContext: the task outlives the call, and the server.
	cmd := exec.Command("/bin/sh", append([]string{"-c", taskWrapper, "sh", d.taskPath(t.ID, "")}, argv...)...)
	cmd.ExtraFiles = []*os.File{lock} // descriptor 3
	cmd.Dir = workDir(t.Spec)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	extra := []string{"RUNWAY_TASK=" + t.Name}
	if t.PreviewGroup != "" {
		host := naming.Preview(t.Ref.Service, t.Ref.Environment, t.Spec.Domain)
		extra = append(extra, "PREVIEW_URL=http://"+host+":"+portOf(d.proxyHTTP), "PREVIEW_HOST="+host, "PREVIEW_ADDR="+d.proxyHTTP)
	}
	values, err := d.ReleaseSecrets(ctx, t.Release)
	if err != nil {
		return err
	}
	cmd.Env = runenv.Environ(p, t.Spec.Env, values, extra...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := d.writeTask(t.ID, taskRecord{State: taskStarting, Release: t.Release}); err != nil {
		return fmt.Errorf("record task %s: %w", t.Name, err)
	}
	if err := cmd.Start(); err != nil {
		_ = os.Remove(d.taskPath(t.ID, ".json"))
		return fmt.Errorf("start %s: %w", t.Name, err)
	}
	pid := cmd.Process.Pid
	// Reaped here while this server lives; by init (or runway up) after.
	go func() { _ = cmd.Wait() }()
	if d.crashAfterTaskStart != nil && d.crashAfterTaskStart() {
		return nil
	}
	start, err := procfs.ProcessStartTicks(pid)
	if err == nil {
		err = d.writeTask(t.ID, taskRecord{State: taskRunning, Release: t.Release, PID: pid, Start: start})
	}
	if err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return fmt.Errorf("record task %s: %w", t.Name, err)
	}
	return nil
}

// ObserveTask reports a task; one that ended has its result recorded
// (redacted, the tail of its output) and its files removed.
func (d *Driver) ObserveTask(ctx context.Context, _ target.ServiceRef, id string) (target.TaskStatus, error) {
	unlock := d.taskLocks.Lock(id)
	defer unlock()
	r, err := d.readTask(id)
	if err != nil {
		return target.TaskStatus{}, err
	}
	if r != nil && r.State == taskStarting {
		if r, err = d.settleStarting(id, r); err != nil {
			return target.TaskStatus{}, err
		}
		if r != nil && r.State == taskStarting {
			return target.TaskStatus{}, nil // running: its wrapper holds the lock
		}
	}
	if r == nil {
		return target.TaskStatus{}, fmt.Errorf("task %s: %w", id, target.ErrTaskNotStarted)
	}
	if r.State != taskRunning {
		return target.TaskStatus{Done: true, Result: target.TaskResult{ExitCode: r.ExitCode, Output: r.Output}}, nil
	}
	alive := procfs.ProcessAlive(r.PID, r.Start)
	b, err := os.ReadFile(d.taskPath(id, ".exit"))
	if errors.Is(err, fs.ErrNotExist) {
		if alive {
			return target.TaskStatus{}, nil
		}
		return target.TaskStatus{}, fmt.Errorf("task %s (pid %d) ended without an exit status (killed from outside, or the machine restarted): %w",
			id, r.PID, target.ErrTaskLost)
	}
	if err != nil {
		return target.TaskStatus{}, err
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return target.TaskStatus{}, fmt.Errorf("task %s: exit status %q: %w", id, b, err)
	}
	// The task saw the release's secrets: their values go before the
	// output is kept (and the raw output file is removed below).
	values, err := d.ReleaseSecrets(ctx, r.Release)
	if err != nil {
		return target.TaskStatus{}, err
	}
	output, err := redact.Output(func(n int) (string, error) { return tail(d.taskPath(id, ".out"), int64(n)) }, values, maxTaskOutput)
	if err != nil {
		return target.TaskStatus{}, err
	}
	res := target.TaskResult{ExitCode: code, Output: output}
	if err := d.writeTask(id, taskRecord{ExitCode: res.ExitCode, Output: res.Output}); err != nil {
		return target.TaskStatus{}, err
	}
	for _, ext := range taskFiles {
		_ = os.Remove(d.taskPath(id, ext))
	}
	return target.TaskStatus{Done: true, Result: res}, nil
}

// StopTask kills a running task's process group and forgets the task, so a
// later StartTask runs it again. A finished task keeps its result.
func (d *Driver) StopTask(ctx context.Context, _ target.ServiceRef, id string) error {
	unlock := d.taskLocks.Lock(id)
	defer unlock()
	r, err := d.readTask(id)
	for err == nil && r != nil && r.State == taskStarting {
		// Its pid is known once the wrapper wrote it (at once), or the
		// task never started.
		if r, err = d.settleStarting(id, r); err == nil && r != nil && r.State == taskStarting {
			select {
			case <-ctx.Done():
				return fmt.Errorf("stop task %s: %w", id, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if err != nil || r == nil || r.State != taskRunning {
		return err
	}
	if procfs.ProcessAlive(r.PID, r.Start) {
		_ = syscall.Kill(-r.PID, syscall.SIGKILL)
		for procfs.ProcessAlive(r.PID, r.Start) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("stop task %s: %w", id, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	for _, ext := range append(taskFiles, ".json") {
		if err := os.Remove(d.taskPath(id, ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// tail returns the last n bytes of a file.
func tail(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Size() > n {
		if _, err := f.Seek(st.Size()-n, io.SeekStart); err != nil {
			return "", err
		}
	}
	b, err := io.ReadAll(f)
	return string(b), err
}
