package proxy

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
)

// Passive health: after ejectAfter consecutive connection failures a target
// gets no requests for ejectBase, doubling with every new ejection up to
// ejectMax; one success resets it.
const (
	ejectAfter = 2
	ejectBase  = time.Second
	ejectMax   = 30 * time.Second
)

// target is the state of one instance of one group that outlives table
// swaps: the in-flight count Drain waits on, passive health, and the cached
// metric handles, so the request path never looks anything up by label.
type target struct {
	route                 agentapi.RouteKey
	group, instance, addr string

	inflight atomic.Int64
	retired  atomic.Bool // no longer in the current table

	consecFails  atomic.Int32
	ejections    atomic.Int32
	ejectedUntil atomic.Int64 // unix nanoseconds

	idleOnce sync.Once
	idle     chan struct{} // closed once retired with nothing in flight

	m *targetMetrics

	openMu sync.Mutex
	open   map[goAwayer]struct{} // WebSockets and streams a drain may end (goaway.go)
}

func newTarget(route agentapi.RouteKey, group string, t Target, m *targetMetrics) *target {
	return &target{route: route, group: group, instance: t.Instance, addr: t.Addr,
		idle: make(chan struct{}), m: m}
}

// series is the label values of the target's metrics.
func (t *target) series() seriesKey {
	return seriesKey{t.route.Project, t.route.Environment, t.route.Service, t.group, t.instance}
}

// acquire counts a request on the target. It fails if the target was retired
// after the caller read the table (the caller then picks again from the new
// table) or, with full, if max (> 0) requests are in flight on it already.
// Go's atomics are sequentially consistent, so either acquire sees retired or
// retire sees the increment: Drain never misses a request.
func (t *target) acquire(max int64) (ok, full bool) {
	n := t.inflight.Add(1)
	if t.retired.Load() {
		t.release()
		return false, false
	}
	if max > 0 && n > max {
		t.release()
		return false, true
	}
	return true, false
}

func (t *target) release() {
	if t.inflight.Add(-1) == 0 && t.retired.Load() {
		t.idleOnce.Do(func() { close(t.idle) })
	}
}

func (t *target) retire() {
	t.retired.Store(true)
	if t.inflight.Load() == 0 {
		t.idleOnce.Do(func() { close(t.idle) })
	}
}

func (t *target) ejected(now int64) bool {
	u := t.ejectedUntil.Load()
	return u != 0 && now < u
}

// connFailed records a failed connection and ejects the target when it is
// the ejectAfter-th in a row. It reports whether this call ejected it.
func (t *target) connFailed(now time.Time) bool {
	if t.consecFails.Add(1) < ejectAfter || t.ejected(now.UnixNano()) {
		return false
	}
	n := t.ejections.Add(1)
	d := ejectBase << min(n-1, 5)
	if d > ejectMax {
		d = ejectMax
	}
	t.ejectedUntil.Store(now.Add(d).UnixNano())
	t.consecFails.Store(0)
	return true
}

func (t *target) succeeded(now int64) {
	if t.consecFails.Load() != 0 {
		t.consecFails.Store(0)
	}
	if t.ejections.Load() != 0 && !t.ejected(now) {
		t.ejections.Store(0)
		t.ejectedUntil.Store(0)
	}
}
