package server

import (
	"context"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/store"
)

// record appends a service event; events are informative (what resumes is
// in the releases' progress), so a failed append is only logged.
func (b *backend) record(ctx context.Context, e *store.ServiceEvent) {
	if err := b.st.AppendServiceEvent(context.WithoutCancel(ctx), e); err != nil {
		b.log.Warn("record event", "kind", e.Kind, "target", e.Target, "err", err)
	}
}

// Events implements api.Backend: the newest events f selects (or those
// after f.After), then, following, new ones as they are stored and what
// each release in progress waits for whenever that changes.
func (b *backend) Events(ctx context.Context, f apiwire.EventFilter, emit func(apiwire.ServiceEvent) error) error {
	ff := store.FeedFilter{Project: f.Project, Environment: f.Environment, Service: f.Service, Release: f.Release, After: f.After, Last: f.Limit}
	// An event's id is made before its insert commits, so an event can
	// appear after one with a larger id. A follower therefore reads again
	// the last feedLookback of ids on every poll and skips those it sent.
	start := time.Now()
	list, err := b.st.Feed(ctx, ff)
	if err != nil {
		return err
	}
	sent := map[string]bool{}
	for _, e := range list {
		if err := emit(wireEvent(e)); err != nil {
			return err
		}
		sent[e.ID] = true
	}
	if !f.Follow {
		return nil
	}
	// Never below what the listing covered: the client's After, or the
	// oldest event listed when the listing may have been cut to Limit.
	floor := store.IDAt(start.Add(-feedLookback))
	if f.After != "" && f.After > floor {
		floor = f.After
	}
	if f.After == "" && f.Limit > 0 && len(list) >= f.Limit && list[0].ID > floor {
		floor = list[0].ID
	}
	ctx, done := b.streamCtx(ctx)
	defer done()
	poll := b.feedPoll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	waits := map[string]string{}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		after := store.IDAt(time.Now().Add(-feedLookback))
		if after < floor {
			after = floor
		}
		ff.After, ff.Last = after, 0
		list, err := b.st.Feed(ctx, ff)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, e := range list {
			if sent[e.ID] || e.ID <= floor {
				continue
			}
			if err := emit(wireEvent(e)); err != nil {
				return err
			}
			sent[e.ID] = true
		}
		for id := range sent {
			if id <= after {
				delete(sent, id)
			}
		}
		if err := b.emitWaits(ctx, f, waits, emit); err != nil {
			return err
		}
	}
}

// feedLookback is how long after its id is made an event may still be
// committed and followed: far above the time a store insert takes.
const feedLookback = 10 * time.Second

// emitWaits emits a "wait" event for every release in progress in f's
// scope whose wait changed since the last call (seen holds the last).
func (b *backend) emitWaits(ctx context.Context, f apiwire.EventFilter, seen map[string]string, emit func(apiwire.ServiceEvent) error) error {
	if b.waiting == nil {
		return nil
	}
	rs, err := b.st.ListReleases(ctx, store.ReleaseFilter{Project: f.Project, Environment: f.Environment, Service: f.Service, Unfinished: true})
	if err != nil {
		return nil // best effort: the stored events go on
	}
	live := map[string]bool{}
	for _, r := range rs {
		if f.Release != "" && r.ID != f.Release {
			continue
		}
		live[r.ID] = true
		why := b.waiting(r.ID)
		if why == seen[r.ID] {
			continue
		}
		seen[r.ID] = why
		if why == "" {
			continue
		}
		if err := emit(apiwire.ServiceEvent{At: time.Now(), Kind: "wait", Project: r.Project, Environment: r.Environment, Service: r.Service,
			Release: r.ID, Actor: r.CreatedBy, Target: "release " + r.ID, State: r.State, Step: r.Step, Message: why}); err != nil {
			return err
		}
	}
	for id := range seen {
		if !live[id] {
			delete(seen, id)
		}
	}
	return nil
}

func wireEvent(e *store.FeedEvent) apiwire.ServiceEvent {
	out := apiwire.ServiceEvent{ID: e.ID, At: e.At, Kind: e.Kind, Project: e.Project, Environment: e.Environment, Service: e.Service,
		Release: e.ReleaseID, Actor: e.Actor, Target: e.Target, State: e.State, Step: e.Step, Message: e.Message}
	if e.Kind == "release" {
		out.Target = "release " + e.ReleaseID
	}
	return out
}
