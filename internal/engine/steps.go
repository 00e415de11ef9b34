package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/redact"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// steps runs steps from the persisted index on. Before a step acts its index
// (and, the first time, its start) is persisted; a resumed run re-runs that
// step, which is safe because steps are idempotent. interruptible(i) says
// whether a halt or the deadline stops step i (checked before it and while
// it waits). With retry, a failing step is tried again until the deadline
// (clean-up must not give up on a transient error); without, only errors the
// target marks transient are retried, and any other ends the state. While an
// interruptible step runs, a halt cancels it at once (watchHalt), even in the
// middle of a driver call that does not return.
func (r *run) steps(ctx context.Context, s State, steps strategy.Steps, deadline time.Time, interruptible func(int) bool, retry bool) error {
	retryUntil := deadline
	if retryUntil.IsZero() {
		retryUntil = r.e.opts.Now().Add(r.e.opts.CleanupTimeout)
	}
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
		began := r.e.opts.Now()
		for {
			sctx, stop := ctx, func() {}
			if interruptible(i) {
				sctx, stop = r.watchHalt(ctx)
			}
			err := r.step(sctx, steps[i], deadline, check)
			r.e.setWaiting(r.rel.ID, "")
			stop()
			if err == nil {
				break
			}
			// Clean-up retries every failure but a decision; any other
			// state only what the target marks transient (it restarts, it
			// is overloaded): steps are idempotent, so trying again is safe.
			if errors.Is(err, errStop) || !(retry && !permanent(err)) && !isTransient(err) {
				return err
			}
			if !r.e.opts.Now().Before(retryUntil) {
				return r.gaveUp(err, retry)
			}
			r.e.event(ctx, r.rel.ID, s, i, "retrying: "+err.Error(), nil)
			if !r.sleep(ctx, r.e.opts.PollInterval) {
				return errStop
			}
			if !r.e.opts.Now().Before(retryUntil) {
				return r.gaveUp(err, retry)
			}
			if cerr := check(); cerr != nil {
				if errors.Is(cerr, ErrTimeout) {
					return r.gaveUp(err, retry)
				}
				return cerr
			}
		}
		r.e.opts.Observer.StepDone(steps[i].Kind(), r.e.opts.Now().Sub(began))
		if r.crash(s, i, true) {
			return errStop
		}
	}
	return nil
}

// gaveUp is the error of a step retried until its deadline: in clean-up the
// step's last error, elsewhere a timeout that says what kept failing.
func (r *run) gaveUp(err error, cleanup bool) error {
	if cleanup {
		return err
	}
	return newError(ErrTimeout, "the release passed deploy.timeout (%s) retrying: %s", r.spec.Service.Deploy.Timeout, asError(err).Msg)
}

// permanent errors are decisions, not failures to retry.
func permanent(err error) bool {
	return errors.Is(err, ErrHalted) || errors.Is(err, ErrAnalysisFailed) || errors.Is(err, ErrBadRelease) ||
		errors.Is(err, ErrStoreBehind)
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
		if errors.Is(err, ErrStoreBehind) {
			return newError(ErrStoreBehind, "%s: %v", st, err)
		}
		e := newError(ErrDeploy, "%s: %v", st, err)
		e.transient = isTransient(err)
		return e
	}
	switch s := st.(type) {
	case strategy.RunTask:
		res, err := r.runTask(ctx, check, target.Task{ID: s.ID, Name: s.Name, Ref: r.ref, Release: s.Release,
			Spec: &r.spec.Service, Command: s.Command, PreviewGroup: previewGroup(s)})
		if e := (*Error)(nil); errors.As(err, &e) {
			return err // a halt or the deadline, decided by the wait
		}
		if err != nil {
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
		return fail(d.EnsureGroup(ctx, target.GroupSpec{Ref: r.ref, Group: s.Group, Release: s.Release, Spec: spec, Count: s.Count}))
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
			if s.MaxTerms > 0 && g.Terminated > s.MaxTerms {
				return false, r.crashLoop(ctx, s, g)
			}
			r.e.setWaiting(r.rel.ID, fmt.Sprintf("waiting for %s to be healthy: %d/%d healthy, %d starting", s.Group, g.Healthy, s.Min, g.Starting))
			return g.Healthy >= s.Min, nil
		}, func() error {
			return newError(ErrTimeout, "%s: not done by the deadline", st)
		})
	case strategy.Pause:
		until := r.rel.StepStartedAt.Add(s.Duration)
		return r.poll(ctx, check, func() (bool, error) {
			// Said once: the end of the pause, not a countdown.
			r.e.setWaiting(r.rel.ID, fmt.Sprintf("paused for %s, until %s", config.Duration{Duration: s.Duration}, until.Format("15:04:05")))
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
			r.e.setWaiting(r.rel.ID, fmt.Sprintf("analysis waits for traffic: %d/%d requests", c.Requests, s.MinRequests))
			return false, nil
		}, func() error {
			return newError(ErrTimeout, "canary analysis undecided at the deadline: %s", last)
		})
	}
	return newError(ErrDeploy, "unknown step %T", st)
}

// maxTaskOutput is how much of a failed task's output a release keeps.
const maxTaskOutput = 2 << 10

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
	return r.pollFrom(ctx, firstPoll, check, cond, onDeadline)
}

// pollFrom is poll with first as its first wait.
func (r *run) pollFrom(ctx context.Context, first time.Duration, check func() error, cond func() (bool, error), onDeadline func() error) error {
	var wait time.Duration
	for {
		if err := check(); err != nil {
			return err
		}
		done, err := cond()
		if err != nil || done {
			return err
		}
		wait = nextPoll(wait, first, r.e.opts.PollInterval)
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

// firstTaskPoll is the first wait for a task: hooks such as migrations that
// have nothing to do end within milliseconds, and observing one is a read of
// two small files.
const firstTaskPoll = 5 * time.Millisecond

// nextPoll returns the wait after prev (0 for the first): first, then
// doubling up to max.
func nextPoll(prev, first, max time.Duration) time.Duration {
	if prev <= 0 {
		return min(first, max)
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

// runTask starts t (once per id: a resumed release re-attaches to the task
// its crashed server started) and observes it to its end. A halt or the
// deadline stops the task at once, which forgets it, so a release that runs
// again runs it again; the engine closing (a crash, a restart) leaves it
// running for the next server.
func (r *run) runTask(ctx context.Context, check func() error, t target.Task) (target.TaskResult, error) {
	d := r.drv
	decided := func(err error) (target.TaskResult, error) {
		if errors.Is(err, ErrHalted) || errors.Is(err, ErrTimeout) {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if serr := d.StopTask(sctx, t.Ref, t.ID); serr != nil {
				r.e.log.Warn("stop task", "release", r.rel.ID, "task", t.ID, "err", serr)
			}
		}
		return target.TaskResult{}, err
	}
	if err := d.StartTask(ctx, t); err != nil {
		if ctx.Err() != nil {
			return decided(r.ctxError(ctx, err))
		}
		return target.TaskResult{}, fmt.Errorf("start %s: %w", t.Name, err)
	}
	var res target.TaskResult
	var observeErr error
	err := r.pollFrom(ctx, firstTaskPoll, check, func() (bool, error) {
		st, err := d.ObserveTask(ctx, t.Ref, t.ID)
		if err != nil {
			if ctx.Err() != nil {
				return false, r.ctxError(ctx, err)
			}
			observeErr = fmt.Errorf("observe %s: %w", t.Name, err)
			return false, observeErr
		}
		res = st.Result
		r.e.setWaiting(r.rel.ID, fmt.Sprintf("waiting for %s to exit", t.Name))
		return st.Done, nil
	}, func() error {
		return newError(ErrTimeout, "%s: not done by the deadline", t.Name)
	})
	if err != nil && err != observeErr {
		return decided(err)
	}
	return res, err
}

// crashLoop is the error of a group whose instances crashed more often than
// its crash budget allows, with why the last one crashed when the driver can
// tell.
func (r *run) crashLoop(ctx context.Context, s strategy.WaitHealthy, g target.GroupStatus) error {
	msg := fmt.Sprintf("group %s is crash-looping: its instances crashed or were replaced %d times, more than its crash budget of %d (scale.max_terms), before %d of them were healthy",
		s.Group, g.Terminated, s.MaxTerms, s.Min)
	rep, err := r.drv.CrashReport(ctx, r.ref, s.Group)
	switch {
	case err != nil:
		msg += fmt.Sprintf("; its output could not be read: %v", err)
	case rep.Instance != "":
		msg += fmt.Sprintf("; instance %s ended with %q", rep.Instance, rep.Exit)
		if len(rep.Lines) > 0 {
			msg += "; its last output:\n  " + strings.Join(rep.Lines, "\n  ")
		}
	}
	return newError(ErrDeploy, "%s", msg)
}

// watchHalt returns a context that a halt request cancels (with the halt as
// its cause), so that a driver call outstanding at that moment, such as one
// to an agent that stopped answering, does not hold the halt back. stop ends
// the watch.
func (r *run) watchHalt(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.e.opts.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
			}
			cur, err := r.e.st.GetRelease(ctx, r.rel.ID)
			if err == nil && cur.HaltRequested {
				cancel(newError(ErrHalted, "%s", cur.HaltReason))
				return
			}
		}
	}()
	return ctx, func() {
		close(done)
		wg.Wait()
		cancel(nil)
	}
}
