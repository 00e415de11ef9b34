package fake

import (
	"context"

	"github.com/runwayhq/runway/internal/target"
)

// Logs implements target.Logs: the lines crashed instances wrote, kept
// after their group is deleted.
func (s *Target) Logs(_ context.Context, ref target.ServiceRef, q target.LogQuery) ([]target.LogLine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("Logs"); err != nil {
		return nil, err
	}
	var out []target.LogLine
	for _, l := range s.logs[ref.String()+"/"+q.Group] {
		if q.Instance == "" || l.Instance == q.Instance {
			out = append(out, l)
		}
	}
	if q.Tail > 0 && len(out) > q.Tail {
		out = out[len(out)-q.Tail:]
	}
	return out, nil
}

// CrashReport implements target.Logs: what a crashed instance of group said.
func (s *Target) CrashReport(ctx context.Context, ref target.ServiceRef, group string) (target.CrashReport, error) {
	s.mu.Lock()
	if err := s.call("CrashReport"); err != nil {
		s.mu.Unlock()
		return target.CrashReport{}, err
	}
	g := s.groups[group]
	crashed := g != nil && g.terminated > 0
	s.mu.Unlock()
	if !crashed {
		return target.CrashReport{}, nil
	}
	lines, err := s.Logs(ctx, ref, target.LogQuery{Group: group, Tail: 10})
	if err != nil || len(lines) == 0 {
		return target.CrashReport{}, err
	}
	last := lines[len(lines)-1].Instance
	rep := target.CrashReport{Instance: last, Exit: "exit status 1"}
	for _, l := range lines {
		if l.Instance == last {
			rep.Lines = append(rep.Lines, l.Text)
		}
	}
	return rep, nil
}
