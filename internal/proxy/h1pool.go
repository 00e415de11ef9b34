package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// h1Pool is the fast path to targets for requests without a body that can
// safely be sent again (GET, HEAD, OPTIONS), which is most traffic: it writes
// the request and reads the response on the request's own goroutine over a
// pooled keep-alive connection, where http.Transport hands each request to a
// writer and a reader goroutine per connection. Everything else (bodies,
// Upgrade) goes through http.Transport.
//
// A pooled connection the target closed meanwhile is only noticed when used:
// the request is then sent again once on a new connection (safe for these
// methods, and what http.Transport does too), and the other idle connections
// to that target are dropped.
type h1Pool struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle int
	maxAge  time.Duration // idle connections older than this are not reused
	// headerTimeout bounds the wait for response headers (0: none).
	headerTimeout time.Duration

	mu   sync.Mutex
	idle map[string][]*h1Conn
}

type h1Conn struct {
	c      net.Conn
	d      *deferConn // under br and bw
	br     *bufio.Reader
	bw     *bufio.Writer
	addr   string
	idleAt time.Time
}

func newH1Pool(dial func(ctx context.Context, network, addr string) (net.Conn, error), headerTimeout time.Duration) *h1Pool {
	return &h1Pool{dial: dial, maxIdle: 1024, maxAge: 30 * time.Second, headerTimeout: headerTimeout, idle: map[string][]*h1Conn{}}
}

// fastPathOK reports whether a request can take the h1Pool.
func fastPathOK(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	return (req.Body == nil || req.Body == http.NoBody) && req.Header["Upgrade"] == nil && req.URL.Scheme == "http"
}

func (p *h1Pool) get(ctx context.Context, addr string, fresh bool) (*h1Conn, bool, error) {
	now := time.Now()
	p.mu.Lock()
	for cs := p.idle[addr]; len(cs) > 0 && !fresh; cs = p.idle[addr] {
		hc := cs[len(cs)-1]
		p.idle[addr] = cs[:len(cs)-1]
		if idle := now.Sub(hc.idleAt); idle < p.maxAge {
			p.mu.Unlock()
			// Held writes (h1io.go) skip the read that would find a close
			// the target made while the connection was idle; a close is
			// answered by a reset that wakes the wait, unless the target
			// only half-closed and lingers. A connection idle for a while,
			// the one likely to be closed by a target's idle timeout, is
			// written and read plainly, which finds the close at once.
			hc.d.hold = idle < heldIdle
			return hc, true, nil
		}
		hc.c.Close()
	}
	p.mu.Unlock()
	c, err := p.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	d := newDeferConn(c)
	d.hold = true // a request is always followed by the read of its answer
	return &h1Conn{c: c, d: d, br: bufio.NewReaderSize(d, 4096), bw: bufio.NewWriterSize(d, 4096), addr: addr}, false, nil
}

func (p *h1Pool) put(hc *h1Conn) {
	hc.idleAt = time.Now()
	p.mu.Lock()
	if cs := p.idle[hc.addr]; len(cs) < p.maxIdle {
		p.idle[hc.addr] = append(cs, hc)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	hc.c.Close()
}

// retain closes the idle connections to addresses no longer in the table.
func (p *h1Pool) retain(keep func(addr string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, cs := range p.idle {
		if keep(addr) {
			continue
		}
		for _, hc := range cs {
			hc.c.Close()
		}
		delete(p.idle, addr)
	}
}

func (p *h1Pool) closeIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, cs := range p.idle {
		for _, hc := range cs {
			hc.c.Close()
		}
		delete(p.idle, addr)
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// heldIdle: a pooled connection idle for less than this has its request
// held (deferConn); under load they are idle for microseconds.
const heldIdle = time.Second

func (p *h1Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, hc, stop, err := p.exchange(req.Context(), req.URL.Host, stdRequest{req}, req, nil)
	if err != nil {
		return nil, err
	}
	resp.Body = &h1Body{rc: resp.Body, hc: hc, pool: p, stop: stop, keep: !resp.Close}
	return resp, nil
}

// requestWriter writes a request's head to a target: an *http.Request
// (stdRequest), or the fast path's raw fields (fastConn, fastpath.go).
type requestWriter interface {
	writeRequest(bw *bufio.Writer) error
}

type stdRequest struct{ r *http.Request }

func (s stdRequest) writeRequest(bw *bufio.Writer) error { return s.r.Write(bw) }

// exchange sends w's request over a pooled connection to addr and reads the
// response head (req gives the method to it). The returned stop ends the
// watch of ctx (a cancellation closes the connection's I/O). With u, a
// plain head is parsed into it (h1resp.go) and the response is nil.
func (p *h1Pool) exchange(ctx context.Context, addr string, w requestWriter, req *http.Request, u *upResp) (*http.Response, *h1Conn, func() bool, error) {
	for attempt := 0; ; attempt++ {
		hc, reused, err := p.get(ctx, addr, attempt > 0)
		if err != nil {
			return nil, nil, nil, err
		}
		if u, ok := w.(interface{ using(*h1Conn) }); ok {
			u.using(hc) // the fast path's kill can then cut it
		}
		// A client that goes away cancels the context: unblock the I/O.
		stop := noStop
		if ctx.Done() != nil {
			stop = context.AfterFunc(ctx, func() { hc.c.SetDeadline(aLongTimeAgo) })
		}
		if p.headerTimeout > 0 {
			hc.c.SetReadDeadline(time.Now().Add(p.headerTimeout))
		}
		resp, err := hc.roundTrip(w, req, u)
		if err == nil && p.headerTimeout > 0 && resp == nil && ctx.Done() == nil && u.bodyLen <= int64(hc.br.Buffered()) {
			// The whole body is buffered already: no read of the
			// connection is left for the deadline to bound, and the next
			// exchange sets its own (a timer operation saved per request).
		} else if err == nil && p.headerTimeout > 0 {
			// The body (a stream) is not bound; a cancellation that
			// came meanwhile must still poison the connection.
			hc.c.SetReadDeadline(time.Time{})
			if ctx.Err() != nil {
				hc.c.SetDeadline(aLongTimeAgo)
			}
		}
		if err != nil {
			stop()
			hc.c.Close()
			if ctxErr := ctx.Err(); ctxErr != nil {
				return nil, nil, nil, ctxErr
			}
			if reused && attempt == 0 && staleConnError(err) {
				// The target closed this idle connection, and likely the
				// others it had with us (it restarted or died): drop them
				// and send once more on a new connection.
				p.retain(func(a string) bool { return a != addr })
				continue
			}
			return nil, nil, nil, err
		}
		return resp, hc, stop, nil
	}
}

func (hc *h1Conn) roundTrip(w requestWriter, req *http.Request, u *upResp) (*http.Response, error) {
	if err := w.writeRequest(hc.bw); err != nil {
		return nil, err
	}
	if err := hc.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		if u != nil && readPlainHead(hc.br, req.Method, u) {
			return nil, nil
		}
		resp, err := http.ReadResponse(hc.br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		// 1xx informational answers (103 Early Hints) are skipped.
	}
}

// staleConnError is what reading or writing a pooled connection that its
// server closed while idle looks like.
func staleConnError(err error) bool {
	var te net.Error
	if errors.As(err, &te) && te.Timeout() {
		return false // the target is slow (response header timeout), not gone
	}
	var ne *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne)
}

// h1Body returns the connection to the pool once the response was read to
// its end, and closes it if the reader stops early.
type h1Body struct {
	rc   io.ReadCloser
	hc   *h1Conn
	pool *h1Pool
	stop func() bool
	keep bool
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

func (b *h1Body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

// interrupt unblocks a Read from another goroutine (a drain ending a
// stream): closing the connection is safe concurrently, Close is not.
func (b *h1Body) interrupt() { b.hc.c.Close() }

func (b *h1Body) finish(complete bool) {
	b.done = true
	// stop reports false when the cancellation already poisoned the deadline.
	if complete && b.keep && b.stop() {
		b.rc.Close()
		b.pool.put(b.hc)
		return
	}
	b.stop()
	// Close the connection before the body: closing an unfinished body would
	// otherwise read the rest of it (an endless stream never ends).
	b.hc.c.Close()
	b.rc.Close()
}
