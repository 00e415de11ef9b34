package proxy

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
)

// Rolling-window statistics per group, for canary analysis and alarms: one
// slot per second over the last statsSlots seconds, each slot a latency
// histogram with statsBuckets log-spaced buckets (every bucket 25% wider than
// the one before, from 50µs to about a minute). Recording is lock-free.
const (
	statsSlots   = int64(agentapi.MaxStatsWindow / time.Second)
	statsBuckets = 64
	statsFirst   = 50 * time.Microsecond
	statsGrowth  = 1.25
)

// statsBounds[i] is the upper bound of bucket i; the last bucket is open.
var statsBounds = func() [statsBuckets]time.Duration {
	var b [statsBuckets]time.Duration
	f := float64(statsFirst)
	for i := range b {
		b[i] = time.Duration(f)
		f *= statsGrowth
	}
	b[statsBuckets-1] = math.MaxInt64
	return b
}()

type statsSlot struct {
	sec     atomic.Int64
	count   atomic.Uint64
	errors  atomic.Uint64
	buckets [statsBuckets]atomic.Uint64
}

type groupStats struct {
	mu    sync.Mutex // only taken to recycle a slot for a new second
	slots [statsSlots]statsSlot
}

func newGroupStats() *groupStats {
	g := &groupStats{}
	for i := range g.slots {
		g.slots[i].sec.Store(-1)
	}
	return g
}

func (g *groupStats) record(now time.Time, d time.Duration, failed bool) {
	sec := now.Unix()
	s := &g.slots[sec%statsSlots]
	if s.sec.Load() != sec {
		g.mu.Lock()
		if s.sec.Load() != sec {
			s.count.Store(0)
			s.errors.Store(0)
			for i := range s.buckets {
				s.buckets[i].Store(0)
			}
			s.sec.Store(sec)
		}
		g.mu.Unlock()
	}
	s.count.Add(1)
	if failed {
		s.errors.Add(1)
	}
	s.buckets[bucketOf(d)].Add(1)
}

func bucketOf(d time.Duration) int {
	return sort.Search(statsBuckets-1, func(i int) bool { return d <= statsBounds[i] })
}

func (g *groupStats) window(now time.Time, w time.Duration) agentapi.WindowStats {
	secs := int64(w / time.Second)
	if w%time.Second != 0 {
		secs++
	}
	secs = max(1, min(secs, statsSlots))
	cur := now.Unix()
	var ws agentapi.WindowStats
	var hist [statsBuckets]uint64
	for sec := cur - secs + 1; sec <= cur; sec++ {
		s := &g.slots[((sec%statsSlots)+statsSlots)%statsSlots]
		if s.sec.Load() != sec {
			continue
		}
		ws.Requests += s.count.Load()
		ws.Errors += s.errors.Load()
		for i := range hist {
			hist[i] += s.buckets[i].Load()
		}
	}
	if ws.Requests == 0 {
		return ws
	}
	ws.ErrorRate = float64(ws.Errors) / float64(ws.Requests)
	var total uint64
	for _, n := range hist {
		total += n
	}
	ws.P50 = percentile(&hist, total, 0.50)
	ws.P90 = percentile(&hist, total, 0.90)
	ws.P99 = percentile(&hist, total, 0.99)
	return ws
}

func percentile(hist *[statsBuckets]uint64, total uint64, q float64) time.Duration {
	rank := uint64(math.Ceil(q * float64(total)))
	var acc uint64
	for i, n := range hist {
		acc += n
		if acc >= rank && n > 0 {
			if i == statsBuckets-1 {
				return statsBounds[statsBuckets-2] // open bucket: report its floor
			}
			return statsBounds[i]
		}
	}
	return statsBounds[statsBuckets-2]
}

// GroupSecond is one group's traffic in one second, as the statistics
// keep it: what a publisher outside the proxy (the in-cluster proxy's,
// internal/kubeproxy) aggregates into windows of its own.
type GroupSecond struct {
	Route    agentapi.RouteKey
	Group    string
	Requests uint64
	Errors   uint64
	// Latency counts the requests by the upper bound of their histogram
	// bucket, ascending, empty buckets left out. The open last bucket is
	// counted at its floor, the value a percentile reports for it.
	Latency []LatencyCount
}

// LatencyCount is a number of requests whose latency was at most Bound
// (and above the previous bound of the histogram).
type LatencyCount struct {
	Bound time.Duration
	N     uint64
}

// StatsSecond returns the traffic of every group of the table's
// non-preview routes in second sec (Unix seconds), and of the groups that
// left the table in the last 30 s, groups that served nothing in it left
// out. Read a second once it is over by a margin
// (requests are accounted for when they end, at most moments later), and
// within the last MaxStatsWindow (older seconds are recycled).
func (p *Proxy) StatsSecond(sec int64) []GroupSecond {
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	var out []GroupSecond
	read := func(sk statsKey, g *groupStats) {
		if sk.route.Preview {
			return
		}
		s := &g.slots[((sec%statsSlots)+statsSlots)%statsSlots]
		if s.sec.Load() != sec {
			return
		}
		gs := GroupSecond{Route: sk.route, Group: sk.group, Requests: s.count.Load(), Errors: s.errors.Load()}
		if gs.Requests == 0 {
			return
		}
		for i := range s.buckets {
			n := s.buckets[i].Load()
			if n == 0 {
				continue
			}
			b := statsBounds[min(i, statsBuckets-2)]
			if l := len(gs.Latency); l > 0 && gs.Latency[l-1].Bound == b {
				gs.Latency[l-1].N += n
				continue
			}
			gs.Latency = append(gs.Latency, LatencyCount{Bound: b, N: n})
		}
		out = append(out, gs)
	}
	for sk, g := range p.reg.stats {
		read(sk, g)
	}
	// Groups that left the table a moment ago: their last seconds.
	for sk, l := range p.reg.left {
		read(sk, l.g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Route != out[j].Route {
			return out[i].Route.String() < out[j].Route.String()
		}
		return out[i].Group < out[j].Group
	})
	return out
}

// RouteCounters returns the counters of every non-preview route the proxy
// knows.
func (p *Proxy) RouteCounters() map[agentapi.RouteKey]agentapi.Counters {
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	out := map[agentapi.RouteKey]agentapi.Counters{}
	for k, s := range p.reg.services {
		if !k.Preview {
			out[k] = agentapi.Counters{Served: s.served.Load(), Failed: s.failed.Load()}
		}
	}
	return out
}
