package fake

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// EnsureGroup implements target.Workloads.
func (s *Target) EnsureGroup(ctx context.Context, gs target.GroupSpec) error {
	if err := s.hang(ctx, "EnsureGroup"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("EnsureGroup"); err != nil {
		return err
	}
	if len(gs.Group) > s.caps.GroupNameMax {
		return fmt.Errorf("group name %q: %d characters, at most %d", gs.Group, len(gs.Group), s.caps.GroupNameMax)
	}
	g := s.groups[gs.Group]
	if g == nil {
		if gs.Spec == nil {
			return fmt.Errorf("group %s: release %s unknown, cannot create it", gs.Group, gs.Release)
		}
		g = &group{name: gs.Group, ref: gs.Ref, release: gs.Release, env: gs.Spec.Env}
		s.groups[gs.Group] = g
	}
	var drain time.Duration
	if gs.Spec != nil {
		drain = gs.Spec.Deploy.DrainTimeout.Duration
	}
	s.resize(ctx, gs.Group, g, gs.Count, drain)
	return nil
}

// resize starts or stops instances; the stopped ones first drain: their
// requests in flight (Hold, FAKE_DRAIN) end, or drain passes. Call with s.mu
// held; it is released while draining.
func (s *Target) resize(ctx context.Context, name string, g *group, n int, drain time.Duration) {
	for len(g.instances) < n {
		s.startInstance(g, name)
	}
	if len(g.instances) <= n {
		return
	}
	gone := slices.Clone(g.instances[n:])
	g.instances = g.instances[:n]
	// Held requests are the group's; they keep its last instance busy.
	s.inflightDrain(ctx, name, g, drain, n == 0)
	for _, in := range gone {
		s.log(g, target.LogLine{Time: time.Now(), Instance: in.id, Stream: "stdout", Text: "stopping"})
		in.stop()
	}
}

// inflightDrain waits, with s.mu released, until the group's held requests
// end or drain passes (FAKE_DRAIN holds each stop that long at most).
func (s *Target) inflightDrain(ctx context.Context, name string, g *group, drain time.Duration, held bool) {
	until := time.Now().Add(drain)
	slow := time.Now().Add(min(duration(g.env, "FAKE_DRAIN", 0), drain))
	for {
		now := time.Now()
		if ((!held || s.inflight[name] == 0) && !now.Before(slow)) || !now.Before(until) || ctx.Err() != nil {
			return
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
		}
		s.mu.Lock()
	}
}

// ScaleGroup implements target.Workloads.
func (s *Target) ScaleGroup(ctx context.Context, _ target.ServiceRef, name string, count int, drain time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("ScaleGroup"); err != nil {
		return err
	}
	g := s.groups[name]
	if g == nil {
		if count == 0 {
			return nil
		}
		return fmt.Errorf("group %s does not exist", name)
	}
	s.resize(ctx, name, g, count, drain)
	return nil
}

// ObserveGroup implements target.Workloads.
func (s *Target) ObserveGroup(_ context.Context, _ target.ServiceRef, name string) (target.GroupStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("ObserveGroup"); err != nil {
		return target.GroupStatus{}, err
	}
	return s.status(name), nil
}

func (s *Target) status(name string) target.GroupStatus {
	g := s.groups[name]
	if g == nil {
		return target.GroupStatus{}
	}
	st := target.GroupStatus{Exists: true, Desired: len(g.instances), Terminated: g.terminated}
	for _, i := range g.instances {
		if i.healthy {
			st.Healthy++
		} else {
			st.Starting++
		}
	}
	return st
}

// DeleteGroup implements target.Workloads: out of the routes first, so no
// new request reaches it, then drained and deleted.
func (s *Target) DeleteGroup(ctx context.Context, ref target.ServiceRef, name string, drain time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("DeleteGroup"); err != nil {
		return err
	}
	g := s.groups[name]
	if g == nil {
		return nil
	}
	s.routes[ref] = slices.DeleteFunc(slices.Clone(s.routes[ref]), func(r strategy.Route) bool { return r.Group == name })
	if s.preview[ref] == name {
		delete(s.preview, ref)
	}
	s.resize(ctx, name, g, 0, drain)
	if s.groups[name] == g {
		delete(s.groups, name)
	}
	return nil
}

// ListGroups implements target.Workloads.
func (s *Target) ListGroups(ctx context.Context, ref target.ServiceRef) ([]target.GroupInfo, error) {
	if err := s.hang(ctx, "ListGroups"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("ListGroups"); err != nil {
		return nil, err
	}
	var out []target.GroupInfo
	for name, g := range s.groups {
		if g.ref == ref {
			out = append(out, target.GroupInfo{Name: name, Release: g.release, Status: s.status(name)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

var _ target.InstanceReporter = (*Target)(nil)

// Instances implements target.InstanceReporter: healthy instances, or
// starting ones (the fake counts a group's crashes, not an instance's).
func (s *Target) Instances(ctx context.Context, ref target.ServiceRef, group string) ([]target.InstanceInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("Instances"); err != nil {
		return nil, err
	}
	g := s.groups[group]
	if g == nil {
		return nil, nil
	}
	var out []target.InstanceInfo
	for _, in := range g.instances {
		state := "starting"
		if in.healthy {
			state = "healthy"
		}
		out = append(out, target.InstanceInfo{ID: in.id, State: state})
	}
	return out, nil
}
