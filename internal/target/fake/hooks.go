package fake

import (
	"context"
	"slices"

	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// FailOnce makes the next call of method fail with err (a transient error,
// when err says so).
func (s *Target) FailOnce(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOnce[method] = err
}

// Break makes every call of method fail with err until Break(method, nil).
func (s *Target) Break(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.broken, method)
	} else {
		s.broken[method] = err
	}
}

// HangOnce makes the next call of method (EnsureGroup, ListGroups) block
// until its context ends.
func (s *Target) HangOnce(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangOnce[method] = true
}

// Hanging is how many hangs of method began; Hung how many their context
// ended.
func (s *Target) Hanging(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hanging[method]
}

// Hung is how many hangs of method their context ended.
func (s *Target) Hung(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hung[method]
}

// Calls is how many times method was called.
func (s *Target) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Snapshot is what runs for a service: group → instance count, and routes.
func (s *Target) Snapshot(ref target.ServiceRef) (map[string]int, []strategy.Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	groups := map[string]int{}
	for name, g := range s.groups {
		if g.ref == ref {
			groups[name] = len(g.instances)
		}
	}
	return groups, slices.Clone(s.routes[ref])
}

// Totals are the served and failed requests of a service.
func (s *Target) Totals(ref target.ServiceRef) (served, failed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[ref], s.failed[ref]
}

// TaskRuns is how many times the task id was started.
func (s *Target) TaskRuns(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

// ScaleTo changes a group's count behind the engine's back (an autoscaler).
func (s *Target) ScaleTo(group string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[group]; g != nil {
		s.resize(context.Background(), group, g, n, 0)
	}
}

// Hold keeps a request to group in flight until release is called: a
// scale to 0 or delete of the group waits for it, at most its drain.
func (s *Target) Hold(group string) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight[group]++
	done := false
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !done {
			done = true
			s.inflight[group]--
		}
	}
}
