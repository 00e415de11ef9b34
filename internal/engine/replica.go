package engine

import (
	"context"
	"errors"
	"time"

	"github.com/runwayhq/runway/internal/store"
)

// Several servers on one store (docs/design.md, "Several servers"): every
// unfinished release is run by the one replica that claimed it last
// (store.ClaimRelease). A replica claims the releases it records, and
// every third of ClaimTTL scans for releases whose runner's claim lapsed
// (the replica died, paused, or lost the store) and claims them: takeover.
// A runner renews its claim every third of ClaimTTL; every write it makes
// carries the claim's epoch, so once another replica has claimed the
// release the old runner's next write is refused (store.ErrFenced) and it
// stops, writing nothing, even if it was paused for minutes and does not
// know it lost the claim.

// errFenced stops a runner whose claim another replica took.
var errFenced = errors.New("the release was claimed by another replica")

// epoch returns the claim epoch of release id's runner; 0 without replicas.
func (e *Engine) epoch(id string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.epochs[id]
}

// claimAndLaunch claims release id for this replica and starts its runner.
func (e *Engine) claimAndLaunch(ctx context.Context, id string) bool {
	e.mu.Lock()
	busy := e.closed || e.running[id]
	e.mu.Unlock()
	if busy {
		return false
	}
	epoch, err := e.st.ClaimRelease(ctx, id, e.opts.Replica, e.opts.ClaimTTL)
	if err != nil {
		if !errors.Is(err, store.ErrLockHeld) && !errors.Is(err, store.ErrFinished) {
			e.log.Warn("claim release", "release", id, "err", err)
		}
		return false
	}
	e.mu.Lock()
	if e.closed || e.running[id] {
		e.mu.Unlock()
		return false
	}
	e.epochs[id] = epoch
	e.mu.Unlock()
	e.log.Info("running release", "release", id, "replica", e.opts.Replica, "epoch", epoch)
	e.launch(id)
	return true
}

// startClaiming starts the scan that claims unrun releases; Close stops it.
func (e *Engine) startClaiming() {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(e.opts.ClaimTTL / 3)
		defer t.Stop()
		for {
			e.claimLapsed(e.ctx)
			select {
			case <-e.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// claimLapsed claims, oldest first, every unfinished release that no live
// claim holds (or that this replica holds but does not run: it restarted,
// or its runner stopped when the store was unreachable).
func (e *Engine) claimLapsed(ctx context.Context) {
	rs, err := e.st.ListReleases(ctx, store.ReleaseFilter{Unfinished: true})
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("look for releases to run", "err", err)
		}
		return
	}
	now := e.opts.Now()
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		if r.Runner != "" && r.Runner != e.opts.Replica && now.Before(r.RunnerUntil) {
			continue
		}
		if r.Runner != "" && r.Runner != e.opts.Replica {
			e.log.Info("taking over release: its runner's claim lapsed", "release", r.ID, "runner", r.Runner, "until", r.RunnerUntil)
		}
		e.claimAndLaunch(ctx, r.ID)
	}
}

// keepClaim renews the runner's claim until the returned stop is called;
// a claim taken by another replica, or one that could not be renewed
// before it lapsed, cancels the run with errFenced.
func (r *run) keepClaim(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	e := r.e
	epoch := r.rel.Progress.Epoch
	ctx, end := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(e.opts.ClaimTTL / 3)
		defer t.Stop()
		renewed := e.opts.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := e.st.RenewClaim(ctx, r.rel.ID, e.opts.Replica, epoch, e.opts.ClaimTTL)
			switch {
			case err == nil:
				renewed = e.opts.Now()
			case errors.Is(err, store.ErrFenced):
				cancel(errFenced)
				return
			case ctx.Err() != nil:
				return
			default:
				e.log.Warn("renew the claim of release", "release", r.rel.ID, "err", err)
				if e.opts.Now().Sub(renewed) >= e.opts.ClaimTTL {
					// Another replica may have taken it by now: stop
					// acting; if none did, a scan claims it again.
					cancel(errFenced)
					return
				}
			}
		}
	}()
	return func() { end(); <-done }
}
