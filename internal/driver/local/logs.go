package local

import (
	"context"
	"slices"

	"github.com/runwayhq/runway/internal/supervisor"
	"github.com/runwayhq/runway/internal/target"
)

// Logs reads the lines of a group's instances (one of them when
// q.Instance is set) from the agent, which keeps them after the group is
// deleted.
func (d *Driver) Logs(ctx context.Context, ref target.ServiceRef, q target.LogQuery) ([]target.LogLine, error) {
	ids := []string{q.Instance}
	if q.Instance == "" {
		groups, err := d.agent.LogGroups(ctx, ref.Environment, ref.Service)
		if err != nil {
			return nil, err
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
	var out []target.LogLine
	for _, id := range ids {
		err := d.agent.Logs(ctx, q.Group, id, supervisor.LogQuery{Tail: q.Tail}, func(l supervisor.LogLine) error {
			out = append(out, target.LogLine{Time: l.Time, Instance: id, Stream: l.Stream, Text: l.Text})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b target.LogLine) int { return a.Time.Compare(b.Time) })
	if q.Tail > 0 && len(out) > q.Tail {
		out = out[len(out)-q.Tail:]
	}
	return out, nil
}
