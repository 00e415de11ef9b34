package fake

import (
	"context"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/target"
)

// Logs implements target.Logs: the lines its instances wrote (a boot line,
// a crashed instance's last words), kept after their group is deleted.
func (s *Target) Logs(ctx context.Context, ref target.ServiceRef, q target.LogQuery, emit func(target.LogLine) error) error {
	key := ref.String() + "/" + q.Group
	s.mu.Lock()
	if err := s.call("Logs"); err != nil {
		s.mu.Unlock()
		return err
	}
	lines, seen := s.lines(key, q, 0)
	s.mu.Unlock()
	if q.Tail > 0 && len(lines) > q.Tail {
		lines = lines[len(lines)-q.Tail:]
	}
	for {
		for _, l := range lines {
			if err := emit(l); err != nil {
				return err
			}
		}
		if !q.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Millisecond):
		}
		s.mu.Lock()
		lines, seen = s.lines(key, q, seen)
		s.mu.Unlock()
	}
}

// lines returns the lines of key q selects that were logged after the
// first `after`, and how many were logged in all. Call with s.mu held.
func (s *Target) lines(key string, q target.LogQuery, after int) ([]target.LogLine, int) {
	kept := s.logs[key]
	first := s.logSeq[key] - len(kept) // sequence number of kept[0]
	var out []target.LogLine
	for i, l := range kept {
		if first+i >= after && (q.Instance == "" || l.Instance == q.Instance) && !l.Time.Before(q.Since) &&
			(q.Filter == "" || strings.Contains(l.Instance, q.Filter) || strings.Contains(l.Text, q.Filter)) {
			out = append(out, l)
		}
	}
	return out, s.logSeq[key]
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
	var lines []target.LogLine
	err := s.Logs(ctx, ref, target.LogQuery{Group: group, Tail: 10}, func(l target.LogLine) error {
		lines = append(lines, l)
		return nil
	})
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
