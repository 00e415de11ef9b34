package fake

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// Routes implements target.Traffic.
func (s *Target) Routes(_ context.Context, ref target.ServiceRef) ([]strategy.Route, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("Routes"); err != nil {
		return nil, err
	}
	return slices.Clone(s.routes[ref]), nil
}

// SetRoutes implements target.Traffic, refusing what its capabilities do
// not declare.
func (s *Target) SetRoutes(_ context.Context, ref target.ServiceRef, routes []strategy.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("SetRoutes"); err != nil {
		return err
	}
	if len(routes) > s.caps.MaxWeightedGroups {
		return fmt.Errorf("%d weighted groups: at most %d", len(routes), s.caps.MaxWeightedGroups)
	}
	for _, r := range routes {
		if s.groups[r.Group] == nil {
			return fmt.Errorf("route to missing group %s", r.Group)
		}
		if r.Weight < 0 || r.Weight > s.caps.MaxWeight {
			return fmt.Errorf("group %s: weight %d: want 0 to %d", r.Group, r.Weight, s.caps.MaxWeight)
		}
	}
	if len(routes) == 0 {
		delete(s.routes, ref)
		return nil
	}
	s.routes[ref] = slices.Clone(routes)
	return nil
}

// SetPreview implements target.Traffic.
func (s *Target) SetPreview(_ context.Context, ref target.ServiceRef, group string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("SetPreview"); err != nil {
		return err
	}
	switch {
	case group == "":
		delete(s.preview, ref)
	case !s.caps.Preview:
		return fmt.Errorf("preview route: %w", target.ErrUnsupported)
	case s.groups[group] == nil:
		return fmt.Errorf("preview to missing group %s", group)
	default:
		s.preview[ref] = group
	}
	return nil
}

// WindowStats implements target.Metrics: everything the group served (the
// fake keeps no time series), for windows its capabilities declare.
func (s *Target) WindowStats(_ context.Context, _ target.ServiceRef, name string, window time.Duration) (strategy.WindowStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("WindowStats"); err != nil {
		return strategy.WindowStats{}, err
	}
	if window < s.caps.StatsWindowMin || window > s.caps.StatsWindowMax {
		return strategy.WindowStats{}, fmt.Errorf("window %s: want %s to %s", window, s.caps.StatsWindowMin, s.caps.StatsWindowMax)
	}
	g := s.groups[name]
	if g == nil {
		return strategy.WindowStats{}, fmt.Errorf("group %s does not exist", name)
	}
	p99 := duration(map[string]string{"d": g.env["FAKE_P99_MS"] + "ms"}, "d", 5*time.Millisecond)
	return strategy.WindowStats{Requests: g.requests, Errors: g.errors, P99: max(p99, 5*time.Millisecond)}, nil
}

// Counters implements target.Metrics.
func (s *Target) Counters(_ context.Context, ref target.ServiceRef) (target.Counters, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("Counters"); err != nil {
		return target.Counters{}, err
	}
	return target.Counters{Served: s.served[ref], Failed: s.failed[ref]}, nil
}
