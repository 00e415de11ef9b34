package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
)

// simTarget is a UNIT-LEVEL STAND-IN for a real target, used only by this
// package's tests until the local driver (agent + proxy) exists: it
// implements Driver with real state and real goroutines (each instance is a
// goroutine that starts, turns healthy or crashes; a traffic goroutine sends
// simulated requests through the weighted routes and counts served and
// failed ones). It is not a test of any real driver: the integration tests
// against the local driver are still to be written.
//
// A release's behaviour comes from its manifest's env:
//
//	SIM_HEALTH=never     instances never turn healthy
//	SIM_HEALTH=crash     instances crash after starting (counted as terminated)
//	SIM_CRASH_LINE=why   the last line a crashed instance wrote (CrashReport)
//	SIM_ERROR_RATE=0.2   fraction of its requests that fail with a 5xx
//	SIM_P99_MS=40        its p99 latency
//	SIM_TASK_EXIT=3      exit code of its one-off tasks
//	SIM_INVALID=why      Validate fails with this problem
type simTarget struct {
	startDelay time.Duration

	mu      sync.Mutex
	rng     *rand.Rand
	groups  map[string]*simGroup
	routes  map[ServiceRef][]strategy.Route
	preview map[ServiceRef]string
	served  map[ServiceRef]int64
	failed  map[ServiceRef]int64
	tasks   map[string]int // task id → times run
	// failOnce makes the next call of a method fail (a transient error);
	// broken makes every call fail.
	failOnce map[string]error
	broken   map[string]error
	calls    map[string]int
	// hangOnce makes the next call of a method block until its context
	// ends, as a call to a stopped (SIGSTOP) agent does.
	hangOnce map[string]bool
	hanging  map[string]int // hangs begun
	hung     map[string]int // hangs ended by their context

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type simGroup struct {
	ref        ServiceRef
	release    string
	env        map[string]string
	instances  []*simInstance
	terminated int
	requests   int64
	errors     int64
}

type simInstance struct {
	healthy bool
	stop    context.CancelFunc
}

func newSimTarget(t testing.TB) *simTarget {
	ctx, cancel := context.WithCancel(context.Background())
	s := &simTarget{
		startDelay: 3 * time.Millisecond,
		rng:        rand.New(rand.NewPCG(1, 2)),
		groups:     map[string]*simGroup{}, routes: map[ServiceRef][]strategy.Route{},
		preview: map[ServiceRef]string{}, served: map[ServiceRef]int64{}, failed: map[ServiceRef]int64{},
		tasks: map[string]int{}, failOnce: map[string]error{}, broken: map[string]error{}, calls: map[string]int{},
		hangOnce: map[string]bool{}, hanging: map[string]int{}, hung: map[string]int{},
		ctx: ctx, cancel: cancel,
	}
	s.wg.Add(1)
	go s.traffic()
	t.Cleanup(s.close)
	return s
}

func (s *simTarget) close() {
	s.cancel()
	s.wg.Wait()
}

// traffic sends a simulated request to every service with routes each
// 500 µs, choosing a group by weight and a healthy instance in it.
func (s *simTarget) traffic() {
	defer s.wg.Done()
	t := time.NewTicker(500 * time.Microsecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		for ref, routes := range s.routes {
			total := 0
			for _, r := range routes {
				total += r.Weight
			}
			if total == 0 {
				continue
			}
			n := s.rng.IntN(total)
			var pick string
			for _, r := range routes {
				if n < r.Weight {
					pick = r.Group
					break
				}
				n -= r.Weight
			}
			g := s.groups[pick]
			if g == nil || !slices.ContainsFunc(g.instances, func(i *simInstance) bool { return i.healthy }) {
				s.failed[ref]++
				continue
			}
			g.requests++
			if rate, _ := strconv.ParseFloat(g.env["SIM_ERROR_RATE"], 64); s.rng.Float64() < rate {
				g.errors++
				s.failed[ref]++
				continue
			}
			s.served[ref]++
		}
		s.mu.Unlock()
	}
}

// call counts a driver call and returns an injected failure, if any.
func (s *simTarget) call(method string) error {
	s.calls[method]++
	if err, ok := s.failOnce[method]; ok {
		delete(s.failOnce, method)
		return err
	}
	return s.broken[method]
}

// startInstance runs one instance's life in a goroutine. Call with s.mu held.
func (s *simTarget) startInstance(g *simGroup) {
	ctx, cancel := context.WithCancel(s.ctx)
	inst := &simInstance{stop: cancel}
	g.instances = append(g.instances, inst)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.startDelay):
			}
			s.mu.Lock()
			switch g.env["SIM_HEALTH"] {
			case "never":
			case "crash":
				g.terminated++ // crashed; the supervisor restarts it
			default:
				inst.healthy = true
			}
			s.mu.Unlock()
			if g.env["SIM_HEALTH"] != "crash" {
				<-ctx.Done()
				return
			}
		}
	}()
}

func (s *simTarget) Validate(_ context.Context, _ ServiceRef, spec *config.Service) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("Validate"); err != nil {
		return err
	}
	if why := spec.Env["SIM_INVALID"]; why != "" {
		return errors.Join(errors.New(why), errors.New("second problem"))
	}
	return nil
}

// hang blocks until ctx ends if a hang of method was asked for.
func (s *simTarget) hang(ctx context.Context, method string) error {
	s.mu.Lock()
	h := s.hangOnce[method]
	delete(s.hangOnce, method)
	if h {
		s.hanging[method]++
	}
	s.mu.Unlock()
	if !h {
		return nil
	}
	<-ctx.Done()
	s.mu.Lock()
	s.hung[method]++
	s.mu.Unlock()
	return ctx.Err()
}

func (s *simTarget) setHangOnce(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangOnce[method] = true
}

func (s *simTarget) hangingCalls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hanging[method]
}

func (s *simTarget) hungCalls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hung[method]
}

func (s *simTarget) EnsureGroup(ctx context.Context, gs GroupSpec) error {
	if err := s.hang(ctx, "EnsureGroup"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("EnsureGroup"); err != nil {
		return err
	}
	g := s.groups[gs.Group]
	if g == nil {
		if gs.Spec == nil {
			return fmt.Errorf("group %s: release %s unknown, cannot create it", gs.Group, gs.Release)
		}
		g = &simGroup{ref: gs.Ref, release: gs.Release, env: gs.Spec.Env}
		s.groups[gs.Group] = g
	}
	s.resize(g, gs.Count)
	return nil
}

func (s *simTarget) resize(g *simGroup, n int) {
	for len(g.instances) < n {
		s.startInstance(g)
	}
	for len(g.instances) > n {
		last := g.instances[len(g.instances)-1]
		last.stop()
		g.instances = g.instances[:len(g.instances)-1]
	}
}

func (s *simTarget) ScaleGroup(_ context.Context, _ ServiceRef, group string, count int, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("ScaleGroup"); err != nil {
		return err
	}
	g := s.groups[group]
	if g == nil {
		if count == 0 {
			return nil
		}
		return fmt.Errorf("group %s does not exist", group)
	}
	s.resize(g, count)
	return nil
}

func (s *simTarget) ObserveGroup(_ context.Context, _ ServiceRef, group string) (GroupStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("ObserveGroup"); err != nil {
		return GroupStatus{}, err
	}
	return s.status(group), nil
}

func (s *simTarget) status(group string) GroupStatus {
	g := s.groups[group]
	if g == nil {
		return GroupStatus{}
	}
	st := GroupStatus{Exists: true, Desired: len(g.instances), Terminated: g.terminated}
	for _, i := range g.instances {
		if i.healthy {
			st.Healthy++
		} else {
			st.Starting++
		}
	}
	return st
}

func (s *simTarget) DeleteGroup(_ context.Context, ref ServiceRef, group string, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("DeleteGroup"); err != nil {
		return err
	}
	g := s.groups[group]
	if g == nil {
		return nil
	}
	// Out of the routes first, so no new request reaches it.
	s.routes[ref] = slices.DeleteFunc(slices.Clone(s.routes[ref]), func(r strategy.Route) bool { return r.Group == group })
	if s.preview[ref] == group {
		delete(s.preview, ref)
	}
	s.resize(g, 0)
	delete(s.groups, group)
	return nil
}

func (s *simTarget) ListGroups(ctx context.Context, ref ServiceRef) ([]GroupInfo, error) {
	if err := s.hang(ctx, "ListGroups"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("ListGroups"); err != nil {
		return nil, err
	}
	var out []GroupInfo
	for name, g := range s.groups {
		if g.ref == ref {
			out = append(out, GroupInfo{Name: name, Release: g.release, Status: s.status(name)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *simTarget) Routes(_ context.Context, ref ServiceRef) ([]strategy.Route, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("Routes"); err != nil {
		return nil, err
	}
	return slices.Clone(s.routes[ref]), nil
}

func (s *simTarget) SetRoutes(_ context.Context, ref ServiceRef, routes []strategy.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("SetRoutes"); err != nil {
		return err
	}
	for _, r := range routes {
		if s.groups[r.Group] == nil {
			return fmt.Errorf("route to missing group %s", r.Group)
		}
	}
	s.routes[ref] = slices.Clone(routes)
	return nil
}

func (s *simTarget) SetPreview(_ context.Context, ref ServiceRef, group string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("SetPreview"); err != nil {
		return err
	}
	if group == "" {
		delete(s.preview, ref)
	} else {
		s.preview[ref] = group
	}
	return nil
}

func (s *simTarget) WindowStats(_ context.Context, _ ServiceRef, group string, _ time.Duration) (strategy.WindowStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("WindowStats"); err != nil {
		return strategy.WindowStats{}, err
	}
	g := s.groups[group]
	if g == nil {
		return strategy.WindowStats{}, fmt.Errorf("group %s does not exist", group)
	}
	p99, _ := strconv.Atoi(g.env["SIM_P99_MS"])
	return strategy.WindowStats{Requests: g.requests, Errors: g.errors, P99: time.Duration(max(p99, 5)) * time.Millisecond}, nil
}

func (s *simTarget) Counters(_ context.Context, ref ServiceRef) (Counters, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("Counters"); err != nil {
		return Counters{}, err
	}
	return Counters{Served: s.served[ref], Failed: s.failed[ref]}, nil
}

func (s *simTarget) RunTask(_ context.Context, t Task) (TaskResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("RunTask"); err != nil {
		return TaskResult{}, err
	}
	if t.PreviewGroup != "" && s.preview[t.Ref] != t.PreviewGroup {
		return TaskResult{ExitCode: 7, Output: "no preview route to " + t.PreviewGroup}, nil
	}
	s.tasks[t.ID]++
	code, _ := strconv.Atoi(t.Spec.Env["SIM_TASK_EXIT"])
	return TaskResult{ExitCode: code, Output: fmt.Sprintf("task %s ran", t.Name)}, nil
}

// CrashReport is what a crashed instance of a SIM_HEALTH=crash group said.
func (s *simTarget) CrashReport(_ context.Context, _ ServiceRef, group string) (CrashReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("CrashReport"); err != nil {
		return CrashReport{}, err
	}
	g := s.groups[group]
	if g == nil || g.terminated == 0 {
		return CrashReport{}, nil
	}
	return CrashReport{Instance: group + "-0", Exit: "exit status 1",
		Lines: []string{"starting " + g.env["SIM_CRASH_LINE"], "FATAL: " + g.env["SIM_CRASH_LINE"]}}, nil
}

// snapshot is what runs for a service: group → instance count, and routes.
func (s *simTarget) snapshot(ref ServiceRef) (map[string]int, []strategy.Route) {
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

func (s *simTarget) counters(ref ServiceRef) (served, failed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[ref], s.failed[ref]
}

func (s *simTarget) setFailOnce(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOnce[method] = err
}

func (s *simTarget) setBroken(method string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.broken, method)
	} else {
		s.broken[method] = err
	}
}

func (s *simTarget) taskRuns(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tasks[id]
}

// scaleTo changes a group's count behind the engine's back (an autoscaler).
func (s *simTarget) scaleTo(group string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resize(s.groups[group], n)
}
