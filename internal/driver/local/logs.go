package local

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/target"
)

// logPoll is how often a followed group is looked at for instances it
// gained (a rolling deploy grows its group batch by batch) and for its
// deletion.
const logPoll = 500 * time.Millisecond

// Logs reads the lines of a group's instances (one of them when
// q.Instance is set) from the agent, which keeps them after the group is
// deleted. Following reads every instance's stream at once, and starts on
// the instances the group gains while it is followed.
func (d *Driver) Logs(ctx context.Context, ref target.ServiceRef, q target.LogQuery, emit func(target.LogLine) error) error {
	read := func(ctx context.Context, id string, aq agentapi.LogQuery, emit func(target.LogLine) error) error {
		// The filter matches the instance's id or its lines' text: an
		// instance it names is read whole, the others are filtered.
		if q.Filter != "" && !strings.Contains(id, q.Filter) {
			aq.Filter = q.Filter
		}
		return d.agent.Logs(ctx, q.Group, id, aq, func(l agentapi.LogLine) error {
			return emit(target.LogLine{Time: l.Time, Instance: id, Stream: l.Stream, Text: l.Text})
		})
	}
	ids, _, err := d.logInstances(ctx, ref, q.Group)
	if err != nil {
		return err
	}
	if q.Instance != "" {
		// An instance of another group has no lines in this one.
		if !slices.Contains(ids, q.Instance) {
			return nil
		}
		ids = []string{q.Instance}
	}
	if q.Follow {
		return d.followLogs(ctx, ref, q, read, emit)
	}
	var out []target.LogLine
	for _, id := range ids {
		aq := agentapi.LogQuery{Tail: q.Tail, Since: q.Since}
		if err := read(ctx, id, aq, func(l target.LogLine) error { out = append(out, l); return nil }); err != nil {
			return err
		}
	}
	slices.SortStableFunc(out, func(a, b target.LogLine) int { return a.Time.Compare(b.Time) })
	if q.Tail > 0 && len(out) > q.Tail {
		out = out[len(out)-q.Tail:]
	}
	for _, l := range out {
		if err := emit(l); err != nil {
			return err
		}
	}
	return nil
}

// logInstances lists the instances of group whose logs the agent keeps,
// and whether the group was deleted.
func (d *Driver) logInstances(ctx context.Context, ref target.ServiceRef, group string) ([]string, bool, error) {
	groups, err := d.agent.LogGroups(ctx, ref.Environment, ref.Service)
	if err != nil {
		return nil, false, err
	}
	var ids []string
	deleted := false
	for _, g := range groups {
		if g.Group == group && g.Project == ref.Project {
			for _, in := range g.Instances {
				ids = append(ids, in.ID)
			}
			deleted = !g.DeletedAt.IsZero()
		}
	}
	return ids, deleted, nil
}

// followLogs follows every instance of the group, those it gains while
// followed too (from their first line: they are new), until ctx ends or the
// group is deleted and its streams have ended.
func (d *Driver) followLogs(ctx context.Context, ref target.ServiceRef, q target.LogQuery,
	read func(context.Context, string, agentapi.LogQuery, func(target.LogLine) error) error, emit func(target.LogLine) error) error {
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var wg sync.WaitGroup
	following := map[string]bool{}
	start := func(id string, aq agentapi.LogQuery) {
		following[id] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := read(fctx, id, aq, func(l target.LogLine) error {
				mu.Lock()
				defer mu.Unlock()
				return emit(l)
			})
			if err != nil {
				cancel(err)
			}
		}()
	}
	first := true
	for {
		ids := []string{q.Instance}
		deleted := false
		if q.Instance == "" {
			var err error
			ids, deleted, err = d.logInstances(fctx, ref, q.Group)
			if err != nil {
				cancel(err)
				break
			}
		}
		for _, id := range ids {
			if following[id] {
				continue
			}
			aq := agentapi.LogQuery{Follow: true, Since: q.Since}
			if first {
				aq.Tail = q.Tail
			}
			start(id, aq)
		}
		first = false
		if deleted || q.Instance != "" {
			break // no instance joins: the streams end on their own
		}
		select {
		case <-fctx.Done():
		case <-time.After(logPoll):
			continue
		}
		break
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil // the caller stopped following
	}
	return context.Cause(fctx) // a stream's error, or nil
}
