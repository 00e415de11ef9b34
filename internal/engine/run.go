package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// errStop ends a runner without recording anything: the engine is closing,
// a test injected a crash, or progress could not be persisted. The release
// resumes from its last persisted step on the next Start.
var errStop = errors.New("runner stopped")

// errLockLost cancels a runner whose lease was taken by someone else.
var errLockLost = errors.New("the service lock was taken by another owner")

// runData is the engine's own record of a release, kept as the progress's
// Plan: the plan made in ValidateResources and what clean-up found.
type runData struct {
	Plan *strategy.Plan `json:"plan,omitempty"`
	// Base are the service's counters when the release began moving traffic.
	Base   *target.Counters `json:"base,omitempty"`
	Dirty  bool             `json:"dirty,omitempty"`
	Reason string           `json:"dirty_reason,omitempty"`
}

// run is one release being driven by this engine.
type run struct {
	e    *Engine
	rel  *store.Release
	ref  target.ServiceRef
	spec *ReleaseSpec
	drv  target.Target // the driver of the release's target
	data runData
	err  *Error

	stopRenew func()
}

func (e *Engine) run(ctx context.Context, id string) {
	rel, err := e.st.GetRelease(ctx, id)
	if err != nil {
		e.log.Error("load release", "release", id, "err", err)
		return
	}
	r := &run{e: e, rel: rel, ref: target.ServiceRef{Project: rel.Project, Environment: rel.Environment, Service: rel.Service}}
	rel.Progress.Epoch = e.epoch(id) // every SaveProgress carries it
	r.err = errorFromRecord(rel.ErrorKind, rel.Error)
	if len(rel.Plan) > 0 {
		if err := json.Unmarshal(rel.Plan, &r.data); err != nil {
			e.log.Error("decode release plan", "release", id, "err", err)
			return
		}
	}
	var spec ReleaseSpec
	if err := json.Unmarshal(rel.Spec, &spec); err == nil {
		r.spec = &spec
	}
	kind := ""
	if r.spec != nil {
		kind = r.spec.Target
	}
	if r.drv, err = e.drv.For(kind); err != nil {
		// The server lost the target's driver (reconfigured) after the
		// release was submitted. Before anything ran the release simply
		// fails; later nothing may act, so it waits for a server that has it.
		e.log.Error("release cannot run on this server", "release", id, "err", err)
		if State(rel.State) == StateValidate && rel.Step == 0 {
			_ = r.transition(ctx, StateFailureClean, newError(ErrBadRelease, "%v; this server runs %v", err, e.drv.Targets()))
		}
		return
	}
	// The runner's work is cancelled with errLockLost if the lease goes;
	// persisting uses base, which only the engine's Close cancels.
	base := ctx
	work, cancel := context.WithCancelCause(base)
	defer cancel(nil)
	defer r.renewStop()
	if e.opts.Replica != "" {
		defer r.keepClaim(work, cancel)()
	}
	if State(rel.State) != StateValidate || rel.Step > 0 {
		e.event(base, id, State(rel.State), rel.Step, "resumed", nil)
	}
	if State(rel.State).holdsLock() {
		if err := r.retakeLock(work); err != nil {
			if base.Err() != nil {
				return
			}
			msg := fmt.Sprintf("cannot take back the lock of %s: %v", r.ref, err)
			r.markDirty(msg)
			if r.transition(base, StateFailureDirty, newError(ErrDeploy, "%s", msg)) != nil {
				return
			}
		} else {
			r.renewStart(work, cancel)
		}
	}
	for !State(r.rel.State).Final() {
		s := State(r.rel.State)
		if r.crash(s, -1, false) {
			return
		}
		began := e.opts.Now()
		next, ferr := r.exec(work, s, cancel)
		if base.Err() == nil && !errors.Is(ferr, errStop) {
			e.opts.Observer.StateDone(s, e.opts.Now().Sub(began))
		}
		switch {
		case base.Err() != nil:
			return // the engine is closing: act as a crash would
		case errors.Is(context.Cause(work), errFenced):
			// Another replica claimed the release: it runs it from the
			// last recorded step; this runner writes nothing more.
			e.log.Warn("release taken over by another replica; this runner stops", "release", id)
			return
		case errors.Is(context.Cause(work), errLockLost):
			// Someone else owns the service now: touch nothing more.
			r.renewStop()
			r.markDirty(errLockLost.Error())
			next, ferr = StateFailureDirty, newError(ErrDeploy, "%v during %s", errLockLost, s)
		case errors.Is(ferr, errStop):
			return
		}
		if r.crash(s, -1, true) {
			return
		}
		if err := r.transition(base, next, ferr); err != nil {
			e.log.Error("persist release state; it resumes on restart", "release", id, "err", err)
			return
		}
	}
}

// retakeLock takes back the lease of a resumed release that held it. It is
// the release's own (same owner) unless it expired and another release took
// it; a store error is retried until that is known.
func (r *run) retakeLock(ctx context.Context) error {
	for {
		_, err := r.e.st.AcquireLock(ctx, lockKey(r.ref), r.rel.ID, r.e.opts.LockTTL)
		if err == nil || errors.Is(err, store.ErrLockHeld) {
			return err
		}
		r.e.log.Warn("take back service lock", "release", r.rel.ID, "err", err)
		if !r.sleep(ctx, r.e.opts.PollInterval) {
			return ctx.Err()
		}
	}
}

func (r *run) crash(s State, step int, after bool) bool {
	return r.e.fault != nil && r.e.fault(r.rel.ID, boundary{State: s, Step: step, After: after})
}

// storeBehind reports whether err is a store-behind refusal and makes it
// the release's error, whatever failed before: it is what needs the user's
// action (resync), and its message says so.
func (r *run) storeBehind(err error) bool {
	if !errors.Is(err, ErrStoreBehind) {
		return false
	}
	if r.err != nil && errors.Is(r.err, ErrStoreBehind) {
		return true
	}
	e := asError(err)
	if r.err != nil {
		e = &Error{Kind: ErrStoreBehind, Msg: fmt.Sprintf("%s (the release had failed before: %s)", e.Msg, r.err.Error())}
	}
	r.err = e
	return true
}

func (r *run) markDirty(reason string) {
	r.data.Dirty = true
	if r.data.Reason == "" {
		r.data.Reason = reason
	}
}

// exec performs state s and returns the next state and, on the failure
// path, why.
func (r *run) exec(ctx context.Context, s State, cancel context.CancelCauseFunc) (State, error) {
	e := r.e
	switch s {
	case StateValidate:
		if err := r.validate(); err != nil {
			return StateFailureClean, err
		}
		return StateLock, nil

	case StateLock:
		// Nothing is held or changed yet: a halt or timeout ends it here.
		if err := r.interrupted(ctx, r.rel.Deadline); err != nil {
			if errors.Is(err, errStop) {
				return "", err
			}
			return StateFailureClean, err
		}
		began := e.opts.Now()
		_, err := e.st.AcquireLock(ctx, lockKey(r.ref), r.rel.ID, e.opts.LockTTL)
		var held *store.LockHeldError
		e.opts.Observer.LockTried(e.opts.Now().Sub(began), errors.As(err, &held))
		if errors.As(err, &held) {
			return StateFailureClean, newError(ErrLockExists, "release %s holds the lock of %s until %s; wait for it or halt it",
				held.Lease.Owner, r.ref, held.Lease.ExpiresAt.Format(time.RFC3339))
		}
		if err != nil {
			if ctx.Err() != nil {
				return "", errStop
			}
			return StateFailureClean, newError(ErrDeploy, "take the lock of %s: %v", r.ref, err)
		}
		r.renewStart(ctx, cancel)
		return StateValidateResources, nil

	case StateValidateResources:
		if err := r.interrupted(ctx, r.rel.Deadline); err != nil {
			return StateCleanUpFailure, err
		}
		// Bounded by the release's deadline and a halt, like every step.
		vctx, stop := r.watchHalt(ctx)
		defer stop()
		if !r.rel.Deadline.IsZero() {
			var cancel context.CancelFunc
			vctx, cancel = context.WithDeadline(vctx, r.rel.Deadline)
			defer cancel()
		}
		for {
			err := r.validateResources(vctx)
			if err == nil {
				return StateDeploy, nil
			}
			if vctx.Err() != nil {
				err = r.ctxError(vctx, vctx.Err())
			}
			if errors.Is(err, errStop) || !isTransient(err) {
				return StateCleanUpFailure, err
			}
			r.e.event(ctx, r.rel.ID, s, -1, "retrying: "+err.Error(), nil)
			if !r.sleep(vctx, e.opts.PollInterval) {
				err = r.ctxError(vctx, vctx.Err())
				if errors.Is(err, errStop) {
					return "", err
				}
				return StateCleanUpFailure, err
			}
		}

	case StateDeploy, StateCheckHealthy:
		if r.data.Plan == nil {
			return StateCleanUpFailure, newError(ErrDeploy, "the release's plan is missing from its record")
		}
		steps := r.data.Plan.Deploy
		next := StateCheckHealthy
		if s == StateCheckHealthy {
			steps, next = r.data.Plan.Check, StateCleanUpSuccess
		}
		err := r.steps(ctx, s, steps, r.rel.Deadline, func(int) bool { return true }, false)
		if err != nil {
			return StateCleanUpFailure, err
		}
		return next, nil

	case StateCleanUpSuccess:
		p := r.data.Plan
		if p == nil {
			r.markDirty("the release's plan is missing from its record")
			return StateReleaseLockFailure, newError(ErrDeploy, "the release's plan is missing from its record")
		}
		// The clean-up bound comes on top of scale_down_delay.
		deadline := e.opts.Now().Add(e.opts.CleanupTimeout)
		for _, st := range p.Success[min(r.rel.Step, len(p.Success)):] {
			if pause, ok := st.(strategy.Pause); ok {
				deadline = deadline.Add(pause.Duration)
			}
		}
		err := r.steps(ctx, s, p.Success, deadline, p.RollbackWindow, true)
		if errors.Is(err, ErrHalted) {
			// Still inside scale_down_delay: switch back to the old groups.
			return StateCleanUpFailure, err
		}
		if err != nil {
			if errors.Is(err, errStop) {
				return "", err
			}
			if r.storeBehind(err) {
				r.markDirty("retiring the previous groups was refused: the store is behind the target")
			} else {
				r.markDirty("retiring the previous groups failed: " + err.Error())
			}
			return StateReleaseLockFailure, newError(ErrDeploy, "the new release serves, but retiring the previous groups failed: %v", err)
		}
		return StateReleaseLock, nil

	case StateReleaseLock, StateReleaseLockFailure:
		r.renewStop()
		if err := r.releaseLock(ctx); err != nil {
			if errors.Is(err, errStop) {
				return "", err
			}
			r.markDirty(err.Error())
		}
		if s == StateReleaseLock && !r.data.Dirty {
			return StateSuccess, nil
		}
		if r.data.Dirty {
			return StateFailureDirty, nil
		}
		return StateFailureClean, nil

	case StateCleanUpFailure:
		if r.data.Plan != nil {
			err := r.steps(ctx, s, r.data.Plan.Failure, e.opts.Now().Add(e.opts.CleanupTimeout), func(int) bool { return false }, true)
			if errors.Is(err, errStop) {
				return "", err
			}
			if err != nil {
				if r.storeBehind(err) {
					r.markDirty("rolling back was refused: the store is behind the target")
				} else {
					r.markDirty("rolling back failed: " + err.Error())
				}
			}
		}
		return StateReleaseLockFailure, nil
	}
	return StateFailureDirty, newError(ErrDeploy, "unknown state %q", s)
}

// validate checks the release without touching anything.
func (r *run) validate() error {
	if r.spec == nil || r.spec.Service.Name == "" || r.rel.Environment == "" {
		return newError(ErrBadRelease, "the release has no service or environment")
	}
	if _, err := strategy.Make(r.planInput(nil)); err != nil {
		return newError(ErrBadRelease, "%v", err)
	}
	if t := r.spec.Service.Deploy.Timeout.Duration; t > 0 {
		r.rel.Deadline = r.e.opts.Now().Add(t)
	}
	return nil
}

func (r *run) planInput(current []strategy.Group) strategy.Input {
	sv := r.spec.Service
	return strategy.Input{
		Service: sv.Name, Environment: r.rel.Environment, Protected: r.spec.Protected,
		Release: r.rel.ID, Scale: sv.Scale, Deploy: sv.Deploy, PreDeploy: sv.Hooks.PreDeploy,
		Current: current, Limits: r.drv.Capabilities().Plan(),
	}
}

// validateResources asks the target whether what the release needs exists,
// observes what runs, and makes the plan.
func (r *run) validateResources(ctx context.Context) error {
	d := r.drv
	if err := d.Validate(ctx, r.ref, &r.spec.Service); err != nil {
		if ctx.Err() != nil {
			return r.ctxError(ctx, err)
		}
		if errors.Is(err, ErrStoreBehind) {
			return newError(ErrStoreBehind, "%v", err)
		}
		if isTransient(err) {
			return driverError(err, "validate %s", r.ref)
		}
		return newError(ErrBadRelease, "%v", err)
	}
	groups, err := d.ListGroups(ctx, r.ref)
	if err != nil {
		return driverError(err, "list groups of %s", r.ref)
	}
	routes, err := d.Routes(ctx, r.ref)
	if err != nil {
		return driverError(err, "read routes of %s", r.ref)
	}
	weight := map[string]int{}
	for _, rt := range routes {
		weight[rt.Group] += rt.Weight
	}
	own := strategy.GroupName(r.rel.Service, r.rel.ID, r.drv.Capabilities().GroupNameMax)
	var current []strategy.Group
	for _, g := range groups {
		if g.Name == own {
			continue
		}
		current = append(current, strategy.Group{
			Name: g.Name, Release: g.Release, Count: g.Status.Healthy + g.Status.Starting,
			Healthy: g.Status.Healthy, Weight: weight[g.Name],
		})
	}
	p, err := strategy.Make(r.planInput(current))
	if err != nil {
		return newError(ErrBadRelease, "%v", err)
	}
	r.data.Plan = p
	if c, err := d.Counters(ctx, r.ref); err == nil {
		r.data.Base = &c
	} else if !errors.Is(err, target.ErrUnsupported) {
		return driverError(err, "read request counters of %s", r.ref)
	}
	r.e.event(ctx, r.rel.ID, StateValidateResources, -1, fmt.Sprintf("planned %s: %d deploy steps, desired %d", p.Strategy, len(p.Deploy), p.Desired), p)
	return nil
}

// transition persists the move to state next (and the error that caused it)
// before anything of next runs.
func (r *run) transition(ctx context.Context, next State, ferr error) error {
	if ferr != nil && r.err == nil {
		r.err = asError(ferr)
	}
	p := r.rel.Progress
	from := p.State
	p.State, p.Step, p.StepStartedAt = string(next), 0, time.Time{}
	b, err := json.Marshal(r.data)
	if err != nil {
		return err
	}
	p.Plan = b
	if r.err != nil {
		p.ErrorKind, p.Error = r.err.Kind.Error(), r.err.Msg
		if r.data.Dirty && next == StateFailureDirty {
			p.Error = r.err.Msg + "; clean-up incomplete: " + r.data.Reason
		}
	}
	if next.Final() {
		p.Done = true
		if r.data.Base != nil {
			// The summary is informative: it never holds the end of a
			// release back for long.
			cctx, cancel := context.WithTimeout(ctx, summaryTimeout)
			c, err := r.drv.Counters(cctx, r.ref)
			cancel()
			if err == nil {
				p.Served, p.Failed = c.Served-r.data.Base.Served, c.Failed-r.data.Base.Failed
			}
		}
	}
	msg := fmt.Sprintf("%s → %s", from, next)
	if ferr != nil {
		msg += ": " + asError(ferr).Error()
	}
	ev := &store.Event{At: r.e.opts.Now(), State: string(next), Step: -1, Message: msg}
	if err := r.e.st.SaveProgress(ctx, r.rel.ID, p, ev); err != nil {
		return err
	}
	r.rel.Progress = p
	if next == StateFailureDirty {
		r.e.log.Error("release ended FailureDirty: the target needs attention", "release", r.rel.ID, "service", r.ref.String(), "error", p.Error)
	}
	return nil
}

// saveStep persists that step i of the current state starts now.
func (r *run) saveStep(ctx context.Context, i int, what string) error {
	p := r.rel.Progress
	p.Step, p.StepStartedAt = i, r.e.opts.Now()
	ev := &store.Event{At: p.StepStartedAt, State: p.State, Step: i, Message: what}
	if err := r.e.st.SaveProgress(ctx, r.rel.ID, p, ev); err != nil {
		return err
	}
	r.rel.Progress = p
	return nil
}

// interrupted reports a halt request or a passed deadline.
func (r *run) interrupted(ctx context.Context, deadline time.Time) error {
	cur, err := r.e.st.GetRelease(ctx, r.rel.ID)
	if err != nil {
		if ctx.Err() != nil {
			return errStop
		}
		return newError(ErrDeploy, "read release: %v", err)
	}
	if cur.HaltRequested {
		return newError(ErrHalted, "%s", cur.HaltReason)
	}
	if !deadline.IsZero() && !r.e.opts.Now().Before(deadline) {
		return newError(ErrTimeout, "the release passed deploy.timeout (%s)", r.spec.Service.Deploy.Timeout)
	}
	return nil
}

// summaryTimeout bounds reading the request counters of a release's summary.
const summaryTimeout = 5 * time.Second

// driverError is a DeployError about a failed driver call, transient when
// the driver's error is.
func driverError(err error, format string, args ...any) *Error {
	e := newError(ErrDeploy, "%s: %v", fmt.Sprintf(format, args...), err)
	e.transient = isTransient(err)
	return e
}

// ctxError turns a context error into a timeout, a halt or a stop.
func (r *run) ctxError(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, errLockLost) {
		return newError(ErrDeploy, "%v", errLockLost)
	}
	var halted *Error
	if errors.As(cause, &halted) {
		return halted // watchHalt cancelled the call
	}
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errStop
	}
	if errors.Is(err, context.DeadlineExceeded) {
		switch State(r.rel.State) {
		case StateCleanUpSuccess, StateCleanUpFailure:
			return newError(ErrTimeout, "clean-up did not finish within %s", r.e.opts.CleanupTimeout)
		}
		return newError(ErrTimeout, "the release passed deploy.timeout (%s)", r.spec.Service.Deploy.Timeout)
	}
	return err
}

func (r *run) releaseLock(ctx context.Context) error {
	deadline := r.e.opts.Now().Add(r.e.opts.CleanupTimeout)
	for {
		err := r.e.st.ReleaseLock(ctx, lockKey(r.ref), r.rel.ID)
		if err == nil || errors.Is(err, store.ErrNotOwner) {
			// Not ours (any more): released before a crash, or expired and
			// taken; either way there is nothing of ours to free.
			return nil
		}
		if ctx.Err() != nil {
			return errStop
		}
		if !r.e.opts.Now().Before(deadline) {
			return fmt.Errorf("release the lock of %s: %w", r.ref, err)
		}
		if !r.sleep(ctx, r.e.opts.PollInterval) {
			return errStop
		}
	}
}

// sleep waits d or until ctx ends; false if ctx ended.
func (r *run) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// renewStart keeps the service lease alive while the release holds it; a
// lease lost to another owner cancels the run.
func (r *run) renewStart(ctx context.Context, cancel context.CancelCauseFunc) {
	if r.stopRenew != nil {
		return
	}
	ctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.e.opts.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			_, err := r.e.st.RenewLock(ctx, lockKey(r.ref), r.rel.ID, r.e.opts.LockTTL)
			if errors.Is(err, store.ErrNotOwner) {
				cancel(errLockLost)
				return
			}
			if err != nil && ctx.Err() == nil {
				r.e.log.Warn("renew service lock", "release", r.rel.ID, "err", err)
			}
		}
	}()
	r.stopRenew = func() { stop(); wg.Wait() }
}

func (r *run) renewStop() {
	if r.stopRenew != nil {
		r.stopRenew()
		r.stopRenew = nil
	}
}
