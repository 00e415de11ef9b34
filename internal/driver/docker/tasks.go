package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/redact"
	"github.com/runwayhq/runway/internal/runenv"
	"github.com/runwayhq/runway/internal/target"
)

// Labels of task containers.
const (
	LabelTask        = "dev.runway.task"
	LabelTaskName    = "dev.runway.task-name"
	LabelProject     = "dev.runway.project"
	LabelEnvironment = "dev.runway.environment"
	LabelService     = "dev.runway.service"
	LabelRelease     = "dev.runway.release"
)

// maxTaskOutput is the tail of a task's output its result keeps (the
// local target's).
const maxTaskOutput = 4 << 10

// A task is its container while it runs and a record in the task
// directory once it ended (the container is then removed):
//
//	<id>.json  running (the container's id) or done (exit code, output)
//
// The record of a running task is written after the container is created;
// a server that crashes in between finds the container by name when the
// step is retried, so a task id never runs twice.
type taskRecord struct {
	State     string `json:"state,omitempty"` // "running", or "" when done
	Container string `json:"container,omitempty"`
	// Release is the task's release, whose secret values are redacted from
	// its output.
	Release  string `json:"release,omitempty"`
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
}

const taskRunning = "running"

// Tasks runs one-off tasks as containers on one engine.
type Tasks struct {
	e   *container.Engine
	dir string
	// proxyHTTP is the proxy's HTTP address, for PREVIEW_URL of verify
	// tasks.
	proxyHTTP string
	// secrets gives a release's secret values (nil: none).
	secrets func(ctx context.Context, release string) (map[string]string, error)

	locks target.TaskLocks
}

// NewTasks returns the tasks of engine e, recorded in dir.
func NewTasks(e *container.Engine, dir, proxyHTTP string) *Tasks {
	return &Tasks{e: e, dir: dir, proxyHTTP: proxyHTTP}
}

func (ts *Tasks) releaseSecrets(ctx context.Context, release string) (map[string]string, error) {
	if ts.secrets == nil {
		return nil, nil
	}
	return ts.secrets(ctx, release)
}

// TaskContainer is the name of the container of task id: readable, and
// unique per id (a digest of it), within the engine's name rules.
func TaskContainer(id string) string {
	sum := sha256.Sum256([]byte(id))
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, id)
	if len(safe) > 40 {
		safe = safe[:40]
	}
	return "runway-task-" + safe + "-" + hex.EncodeToString(sum[:6])
}

func (ts *Tasks) path(id string) string {
	return filepath.Join(ts.dir, strings.TrimPrefix(TaskContainer(id), "runway-task-")+".json")
}

func (ts *Tasks) read(id string) (*taskRecord, error) {
	b, err := os.ReadFile(ts.path(id))
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

func (ts *Tasks) write(id string, r taskRecord) error {
	if err := os.MkdirAll(ts.dir, fsutil.DirMode); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(ts.path(id), b, fsutil.FileMode)
}

// StartTask runs the task's command in a container of the release's image
// with the release's environment, once per task id (a started or finished
// task is not started again).
func (ts *Tasks) StartTask(ctx context.Context, t target.Task) error {
	unlock := ts.locks.Lock(t.ID)
	defer unlock()
	if r, err := ts.read(t.ID); err != nil || r != nil {
		return err
	}
	if len(t.Command) == 0 {
		return errors.New("task has no command")
	}
	if t.Spec == nil || t.Spec.Image == "" {
		return fmt.Errorf("task %s: the release has no image to run it in", t.Name)
	}
	p := runenv.Process{Project: t.Spec.Project, Service: t.Ref.Service, Environment: t.Ref.Environment,
		Release: t.Release, Version: t.Spec.Version, Instance: "task"}
	vals := p.Values()
	extra := []string{"RUNWAY_TASK=" + t.Name}
	if t.PreviewGroup != "" {
		host := naming.Preview(t.Ref.Service, t.Ref.Environment, t.Spec.Domain)
		extra = append(extra, "PREVIEW_URL=http://"+host+":"+portOf(ts.proxyHTTP), "PREVIEW_HOST="+host, "PREVIEW_ADDR="+ts.proxyHTTP)
	}
	values, err := ts.releaseSecrets(ctx, t.Release)
	if err != nil {
		return err
	}
	c, err := ts.e.Run(ctx, container.Spec{
		Name:  TaskContainer(t.ID),
		Image: runenv.Expand(t.Spec.Image, vals),
		Cmd:   runenv.ExpandAll(t.Command, vals),
		Env:   runenv.ContainerEnviron(p, t.Spec.Env, values, extra...),
		Labels: map[string]string{LabelTask: t.ID, LabelTaskName: t.Name, LabelProject: t.Ref.Project,
			LabelEnvironment: t.Ref.Environment, LabelService: t.Ref.Service, LabelRelease: t.Release},
		MemoryBytes: int64(t.Spec.Resources.MemoryMB) << 20,
		CPUs:        t.Spec.Resources.CPU,
		Init:        t.Spec.Init,
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", t.Name, err)
	}
	if err := ts.write(t.ID, taskRecord{State: taskRunning, Container: c.ID, Release: t.Release}); err != nil {
		_ = ts.e.Remove(context.WithoutCancel(ctx), c.ID)
		return fmt.Errorf("record task %s: %w", t.Name, err)
	}
	return nil
}

// ObserveTask reports a task; one that ended has its result recorded
// (redacted, the tail of its output) and its container removed.
func (ts *Tasks) ObserveTask(ctx context.Context, _ target.ServiceRef, id string) (target.TaskStatus, error) {
	unlock := ts.locks.Lock(id)
	defer unlock()
	r, err := ts.read(id)
	if err != nil {
		return target.TaskStatus{}, err
	}
	if r == nil {
		return target.TaskStatus{}, fmt.Errorf("task %s: %w", id, target.ErrTaskNotStarted)
	}
	if r.State != taskRunning {
		// A crash may have left the container after the result was kept.
		_ = ts.e.Remove(ctx, TaskContainer(id))
		return target.TaskStatus{Done: true, Result: target.TaskResult{ExitCode: r.ExitCode, Output: r.Output}}, nil
	}
	c, err := ts.e.Inspect(ctx, r.Container)
	if errors.Is(err, container.ErrNotFound) {
		return target.TaskStatus{}, fmt.Errorf("task %s: its container %s is gone without a result (removed from outside): %w", id, shortID(r.Container), target.ErrTaskLost)
	}
	if err != nil {
		return target.TaskStatus{}, err
	}
	if c.Running || c.State == "created" {
		return target.TaskStatus{}, nil
	}
	// The task saw the release's secrets: their values go before the
	// output is kept.
	values, err := ts.releaseSecrets(ctx, r.Release)
	if err != nil {
		return target.TaskStatus{}, err
	}
	out, err := redact.Output(func(n int) (string, error) { return ts.e.Output(ctx, c.ID, n) }, values, maxTaskOutput)
	if err != nil {
		return target.TaskStatus{}, err
	}
	res := target.TaskResult{ExitCode: c.ExitCode, Output: out}
	if err := ts.write(id, taskRecord{ExitCode: res.ExitCode, Output: res.Output}); err != nil {
		return target.TaskStatus{}, err
	}
	_ = ts.e.Remove(ctx, c.ID)
	return target.TaskStatus{Done: true, Result: res}, nil
}

// StopTask kills a running task's container and forgets the task, so a
// later StartTask runs it again. A finished task keeps its result.
func (ts *Tasks) StopTask(ctx context.Context, _ target.ServiceRef, id string) error {
	unlock := ts.locks.Lock(id)
	defer unlock()
	r, err := ts.read(id)
	if err != nil || r == nil || r.State != taskRunning {
		return err
	}
	if err := ts.e.Remove(ctx, r.Container); err != nil {
		return fmt.Errorf("stop task %s: %w", id, err)
	}
	if err := os.Remove(ts.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func portOf(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return addr[i+1:]
	}
	return addr
}
