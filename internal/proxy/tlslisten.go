package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// The TLS listener does the handshake itself, so that the connection net/http
// serves can be wrapped by what ALPN chose: an HTTP/1.1 connection is read
// through the framing guard (h1guard.go) and served by the HTTP/1 server
// (which takes Request.TLS from its ConnectionState method), an h2 one
// through the frame shim (h2shim.go) and served by a server speaking only
// HTTP/2 on what it takes for a clear connection (Request.TLS comes from the
// connection's context, see tlsState). net/http would handshake itself only
// on a bare *tls.Conn, which leaves no room for either.
type tlsListener struct {
	ln      net.Listener
	cfg     *tls.Config
	timeout time.Duration
	log     *slog.Logger

	h1, h2 chanListener
	done   chan struct{} // closed: accept nothing more
	once   sync.Once
	wg     sync.WaitGroup // the accept loop and handshakes

	// A connection accepted is always handed to a server, even when the
	// listener closes during its handshake (the stopper, graceful.go, then
	// waits for its first request): the servers' Accept reports the close
	// only once no handshake is pending.
	mu      sync.Mutex
	pending int
	closed  bool
	drained chan struct{}
}

func newTLSListener(ln net.Listener, cfg *tls.Config, timeout time.Duration, log *slog.Logger) *tlsListener {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	l := &tlsListener{ln: ln, cfg: cfg, timeout: timeout, log: log, done: make(chan struct{}), drained: make(chan struct{})}
	l.h1 = chanListener{l: l, ch: make(chan net.Conn)}
	l.h2 = chanListener{l: l, ch: make(chan net.Conn)}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *tlsListener) close() error {
	var err error
	l.once.Do(func() {
		err = l.ln.Close()
		close(l.done)
		l.mu.Lock()
		l.closed = true
		if l.pending == 0 {
			close(l.drained)
		}
		l.mu.Unlock()
	})
	return err
}

// begin counts a handshake; false once the listener closed.
func (l *tlsListener) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending++
	return true
}

func (l *tlsListener) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending--
	if l.closed && l.pending == 0 {
		close(l.drained)
	}
}

func (l *tlsListener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
				}
			}
			l.close()
			return
		}
		delay = 0
		if !l.begin() {
			c.Close()
			return
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	defer l.wg.Done()
	defer l.end()
	dc := newDeferConn(raw) // the fast path holds the end of an answer in it
	tc := tls.Server(dc, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := tc.HandshakeContext(ctx) // a late client: the context closes the connection
	cancel()
	if err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		l.log.Debug("proxy TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		raw.Close()
		return
	}
	var c net.Conn
	to := &l.h1
	if cs := tc.ConnectionState(); cs.NegotiatedProtocol == "h2" {
		c, to = newH2Conn(tc, cs), &l.h2
	} else {
		c = &tlsGuardConn{guardConn: newGuardConn(tc), cs: cs, dc: dc}
	}
	// The servers' Accept loops run until drained, which waits for this.
	to.ch <- c
}

func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// chanListener is one side (HTTP/1 or h2) of a tlsListener, for one
// http.Server's Serve. Closing either closes the TLS listener.
type chanListener struct {
	l  *tlsListener
	ch chan net.Conn
}

func (c *chanListener) Accept() (net.Conn, error) {
	select {
	case conn := <-c.ch:
		return conn, nil
	case <-c.l.drained:
		return nil, net.ErrClosed
	}
}

func (c *chanListener) Close() error   { return c.l.close() }
func (c *chanListener) Addr() net.Addr { return c.l.ln.Addr() }

// tlsGuardConn is an HTTP/1.1-over-TLS connection read through the guard;
// net/http sets Request.TLS from ConnectionState.
type tlsGuardConn struct {
	*guardConn
	cs tls.ConnectionState
	dc *deferConn // under the TLS connection
}

// ConnectionState is the handshake's outcome.
func (c *tlsGuardConn) ConnectionState() tls.ConnectionState { return c.cs }

// tlsStateKey holds, in an h2 connection's context, its TLS state.
type tlsStateKey struct{}

func h2ConnContext(ctx context.Context, c net.Conn) context.Context {
	if h, ok := c.(*h2Conn); ok {
		return context.WithValue(ctx, tlsStateKey{}, &h.cs)
	}
	return ctx
}
