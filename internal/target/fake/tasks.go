package fake

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/runwayhq/runway/internal/target"
)

// StartTask implements target.Tasks: once per id; the task "runs" for
// FAKE_TASK_TIME and exits FAKE_TASK_EXIT. A verify task whose preview route
// does not lead to its group exits 7.
func (s *Target) StartTask(_ context.Context, t target.Task) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("StartTask"); err != nil {
		return err
	}
	if s.tasks[t.ID] != nil {
		return nil
	}
	s.runs[t.ID]++
	tk := &task{ref: t.Ref, done: time.Now().Add(duration(t.Spec.Env, "FAKE_TASK_TIME", 0))}
	if t.PreviewGroup != "" && s.preview[t.Ref] != t.PreviewGroup {
		tk.res = target.TaskResult{ExitCode: 7, Output: "no preview route to " + t.PreviewGroup}
	} else {
		code, _ := strconv.Atoi(t.Spec.Env["FAKE_TASK_EXIT"])
		tk.res = target.TaskResult{ExitCode: code, Output: fmt.Sprintf("task %s ran", t.Name)}
	}
	s.tasks[t.ID] = tk
	return nil
}

// ObserveTask implements target.Tasks.
func (s *Target) ObserveTask(_ context.Context, _ target.ServiceRef, id string) (target.TaskStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("ObserveTask"); err != nil {
		return target.TaskStatus{}, err
	}
	tk := s.tasks[id]
	if tk == nil {
		return target.TaskStatus{}, fmt.Errorf("task %s: %w", id, target.ErrTaskNotStarted)
	}
	if time.Now().Before(tk.done) {
		return target.TaskStatus{}, nil
	}
	return target.TaskStatus{Done: true, Result: tk.res}, nil
}

// StopTask implements target.Tasks.
func (s *Target) StopTask(_ context.Context, _ target.ServiceRef, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("StopTask"); err != nil {
		return err
	}
	if tk := s.tasks[id]; tk != nil && time.Now().Before(tk.done) {
		delete(s.tasks, id)
	}
	return nil
}
