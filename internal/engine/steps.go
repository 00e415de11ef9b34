package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/redact"
	"github.com/runwayhq/runway/internal/strategy"
)

// steps runs steps from the persisted index on. Before a step acts its index
// (and, the first time, its start) is persisted; a resumed run re-runs that
// step, which is safe because steps are idempotent. interruptible(i) says
// whether a halt or the deadline stops step i (checked before it and while
// it waits). With retry, a failing step is tried again until the deadline
// (clean-up must not give up on a transient error); without, the first
// error ends the state.
func (r *run) steps(ctx context.Context, s State, steps strategy.Steps, deadline time.Time, interruptible func(int) bool, retry bool) error {
	for i := r.rel.Step; i < len(steps); i++ {
		if i != r.rel.Step || r.rel.StepStartedAt.IsZero() {
			if err := r.saveStep(ctx, i, steps[i].String()); err != nil {
				r.e.log.Error("persist release step; it resumes on restart", "release", r.rel.ID, "err", err)
				return errStop
			}
		}
		if r.crash(s, i, false) {
			return errStop
		}
		check := func() error { return nil }
		if interruptible(i) {
			// In clean-up (retry) the deadline bounds the retries, not the
			// release: only a halt interrupts it.
			timeout := deadline
			if retry {
				timeout = time.Time{}
			}
			check = func() error { return r.interrupted(ctx, timeout) }
		}
		if err := check(); err != nil {
			return err
		}
		for {
			err := r.step(ctx, steps[i], deadline, check)
			if err == nil {
				break
			}
			if errors.Is(err, errStop) || !retry || permanent(err) {
				return err
			}
			if !r.e.opts.Now().Before(deadline) {
				return err
			}
			r.e.event(ctx, r.rel.ID, s, i, "retrying: "+err.Error(), nil)
			if !r.sleep(ctx, r.e.opts.PollInterval) {
				return errStop
			}
		}
		if r.crash(s, i, true) {
			return errStop
		}
	}
	return nil
}

// permanent errors are decisions, not failures to retry.
func permanent(err error) bool {
	return errors.Is(err, ErrHalted) || errors.Is(err, ErrAnalysisFailed) || errors.Is(err, ErrBadRelease)
}

// step performs one step. Driver errors become DeployErrors; waits poll the
// target and call check (halt, deadline) every PollInterval.
func (r *run) step(ctx context.Context, st strategy.Step, deadline time.Time, check func() error) error {
	d := r.drv
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	fail := func(err error) error {
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return r.ctxError(ctx, err)
		}
		return newError(ErrDeploy, "%s: %v", st, err)
	}
	switch s := st.(type) {
	case strategy.RunTask:
		res, err := r.runTask(ctx, d, Task{ID: s.ID, Name: s.Name, Ref: r.ref, Release: s.Release,
			Spec: &r.spec.Service, Command: s.Command, PreviewGroup: previewGroup(s)}, check)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return err // halted or past the deadline while it ran
			}
			return fail(err)
		}
		if res.ExitCode != 0 {
			return newError(ErrDeploy, "%s command %q exited %d: %s", s.Name, s.Command, res.ExitCode, redact.Tail(res.Output, maxTaskOutput))
		}
		r.e.event(ctx, r.rel.ID, State(r.rel.State), r.rel.Step, s.Name+" exited 0", nil)
		return nil
	case strategy.EnsureGroup:
		spec, err := r.specOf(ctx, s.Release)
		if err != nil {
			return fail(err)
		}
		return fail(d.EnsureGroup(ctx, GroupSpec{Ref: r.ref, Group: s.Group, Release: s.Release, Spec: spec, Count: s.Count}))
	case strategy.ScaleGroup:
		return fail(d.ScaleGroup(ctx, r.ref, s.Group, s.Count, s.Drain))
	case strategy.DeleteGroup:
		return fail(d.DeleteGroup(ctx, r.ref, s.Group, s.Drain))
	case strategy.SetRoutes:
		return fail(d.SetRoutes(ctx, r.ref, s.Routes))
	case strategy.SetPreview:
		return fail(d.SetPreview(ctx, r.ref, s.Group))
	case strategy.WaitHealthy:
		return r.poll(ctx, check, func() (bool, error) {
			g, err := d.ObserveGroup(ctx, r.ref, s.Group)
			if err != nil {
				return false, fail(err)
			}
			if s.MaxTerms > 0 && g.Terminated >= s.MaxTerms {
				return false, newError(ErrHalted, "%d instances of %s crashed or were terminated (max_terms %d)", g.Terminated, s.Group, s.MaxTerms)
			}
			return g.Healthy >= s.Min, nil
		}, func() error {
			return newError(ErrTimeout, "%s: not done by the deadline", st)
		})
	case strategy.Pause:
		until := r.rel.StepStartedAt.Add(s.Duration)
		return r.poll(ctx, check, func() (bool, error) {
			return !r.e.opts.Now().Before(until), nil
		}, nil)
	case strategy.Analyze:
		var last string
		return r.poll(ctx, check, func() (bool, error) {
			c, err := d.WindowStats(ctx, r.ref, s.Canary, s.Window)
			if err != nil {
				return false, fail(err)
			}
			var parts []strategy.WindowStats
			for _, g := range s.Stable {
				w, err := d.WindowStats(ctx, r.ref, g, s.Window)
				if err != nil {
					return false, fail(err)
				}
				parts = append(parts, w)
			}
			v, why := strategy.Judge(s, c, strategy.Merge(parts...))
			last = why
			switch v {
			case strategy.Fail:
				return false, newError(ErrAnalysisFailed, "%s", why)
			case strategy.Pass:
				r.e.event(ctx, r.rel.ID, State(r.rel.State), r.rel.Step, "analysis passed: "+why, map[string]any{"canary": c})
				return true, nil
			}
			return false, nil
		}, func() error {
			return newError(ErrTimeout, "canary analysis undecided at the deadline: %s", last)
		})
	}
	return newError(ErrDeploy, "unknown step %T", st)
}

// maxTaskOutput is how much of a failed task's output a release keeps.
const maxTaskOutput = 2 << 10

// runTask runs a task while watching check (halt, deadline) every poll
// interval: a halt cancels the task's context, which makes the driver kill
// it at once, instead of waiting for it to end.
func (r *run) runTask(ctx context.Context, d Driver, t Task, check func() error) (TaskResult, error) {
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		res TaskResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := d.RunTask(tctx, t)
		done <- result{res, err}
	}()
	tick := time.NewTicker(r.e.opts.PollInterval)
	defer tick.Stop()
	for {
		select {
		case out := <-done:
			return out.res, out.err
		case <-tick.C:
			if err := check(); err != nil {
				cancel()
				<-done
				return TaskResult{}, err
			}
		}
	}
}

func previewGroup(s strategy.RunTask) string {
	if s.Preview {
		return s.Group
	}
	return ""
}

// poll calls cond until it is done or fails, calling check (halt, deadline)
// in between: soon at first, then every PollInterval (see nextPoll). When
// ctx's deadline passes, it returns onDeadline's error (a Timeout) if given.
func (r *run) poll(ctx context.Context, check func() error, cond func() (bool, error), onDeadline func() error) error {
	var wait time.Duration
	for {
		if err := check(); err != nil {
			return err
		}
		done, err := cond()
		if err != nil || done {
			return err
		}
		wait = nextPoll(wait, r.e.opts.PollInterval)
		if !r.sleep(ctx, wait) {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && context.Cause(ctx) == context.DeadlineExceeded && onDeadline != nil {
				return onDeadline()
			}
			return r.ctxError(ctx, ctx.Err())
		}
	}
}

// firstPoll is the first wait of a poll. A new group is usually healthy at
// its first health check, 100 ms after its processes start, so looking only
// a whole PollInterval after creating it made every deploy wait that long
// (bench/README.md, Releases).
const firstPoll = 50 * time.Millisecond

// nextPoll returns the wait after prev (0 for the first): firstPoll, then
// doubling up to max.
func nextPoll(prev, max time.Duration) time.Duration {
	if prev <= 0 {
		return min(firstPoll, max)
	}
	return min(2*prev, max)
}

// specOf returns the manifest of release id: this release's own, or an
// earlier one from the store (to re-create a previous group on rollback).
func (r *run) specOf(ctx context.Context, id string) (*config.Service, error) {
	if id == r.rel.ID {
		return &r.spec.Service, nil
	}
	rel, err := r.e.st.GetRelease(ctx, id)
	if err != nil {
		// Unknown to this server: the driver can still scale a group that
		// exists, and says so if it must create it.
		return nil, nil
	}
	var spec ReleaseSpec
	if err := json.Unmarshal(rel.Spec, &spec); err != nil {
		return nil, fmt.Errorf("decode release %s: %w", id, err)
	}
	return &spec.Service, nil
}
