package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
)

// pauseState holds a service's new requests until Resume or until, at the
// latest, the deadline given to Pause: then they are released and go on.
type pauseState struct {
	done     chan struct{}
	once     sync.Once
	deadline time.Time
}

func (ps *pauseState) release() { ps.once.Do(func() { close(ps.done) }) }

// Pause holds new requests of a route (requests already in flight go on)
// until Resume is called or maxHold has passed, whichever is first. A second
// Pause replaces the deadline.
func (p *Proxy) Pause(k agentapi.RouteKey, maxHold time.Duration) {
	s := p.serviceFor(k)
	ps := &pauseState{done: make(chan struct{}), deadline: time.Now().Add(maxHold)}
	if old := s.pause.Swap(ps); old != nil {
		old.release() // its waiters go on; new arrivals wait on ps
	}
}

// Resume releases the held requests of a route and stops holding new ones.
func (p *Proxy) Resume(k agentapi.RouteKey) {
	s := p.serviceFor(k)
	if ps := s.pause.Swap(nil); ps != nil {
		ps.release()
	}
}

// Paused reports whether new requests of a route are currently held.
func (p *Proxy) Paused(k agentapi.RouteKey) bool {
	ps := p.serviceFor(k).pause.Load()
	return ps != nil && time.Now().Before(ps.deadline)
}

// waitPaused blocks while the service is paused. It returns false if the
// client went away meanwhile.
func (s *service) waitPaused(ctx context.Context) bool {
	s.held.Add(1)
	defer s.held.Add(-1)
	for {
		ps := s.pause.Load()
		if ps == nil {
			return true
		}
		d := time.Until(ps.deadline)
		if d <= 0 {
			s.pause.CompareAndSwap(ps, nil)
			ps.release()
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-ps.done:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		t.Stop()
		if s.pause.Load() != ps {
			continue // resumed, or paused again meanwhile: check the new state
		}
		return true
	}
}
