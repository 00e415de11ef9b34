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
