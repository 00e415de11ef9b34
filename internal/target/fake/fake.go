// Package fake is an in-process target: it implements target.Target with
// real state and real goroutines (each instance is a goroutine that boots,
// turns healthy or crashes; a traffic goroutine sends simulated requests
// through the weighted routes and counts served and failed ones), and is
// honest about its capabilities: it refuses what it does not declare. The
// engine's tests run on it, and it passes the conformance suite
// (package targettest) like every target.
//
// Like Nomad's mock driver it is driven by its spec, the manifest's env:
//
//	FAKE_BOOT=10ms        how long an instance takes to turn healthy (default Options.Boot)
//	FAKE_HEALTH=never     instances never turn healthy
//	FAKE_HEALTH=crash     instances crash after booting, again and again (counted as terminated)
//	FAKE_CRASH_AFTER=3    each instance crashes after serving 3 requests, then restarts
//	FAKE_CRASH_LINE=why   the last line a crashed instance wrote (CrashReport, Logs)
//	FAKE_ERROR_RATE=0.2   fraction of its requests that fail with a 5xx
//	FAKE_P99_MS=40        its p99 latency
//	FAKE_DRAIN=2s         a stopped instance has requests in flight this long (bounded by the call's drain)
//	FAKE_TASK_EXIT=3      exit code of its one-off tasks
//	FAKE_TASK_TIME=50ms   how long its one-off tasks run
//	FAKE_INVALID=why      Validate fails with this problem
//
// Calls can be made to fail or hang (FailOnce, Break, HangOnce) to test what
// a caller does with a target that misbehaves.
package fake

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// Options configure a fake target; zero values take the defaults.
type Options struct {
	// Boot is how long an instance takes to turn healthy (3 ms).
	Boot time.Duration
	// Capabilities are what it declares and enforces (DefaultCapabilities).
	Capabilities target.Capabilities
}

// DefaultCapabilities are the fake's: weights and groups like the local
// agent's, windows short enough for tests, a preview route, re-attachable
// tasks and the local supervisor's group-name length.
var DefaultCapabilities = target.Capabilities{
	MaxWeight: 1000, MaxWeightedGroups: 100,
	StatsWindowMin: time.Millisecond, StatsWindowMax: 2 * time.Hour,
	Preview: true, TaskReattach: true, GroupNameMax: 63,
}

// Target is the fake target. Its state lives as long as it does, like a
// target's data plane: a new caller (a restarted server) sees it unchanged.
type Target struct {
	boot time.Duration
	caps target.Capabilities

	mu      sync.Mutex
	rng     *rand.Rand
	groups  map[string]*group
	routes  map[target.ServiceRef][]strategy.Route
	preview map[target.ServiceRef]string
	served  map[target.ServiceRef]int64
	failed  map[target.ServiceRef]int64
	tasks   map[string]*task
	runs    map[string]int // task id → times started
	logs    map[string][]target.LogLine
	logSeq  map[string]int // lines ever logged per group
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
	inflight map[string]int // group → requests held (Hold)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type group struct {
	name       string
	ref        target.ServiceRef
	release    string
	env        map[string]string
	instances  []*instance
	seq        int
	terminated int
	requests   int64
	errors     int64
}

type instance struct {
	id      string
	healthy bool
	served  int
	stop    context.CancelFunc
}

type task struct {
	ref  target.ServiceRef
	done time.Time
	res  target.TaskResult
}

var _ target.Target = (*Target)(nil)

// New starts a fake target; Close stops its goroutines.
func New(opts Options) *Target {
	if opts.Boot == 0 {
		opts.Boot = 3 * time.Millisecond
	}
	if opts.Capabilities == (target.Capabilities{}) {
		opts.Capabilities = DefaultCapabilities
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Target{
		boot: opts.Boot, caps: opts.Capabilities,
		rng:    rand.New(rand.NewPCG(1, 2)),
		groups: map[string]*group{}, routes: map[target.ServiceRef][]strategy.Route{},
		preview: map[target.ServiceRef]string{}, served: map[target.ServiceRef]int64{}, failed: map[target.ServiceRef]int64{},
		tasks: map[string]*task{}, runs: map[string]int{}, logs: map[string][]target.LogLine{}, logSeq: map[string]int{},
		failOnce: map[string]error{}, broken: map[string]error{}, calls: map[string]int{},
		hangOnce: map[string]bool{}, hanging: map[string]int{}, hung: map[string]int{}, inflight: map[string]int{},
		ctx: ctx, cancel: cancel,
	}
	s.wg.Add(1)
	go s.traffic()
	return s
}

// Close stops every instance and the traffic.
func (s *Target) Close() {
	s.cancel()
	s.wg.Wait()
}

// Capabilities implements target.Target.
func (s *Target) Capabilities() target.Capabilities { return s.caps }

func duration(env map[string]string, key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(env[key]); err == nil {
		return d
	}
	return def
}

// traffic sends a simulated request to every service with routes each
// 500 µs, choosing a group by weight and a healthy instance in it.
func (s *Target) traffic() {
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
			s.request(ref, routes)
		}
		s.mu.Unlock()
	}
}

// request serves one request of ref. Call with s.mu held.
func (s *Target) request(ref target.ServiceRef, routes []strategy.Route) {
	total := 0
	for _, r := range routes {
		total += r.Weight
	}
	if total == 0 {
		return
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
	var healthy []*instance
	if g != nil {
		for _, i := range g.instances {
			if i.healthy {
				healthy = append(healthy, i)
			}
		}
	}
	if len(healthy) == 0 {
		s.failed[ref]++
		return
	}
	in := healthy[s.rng.IntN(len(healthy))]
	g.requests++
	in.served++
	if after, err := strconv.Atoi(g.env["FAKE_CRASH_AFTER"]); err == nil && in.served >= after {
		s.crash(g, in)
	}
	if rate, _ := strconv.ParseFloat(g.env["FAKE_ERROR_RATE"], 64); s.rng.Float64() < rate {
		g.errors++
		s.failed[ref]++
		return
	}
	s.served[ref]++
}

// crash ends an instance the way a crashed process ends: it wrote its last
// line, counts as terminated, and boots again. Call with s.mu held.
func (s *Target) crash(g *group, in *instance) {
	g.terminated++
	in.healthy, in.served = false, 0
	now := time.Now()
	s.log(g, target.LogLine{Time: now, Instance: in.id, Stream: "stdout", Text: "starting " + g.env["FAKE_CRASH_LINE"]})
	s.log(g, target.LogLine{Time: now, Instance: in.id, Stream: "stderr", Text: "FATAL: " + g.env["FAKE_CRASH_LINE"]})
}

// maxLogLines is how many lines the fake keeps per group.
const maxLogLines = 200

// log keeps a line of g's, also after g is deleted. Call with s.mu held.
func (s *Target) log(g *group, l target.LogLine) {
	key := g.ref.String() + "/" + g.name
	s.logSeq[key]++
	lines := append(s.logs[key], l)
	if len(lines) > maxLogLines {
		lines = slices.Clone(lines[len(lines)-maxLogLines:])
	}
	s.logs[key] = lines
}

// call counts a call and returns an injected failure, if any. Call with
// s.mu held.
func (s *Target) call(method string) error {
	s.calls[method]++
	if err, ok := s.failOnce[method]; ok {
		delete(s.failOnce, method)
		return err
	}
	return s.broken[method]
}

// startInstance runs one instance's life in a goroutine. Call with s.mu held.
func (s *Target) startInstance(g *group, name string) {
	ctx, cancel := context.WithCancel(s.ctx)
	in := &instance{id: fmt.Sprintf("%s-%d", name, g.seq), stop: cancel}
	g.seq++
	g.instances = append(g.instances, in)
	s.log(g, target.LogLine{Time: time.Now(), Instance: in.id, Stream: "stdout", Text: "booting release " + g.release})
	boot := duration(g.env, "FAKE_BOOT", s.boot)
	_, reboots := g.env["FAKE_CRASH_AFTER"]
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(boot):
			}
			s.mu.Lock()
			if !in.healthy {
				switch g.env["FAKE_HEALTH"] {
				case "never":
				case "crash":
					s.crash(g, in) // the supervisor restarts it
				default:
					in.healthy = true
				}
			}
			idle := in.healthy && !reboots
			s.mu.Unlock()
			if idle {
				<-ctx.Done()
				return
			}
		}
	}()
}

// Validate implements target.Target; FAKE_INVALID makes it fail.
func (s *Target) Validate(_ context.Context, _ target.ServiceRef, spec *config.Service) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.call("Validate"); err != nil {
		return err
	}
	if why := spec.Env["FAKE_INVALID"]; why != "" {
		return errors.Join(errors.New(why), errors.New("second problem"))
	}
	return nil
}

// hang blocks until ctx ends if a hang of method was asked for.
func (s *Target) hang(ctx context.Context, method string) error {
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
