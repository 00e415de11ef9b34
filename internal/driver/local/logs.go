package local

import (
	"context"
	"slices"
	"sync"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/target"
)

// Logs reads the lines of a group's instances (one of them when
// q.Instance is set) from the agent, which keeps them after the group is
// deleted. Following reads every instance's stream at once.
func (d *Driver) Logs(ctx context.Context, ref target.ServiceRef, q target.LogQuery, emit func(target.LogLine) error) error {
	ids := []string{q.Instance}
	if q.Instance == "" {
		groups, err := d.agent.LogGroups(ctx, ref.Environment, ref.Service)
		if err != nil {
			return err
		}
		ids = nil
		for _, g := range groups {
			if g.Group == q.Group && g.Project == ref.Project {
				for _, in := range g.Instances {
					ids = append(ids, in.ID)
				}
			}
		}
	}
	read := func(ctx context.Context, id string, emit func(target.LogLine) error) error {
		return d.agent.Logs(ctx, q.Group, id, agentapi.LogQuery{Tail: q.Tail, Follow: q.Follow}, func(l agentapi.LogLine) error {
			return emit(target.LogLine{Time: l.Time, Instance: id, Stream: l.Stream, Text: l.Text})
		})
	}
	if q.Follow {
		fctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := read(fctx, id, func(l target.LogLine) error {
					mu.Lock()
					defer mu.Unlock()
					return emit(l)
				})
				if err != nil {
					cancel(err)
				}
			}()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil // the caller stopped following
		}
		return context.Cause(fctx) // a stream's error, or nil
	}
	var out []target.LogLine
	for _, id := range ids {
		if err := read(ctx, id, func(l target.LogLine) error { out = append(out, l); return nil }); err != nil {
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
