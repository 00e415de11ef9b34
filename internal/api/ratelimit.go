package api

import (
	"sync"
	"time"
)

// authLimiter counts failed authentications per source address: after
// limit failures inside window, the source is refused (429) until the
// window that began with its first failure ends.
type authLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	now    func() time.Time
	fails  map[string]*failures
}

type failures struct {
	n     int
	since time.Time
}

func newAuthLimiter(limit int, window time.Duration, now func() time.Time) *authLimiter {
	return &authLimiter{limit: limit, window: window, now: now, fails: map[string]*failures{}}
}

// blocked returns how long src must wait, or 0.
func (l *authLimiter) blocked(src string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[src]
	if f == nil {
		return 0
	}
	left := f.since.Add(l.window).Sub(l.now())
	if left <= 0 {
		delete(l.fails, src)
		return 0
	}
	if f.n >= l.limit {
		return left
	}
	return 0
}

// fail counts one failed authentication of src.
func (l *authLimiter) fail(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.fails[src]
	if f == nil || now.Sub(f.since) >= l.window {
		f = &failures{since: now}
		l.fails[src] = f
	}
	f.n++
	// Bound memory under a flood from many addresses: forget expired ones.
	if len(l.fails) > 10000 {
		for k, v := range l.fails {
			if now.Sub(v.since) >= l.window {
				delete(l.fails, k)
			}
		}
	}
}
