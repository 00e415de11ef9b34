package proxy

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// freshGrace is how long a stopping proxy waits for the first request of a
// connection it accepted: one that sends nothing for that long is taken for
// an idle preconnect (browsers open them) and closed by Shutdown.
const freshGrace = time.Second

// stopper lets the proxy stop without dropping a connection it accepted.
//
// http.Server.Shutdown closes the listeners and then drops, without an
// answer, every connection whose first request it reads after that moment:
// a client whose connection was accepted just before gets EOF. Behind
// `runway up` or systemd the listening socket stays open when this
// process's copy closes, and what this process did not accept waits in the
// backlog for the next agent. So the proxy stops in three steps: close its
// listeners (accept nothing more), wait until every connection it accepted
// has sent its first request (or sent nothing for freshGrace), then
// Shutdown, which waits for those requests to finish.
type stopper struct {
	serving sync.WaitGroup // the Serve loops

	mu    sync.Mutex
	lns   []net.Listener
	fresh map[net.Conn]time.Time // accepted, first request not yet read
	// handed: connections the fast path hands to a server (fastpath.go),
	// each channel closed when the server tracks it (StateNew).
	handed map[net.Conn]chan struct{}
}

// expect returns a channel closed once a server took c (StateNew).
func (s *stopper) expect(c net.Conn) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.handed == nil {
		s.handed = map[net.Conn]chan struct{}{}
	}
	ch := make(chan struct{})
	s.handed[c] = ch
	return ch
}

func (s *stopper) unexpect(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.handed, c)
}

func (s *stopper) listen(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lns = append(s.lns, ln)
}

// connState is the servers' http.Server.ConnState hook.
func (s *stopper) connState(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateNew {
		if s.fresh == nil {
			s.fresh = map[net.Conn]time.Time{}
		}
		s.fresh[c] = time.Now()
		if ch, ok := s.handed[c]; ok {
			close(ch)
			delete(s.handed, c)
		}
		return
	}
	delete(s.fresh, c)
}

// stopAccepting closes the listeners and returns once every accepted
// connection has sent its first request or is an idle preconnect, or when
// ctx ends.
func (s *stopper) stopAccepting(ctx context.Context) {
	s.mu.Lock()
	lns := s.lns
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	// Once the Serve loops returned, every connection they accepted is in
	// fresh (http.Server calls ConnState(StateNew) before its next Accept).
	served := make(chan struct{})
	go func() { s.serving.Wait(); close(served) }()
	select {
	case <-served:
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !s.quiet(time.Now()) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *stopper) quiet(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.fresh {
		if now.Sub(at) < freshGrace {
			return false
		}
	}
	return true
}
