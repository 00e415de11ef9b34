package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
)

// registry owns the state that outlives one table: targets (live and
// retired-but-busy), services and group statistics. Only Update, Drain,
// Stats and scrapes take its lock; requests reach the same objects through
// the pointers of the published table.
type registry struct {
	mu       sync.Mutex
	m        *metrics
	targets  map[targetKey]*target
	retired  map[*target]struct{}
	services map[agentapi.RouteKey]*service
	stats    map[statsKey]*groupStats
	// left holds the statistics of groups that left the table, with the
	// Unix second they left, for statsLinger: a publisher reading seconds
	// after they ended (StatsSecond) still finds their last ones.
	left map[statsKey]leftStats
}

type leftStats struct {
	g  *groupStats
	at int64
}

// statsLinger is how long StatsSecond still reads a group that left the
// table.
const statsLinger = 30

type targetKey struct {
	route                 agentapi.RouteKey
	group, instance, addr string
}

type statsKey struct {
	route agentapi.RouteKey
	group string
}

// service is the per-route state outside the table:
// pause/resume and the monotonic counters a release snapshots.
type service struct {
	pause  atomic.Pointer[pauseState]
	held   atomic.Int64 // requests waiting on a pause now
	served atomic.Uint64
	failed atomic.Uint64
}

func newRegistry(m *metrics) *registry {
	return &registry{m: m, targets: map[targetKey]*target{}, retired: map[*target]struct{}{},
		services: map[agentapi.RouteKey]*service{}, stats: map[statsKey]*groupStats{}, left: map[statsKey]leftStats{}}
}

func (r *registry) service(k agentapi.RouteKey) *service {
	s := r.services[k]
	if s == nil {
		s = &service{}
		r.services[k] = s
	}
	return s
}

// swap compiles c into a new table and retires the targets it no longer
// holds. publish is called with the new table before retiring, so a request
// that still picks a retired target from the old table is turned back by
// target.acquire and picks again from the new one. Called with r.mu held.
func (r *registry) swap(c *Config, now time.Time, publish func(*table)) {
	used := map[targetKey]*target{}
	usedStats := map[statsKey]*groupStats{}
	t := compile(c, tableBuilder{
		service: r.service,
		target: func(route agentapi.RouteKey, group string, tc Target) *target {
			k := targetKey{route, group, tc.Instance, tc.Addr}
			if t := used[k]; t != nil {
				return t
			}
			t := r.targets[k]
			if t == nil {
				t = newTarget(route, group, tc, nil)
				t.m = r.m.forTarget(t.series())
			}
			used[k] = t
			return t
		},
		stats: func(route agentapi.RouteKey, group string) *groupStats {
			k := statsKey{route, group}
			if s := usedStats[k]; s != nil {
				return s
			}
			s := r.stats[k]
			if s == nil {
				s = r.left[k].g // back within statsLinger: the same seconds
			}
			if s == nil {
				s = newGroupStats()
			}
			delete(r.left, k)
			usedStats[k] = s
			return s
		},
	})
	publish(t)
	for k, old := range r.targets {
		if _, ok := used[k]; !ok {
			old.retire()
			r.retired[old] = struct{}{}
		}
	}
	r.targets = used
	for k, s := range r.stats {
		if _, ok := usedStats[k]; !ok {
			r.left[k] = leftStats{s, now.Unix()}
		}
	}
	for k, l := range r.left {
		if now.Unix()-l.at > statsLinger {
			delete(r.left, k)
		}
	}
	r.stats = usedStats
	r.prune()
}

// prune forgets retired targets that went idle. Called with r.mu held.
func (r *registry) prune() {
	for t := range r.retired {
		select {
		case <-t.idle:
		default:
			continue
		}
		delete(r.retired, t)
		if !r.labelsInUse(t) {
			r.m.forget(t.series())
		}
	}
}

func (r *registry) labelsInUse(t *target) bool {
	for _, o := range r.targets {
		if o.series() == t.series() {
			return true
		}
	}
	for o := range r.retired {
		if o != t && o.series() == t.series() {
			return true
		}
	}
	return false
}

func (r *registry) allTargets() []*target {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune()
	out := make([]*target, 0, len(r.targets)+len(r.retired))
	for _, t := range r.targets {
		out = append(out, t)
	}
	for t := range r.retired {
		out = append(out, t)
	}
	return out
}

// TargetStatus describes one target known to the proxy, for the agent's
// status API and for tests.
type TargetStatus struct {
	Route                 agentapi.RouteKey
	Group, Instance, Addr string
	InFlight              int64
	Ejected               bool // passive health keeps it out for now
	Retired               bool // out of the table, still finishing requests
}

func (t *target) status(now time.Time) TargetStatus {
	return TargetStatus{Route: t.route, Group: t.group, Instance: t.instance, Addr: t.addr,
		InFlight: t.inflight.Load(), Ejected: t.ejected(now.UnixNano()), Retired: t.retired.Load()}
}
