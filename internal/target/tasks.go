package target

import (
	"context"
	"errors"
	"sync"

	"github.com/runwayhq/runway/internal/config"
)

// Task is a one-off command run with a release's environment (pre_deploy,
// verify).
type Task struct {
	// ID is deterministic per release and task: a task id runs at most once.
	ID      string
	Name    string
	Ref     ServiceRef
	Release string
	Spec    *config.Service
	Command []string
	// PreviewGroup, when set, means the task gets PREVIEW_URL: the preview
	// route of that group.
	PreviewGroup string
}

// TaskResult is how a task ended.
type TaskResult struct {
	ExitCode int
	Output   string // the tail of its output, for the release's events
}

// TaskStatus is an observation of a task.
type TaskStatus struct {
	Done   bool
	Result TaskResult // when Done
}

// ErrTaskNotStarted is returned (wrapped) by ObserveTask for an id that was
// never started, or was stopped.
var ErrTaskNotStarted = errors.New("task not started")

// ErrTaskLost is returned (wrapped) by ObserveTask when a task's process
// ended without a result the target kept (killed from outside, the machine
// rebooted): it did run, so it is not run again by itself.
var ErrTaskLost = errors.New("task lost")

// Tasks run one-off tasks in two halves, so that a server that crashes
// while a task runs re-attaches to it when it resumes instead of running it
// a second time.
type Tasks interface {
	// StartTask starts t unless a task with t.ID was started before (running
	// or finished): then it does nothing. The task runs on when ctx ends and
	// when the caller's process dies.
	StartTask(ctx context.Context, t Task) error
	// ObserveTask reports the task of id; Done once it ended. A task started
	// by an earlier process of the server is observed the same way when
	// Capabilities.TaskReattach.
	ObserveTask(ctx context.Context, ref ServiceRef, id string) (TaskStatus, error)
	// StopTask kills a running task (a halt, the deadline) and forgets it, so
	// a later StartTask runs it again. A missing or finished task is not an
	// error (a finished one keeps its result).
	StopTask(ctx context.Context, ref ServiceRef, id string) error
}

// TaskLocks serialise one process's calls about one task id (start, observe,
// stop), as an implementation of Tasks needs them to be; calls about
// different ids run concurrently. The zero value is ready to use.
type TaskLocks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// Lock locks task id and returns its unlock.
func (l *TaskLocks) Lock(id string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*sync.Mutex{}
	}
	m := l.m[id]
	if m == nil {
		m = &sync.Mutex{}
		l.m[id] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}
