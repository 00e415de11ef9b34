package container

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// TaskResult is how a one-off container ended.
type TaskResult struct {
	ExitCode int
	// Output is the task's stdout and stderr in the order of the engine's
	// timestamps (see Output), capped to its last max bytes.
	Output string
}

// Wait blocks until the container named ref has stopped and returns its
// exit code and output (the last max bytes). It may be called again after
// a crash of the caller: the container is found by its name, and a task
// that finished meanwhile is answered at once.
func (e *Engine) Wait(ctx context.Context, ref string, max int) (TaskResult, error) {
	c, err := e.WaitStopped(ctx, ref)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return TaskResult{}, fmt.Errorf("task %s: %w", ref, ErrNotFound)
		}
		return TaskResult{}, err
	}
	out, err := e.Output(ctx, ref, max)
	if err != nil {
		return TaskResult{}, err
	}
	return TaskResult{ExitCode: c.ExitCode, Output: out}, nil
}

// Output returns the last max bytes of what the container wrote, stdout and
// stderr in the order of the engine's timestamps (it reads the two streams
// apart, so lines written to both within microseconds may swap).
func (e *Engine) Output(ctx context.Context, ref string, max int) (string, error) {
	var lines []LogLine
	err := e.Logs(ctx, ref, LogOptions{}, func(l LogLine) error {
		lines = append(lines, l)
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return "", err
	}
	// The two streams are read apart; their timestamps interleave them.
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	s := b.String()
	if max > 0 && len(s) > max {
		s = s[len(s)-max:]
	}
	return s, nil
}
