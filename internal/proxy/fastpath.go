package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The HTTP/1.1 fast path (Options.FastPath, on by default). Every HTTP/1 connection is
// first served by a loop of the proxy's own, on the connection's goroutine:
// it reads each head with the framing guard's parser (h1guard.go, oneHead),
// and serves itself what is plain — a bodiless GET, HEAD or OPTIONS of
// HTTP/1.1 with an origin-form target of unreserved bytes, whose route is
// up (not paused, not in maintenance) and has a target with room — over
// h1Pool, writing the upstream request from the raw fields and the
// client's response from the parsed upstream head. At the first request it
// does not serve (a body, Expect, Upgrade, TE, a Connection option other
// than close/keep-alive, HTTP/1.0, a target with escapes, a route that
// would reject it, a head the guard refused) it hands the connection,
// unread bytes included, to net/http's server for the rest of its life, so
// everything unusual is served by the same code as without the fast path.
//
// Both paths share the decisions: lookup, pickAcquire, stickyCookie,
// retryElsewhere, upstreamFailed, wrapBody (drain of streams), account.

// fastListener serves the connections of inner on the fast path; its
// Accept returns the connections handed off to net/http. Its Serve loop
// (http.Server.Serve) ends once inner is closed and every fast connection
// has finished or been handed off, so the stopper's wait for the Serve
// loops (graceful.go) waits for requests in flight on the fast path too.
type fastListener struct {
	inner  net.Listener
	p      *Proxy
	scheme string // X-Forwarded-Proto

	handoff chan net.Conn
	killed  chan struct{} // closed by kill: Shutdown's deadline passed

	mu         sync.Mutex
	conns      map[*fastConn]struct{}
	closed     bool
	acceptDone bool
	err        error
	done       chan struct{} // closed once acceptDone and no conns
	doneOnce   sync.Once
	killOnce   sync.Once
}

func (p *Proxy) newFastListener(inner net.Listener, scheme string) *fastListener {
	l := &fastListener{inner: inner, p: p, scheme: scheme, handoff: make(chan net.Conn), killed: make(chan struct{}),
		conns: map[*fastConn]struct{}{}, done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *fastListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		return c, nil
	case <-l.done:
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *fastListener) Addr() net.Addr { return l.inner.Addr() }

// Close stops accepting; fast connections finish the request they serve
// and close (those that sent nothing yet get freshGrace to send one).
func (l *fastListener) Close() error {
	err := l.inner.Close()
	l.mu.Lock()
	l.closed = true
	cs := make([]*fastConn, 0, len(l.conns))
	for fc := range l.conns {
		cs = append(cs, fc)
	}
	l.mu.Unlock()
	for _, fc := range cs {
		fc.stopping()
	}
	return err
}

// kill cuts every fast connection (Shutdown's deadline passed).
func (l *fastListener) kill() {
	l.killOnce.Do(func() { close(l.killed) })
	l.mu.Lock()
	defer l.mu.Unlock()
	for fc := range l.conns {
		fc.c.Close()
		if hc := fc.up.Load(); hc != nil {
			hc.c.Close()
		}
	}
}

func (l *fastListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			l.mu.Lock()
			l.acceptDone = true
			if !l.closed && !errors.Is(err, net.ErrClosed) {
				l.err = err
			}
			l.mu.Unlock()
			l.maybeDone()
			return
		}
		delay = 0
		var g *guardConn
		var dc *deferConn
		switch gc := c.(type) {
		case *guardConn:
			g = gc
			dc = newDeferConn(g.Conn) // nothing read yet
			g.Conn = dc
		case *tlsGuardConn:
			g, dc = gc.guardConn, gc.dc
		default:
			dc = newDeferConn(c)
			g = newGuardConn(dc)
			c = g
		}
		fc := &fastConn{l: l, p: l.p, c: c, g: g, dc: dc, accepted: time.Now(), remote: c.RemoteAddr().String()}
		fc.clientIP, _, _ = net.SplitHostPort(fc.remote)
		l.mu.Lock()
		l.conns[fc] = struct{}{}
		fc.stop = l.closed
		l.mu.Unlock()
		go fc.serve()
	}
}

func (l *fastListener) remove(fc *fastConn) {
	l.mu.Lock()
	delete(l.conns, fc)
	l.mu.Unlock()
	l.maybeDone()
}

func (l *fastListener) maybeDone() {
	l.mu.Lock()
	done := l.acceptDone && len(l.conns) == 0
	l.mu.Unlock()
	if done {
		l.doneOnce.Do(func() { close(l.done) })
	}
}

// field is one header field of the current request, in the guard's buffer.
type field struct {
	name, value []byte
	skip        bool // not forwarded
}

// fastConn is one client connection on the fast path.
type fastConn struct {
	l        *fastListener
	p        *Proxy
	c        net.Conn // what net/http gets at a hand-off
	g        *guardConn
	dc       *deferConn // under g (plain) or under TLS; nil: none
	bw       *bufio.Writer
	remote   string
	clientIP string
	accepted time.Time
	served   int

	mu   sync.Mutex
	idle bool // waiting for a request
	stop bool // the listener closed: close after the current request

	up atomic.Pointer[h1Conn] // the upstream connection of the response being copied

	// The current request.
	method string
	target []byte
	host   []byte
	fields []field
	reqID  []byte
	genID  bool     // X-Request-Id made by the proxy, in idBuf
	idBuf  [32]byte //
	// The last request's Host and path as strings: a connection mostly
	// asks one host, often one path, so their strings are reused.
	lastHost, lastPath string
	// idleUntil is the idle deadline of the wait for the next request;
	// probing: the wait's first part, bounded by heldIdle (serve).
	idleUntil  time.Time
	probing    bool
	xff        []byte // X-Forwarded-For to send
	closeReq   bool   // Connection: close
	closeAfter bool
	st         reqState
	body       h1Body
	clb        clBody
	resp       upResp
	scratch    []byte
	date       []byte // "Date: ...\r\n" of the second dateSec
	dateSec    int64

	// The watch of the client while the target answers slowly: net/http
	// reads the connection in the background during every request to see
	// a client leave; the fast path does so only for a request still
	// running after watchDelay, on the timer's goroutine.
	watch     *time.Timer
	watchDone chan struct{}
	gone      atomic.Bool // the client closed the connection
	// watchEnded (under mu): endWatch ran; a late watcher must not read
	watchEnded bool
}

// watchDelay is when a request starts being watched for its client leaving.
const watchDelay = 20 * time.Millisecond

func (fc *fastConn) startWatch() {
	fc.mu.Lock()
	fc.watchEnded = false
	fc.mu.Unlock()
	if fc.watch == nil {
		fc.watchDone = make(chan struct{}, 1)
		fc.watch = time.AfterFunc(watchDelay, fc.watchClient)
		return
	}
	fc.watch.Reset(watchDelay)
}

// endWatch stops the watch; the read deadline is left for the caller to set.
func (fc *fastConn) endWatch() {
	if fc.watch.Stop() {
		return
	}
	fc.mu.Lock()
	fc.watchEnded = true
	fc.c.SetReadDeadline(aLongTimeAgo)
	fc.mu.Unlock()
	<-fc.watchDone
}

// watchClient reads the client while the request runs: bytes (the next
// pipelined request) go to the guard's buffer after what it holds; the end
// of the connection cuts the upstream exchange, as the request's context
// does on the net/http path.
func (fc *fastConn) watchClient() {
	defer func() { fc.watchDone <- struct{}{} }()
	g := fc.g
	if g.v < g.w || g.w == len(g.buf) {
		return // the client sent more already: it is there
	}
	fc.mu.Lock()
	if fc.watchEnded {
		fc.mu.Unlock()
		return
	}
	fc.c.SetReadDeadline(time.Time{})
	fc.mu.Unlock()
	n, err := g.Conn.Read(g.buf[g.w:])
	g.w += n
	var ne net.Error
	if n == 0 && err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		// Under mu: forward clears up under it before the connection may go
		// back to the pool, and pools none once gone (a poisoned deadline).
		fc.mu.Lock()
		fc.gone.Store(true)
		if hc := fc.up.Load(); hc != nil {
			hc.c.SetDeadline(aLongTimeAgo)
		}
		fc.mu.Unlock()
	}
}

// stopping is called when the listener closes.
func (fc *fastConn) stopping() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.stop = true
	if fc.idle {
		fc.c.SetReadDeadline(fc.idleDeadline(time.Now()))
	}
}

// idleDeadline bounds the wait for the next request, as net/http's server
// does: the header timeout from the accept for the first request, the idle
// timeout between requests; a stopping proxy waits freshGrace for a first
// request and not at all for another.
func (fc *fastConn) idleDeadline(now time.Time) time.Time {
	lim := fc.p.opts.Limits
	var d time.Time
	if fc.served == 0 {
		if lim.Header > 0 {
			d = fc.accepted.Add(lim.Header)
		}
		if fc.stop {
			if g := fc.accepted.Add(freshGrace); d.IsZero() || g.Before(d) {
				d = g
			}
		}
		return d
	}
	if fc.stop {
		return aLongTimeAgo
	}
	if lim.Idle > 0 {
		d = now.Add(lim.Idle)
	}
	return d
}

func (fc *fastConn) serve() {
	handed := false
	fc.p.stopper.connState(fc.c, http.StateNew) // graceful.go: a fresh connection
	defer func() {
		if !handed {
			fc.sendHeld()
			fc.c.Close()
			fc.p.stopper.connState(fc.c, http.StateClosed)
		}
		if fc.watch != nil {
			fc.watch.Stop()
		}
		fc.l.remove(fc)
	}()
	for {
		fc.mu.Lock()
		if fc.stop && fc.served > 0 && fc.g.v == fc.g.w {
			fc.mu.Unlock()
			return
		}
		fc.idle = true
		now := time.Now()
		d := fc.idleDeadline(now)
		fc.idleUntil, fc.probing = d, false
		if fc.dc != nil && fc.dc.held() {
			// The held end of the last answer is written by the next read,
			// which waits without reading first, so it would not see a
			// client's half-close that came before it (deferConn): it waits
			// heldIdle at most, then the wait goes on with a plain read.
			if p := now.Add(heldIdle); d.IsZero() || p.Before(d) {
				d, fc.probing = p, true
			}
		}
		fc.c.SetReadDeadline(d)
		fc.mu.Unlock()
		ok, err := fc.readHead()
		fc.mu.Lock()
		fc.idle = false
		fc.mu.Unlock()
		if fc.served == 0 {
			fc.p.stopper.connState(fc.c, http.StateActive)
		}
		if err != nil {
			return // a timeout or the client closed: net/http closes silently too
		}
		if !ok || !fc.serveOne() {
			handed = fc.handOff()
			return
		}
		fc.served++
		if fc.closeAfter {
			return
		}
	}
}

// readHead reads until the guard has checked one whole head, now in
// g.buf[g.r:g.v]. ok is false when the guard refused it (net/http then
// answers 400, after the hand-off).
func (fc *fastConn) readHead() (ok bool, err error) {
	g := fc.g
	g.oneHead, g.headDone = true, false
	defer func() {
		g.oneHead = false
		// The last answer's end, if no read sent it: before anything else
		// (the watch, net/http) may use the connection.
		fc.sendHeld()
	}()
	fills := 0
	for !g.headDone {
		if g.st == gRefused {
			return false, nil
		}
		if g.v < g.w && g.check() {
			continue
		}
		if fills == 1 && fc.served > 0 {
			// The next request began but its head is not whole yet: the
			// header timeout counts from now (set only when a head takes
			// more than one read, which most do not).
			if h := fc.p.opts.Limits.Header; h > 0 {
				fc.mu.Lock()
				fc.idle = false
				fc.c.SetReadDeadline(time.Now().Add(h))
				fc.mu.Unlock()
			}
		}
		if err := g.fill(); err != nil {
			var ne net.Error
			if fc.probing && fills == 0 && errors.As(err, &ne) && ne.Timeout() {
				// The held wait ended (serve): wait on with a plain read,
				// which finds a half-close at once, until the idle deadline
				// (or at once if the proxy is stopping meanwhile).
				fc.mu.Lock()
				fc.probing = false
				d := fc.idleUntil
				if fc.stop {
					d = fc.idleDeadline(time.Now())
				}
				fc.c.SetReadDeadline(d)
				fc.mu.Unlock()
				continue
			}
			return false, err
		}
		fills++
	}
	return g.st == gRequestLine || g.st == gRaw || g.st == gBody || g.st == gChunkSize, nil
}

// handOff gives the connection, with the unread head, to net/http.
func (fc *fastConn) handOff() bool {
	fc.c.SetReadDeadline(time.Time{})
	seen := fc.p.stopper.expect(fc.c)
	select {
	case fc.l.handoff <- fc.c:
	case <-fc.l.killed:
		fc.p.stopper.unexpect(fc.c)
		return false
	}
	// Wait until net/http tracks it (ConnState StateNew): only then may
	// the Serve loop end and Shutdown start waiting for its connections.
	select {
	case <-seen:
	case <-fc.l.killed:
	}
	return true
}

// pathByte: bytes of a path net/http forwards unchanged (url.URL's
// EscapedPath leaves them as they are) and routes as they are (no '%').
var pathByte = alnumAnd("-_.~$&+,/:;=@")

// parse reads the head in g.buf[g.r:g.v]; false when the fast path does
// not serve it.
func (fc *fastConn) parse(head []byte) (path []byte, ok bool) {
	i := bytes.IndexByte(head, '\n')
	line := trimCR(head[:i])
	rest := head[i+1:]
	sp1 := bytes.IndexByte(line, ' ')
	method := line[:sp1]
	line = line[sp1+1:]
	sp2 := bytes.IndexByte(line, ' ')
	target, proto := line[:sp2], line[sp2+1:]
	if proto[7] != '1' {
		return nil, false // HTTP/1.0 and its keep-alive rules: net/http
	}
	switch string(method) {
	case http.MethodGet:
		fc.method = http.MethodGet
	case http.MethodHead:
		fc.method = http.MethodHead
	case http.MethodOptions:
		fc.method = http.MethodOptions
	default:
		return nil, false
	}
	if target[0] != '/' {
		return nil, false
	}
	path = target
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		path = target[:q]
		if !cleanQuery(target[q+1:]) {
			return nil, false
		}
	}
	for _, c := range path {
		if !pathByte[c] {
			return nil, false
		}
	}
	fc.target = target
	fc.fields = fc.fields[:0]
	fc.host, fc.reqID, fc.genID, fc.closeReq = nil, nil, false, false
	fc.xff = fc.xff[:0]
	haveID, haveUA, haveXFF := false, false, false
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := trimCR(rest[:i])
		rest = rest[i+1:]
		if len(line) == 0 {
			break
		}
		name, value, _ := splitField(line)
		canonicalizeInPlace(name)
		f := field{name: name, value: value}
		switch string(name) {
		case "Host":
			fc.host = value
			f.skip = true
		case "Connection":
			for v := value; len(v) > 0; {
				var t []byte
				t, v = nextListItem(v, ',')
				switch {
				case asciiEqualFold(t, "close"):
					fc.closeReq = true
				case asciiEqualFold(t, "keep-alive"), len(t) == 0:
				default:
					return nil, false // it names headers to remove: net/http
				}
			}
			f.skip = true
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer":
			return nil, false
		case "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
			"X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded":
			f.skip = true
		case "X-Forwarded-For":
			// SetXForwarded: the prior values joined with ", ", empty ones too.
			if haveXFF {
				fc.xff = append(fc.xff, ", "...)
			}
			haveXFF = true
			fc.xff = append(fc.xff, value...)
			f.skip = true
		case "X-Request-Id":
			if !haveID {
				haveID, fc.reqID = true, value
			}
		case "User-Agent":
			// http.Request.Write sends the first value only, if not empty.
			f.skip = haveUA || len(value) == 0
			haveUA = true
		}
		fc.fields = append(fc.fields, f)
	}
	if haveXFF {
		fc.xff = append(fc.xff, ", "...)
	}
	fc.xff = append(fc.xff, fc.clientIP...)
	if len(fc.reqID) == 0 {
		for i := range fc.fields {
			if string(fc.fields[i].name) == "X-Request-Id" {
				fc.fields[i].skip = true
			}
		}
	}
	return path, true
}

// cleanQuery: ReverseProxy forwards the query unchanged (its
// cleanQueryParams): no '#', no ';', only valid escapes, under 10000
// parameters. Otherwise it re-encodes it: the handler's business.
func cleanQuery(q []byte) bool {
	if bytes.Count(q, []byte("&")) >= 10000-1 {
		return false
	}
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case '#', ';':
			return false
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

// canonicalizeInPlace is textproto.CanonicalMIMEHeaderKey for a token.
func canonicalizeInPlace(b []byte) {
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
}

// stickyValue is r.Cookie(name).Value on the raw Cookie fields; ok is
// false when a cookie of that name is there but not plain (net/http's
// rules for it: the handler).
func (fc *fastConn) stickyValue(name string) (string, bool) {
	for _, f := range fc.fields {
		if string(f.name) != "Cookie" {
			continue
		}
		for v := f.value; len(v) > 0; {
			var part []byte
			part, v = nextListItem(v, ';')
			eq := bytes.IndexByte(part, '=')
			if eq < 0 || string(part[:eq]) != name {
				continue
			}
			val := part[eq+1:]
			for _, c := range val {
				if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
					return "", false
				}
			}
			return string(val), true
		}
	}
	return "", true
}

// serveOne serves the checked head in g.buf[g.r:g.v], or returns false
// with nothing done (the head stays unread for net/http).
func (fc *fastConn) serveOne() bool {
	g := fc.g
	if g.st != gRequestLine || g.nCL != 0 || g.nTE != 0 || g.upgrade || g.http10 {
		return false
	}
	p := fc.p
	rawPath, ok := fc.parse(g.buf[g.r:g.v])
	if !ok {
		return false
	}
	if string(rawPath) != fc.lastPath {
		fc.lastPath = string(rawPath)
	}
	if string(fc.host) != fc.lastHost {
		fc.lastHost = string(fc.host)
	}
	path, rawHost := fc.lastPath, fc.lastHost
	host, rt := p.lookup(rawHost, path)
	if rt == nil || rt.svc.pause.Load() != nil || rt.maintenance != "" {
		return false
	}
	start := p.now()
	sticky := ""
	if rt.sticky {
		if sticky, ok = fc.stickyValue(rt.cookie); !ok {
			return false
		}
	}
	grp, t, busy := p.pickAcquire(&rt, host, path, sticky, start.UnixNano())
	if busy || t == nil {
		return false // the handler answers 503, counted as it counts it
	}
	// Committed: the request is the fast path's.
	g.r = g.v
	p.fastServed.Add(1)
	fc.mu.Lock()
	fc.closeAfter = fc.closeReq || fc.stop
	fc.mu.Unlock()
	fc.st = reqState{rt: rt, g: grp, t: t}
	st := &fc.st
	// The id is a string only for the access log, its one reader.
	if len(fc.reqID) == 0 {
		fc.genID = true
		putRequestID(&fc.idBuf)
		if p.access != nil {
			st.requestID = string(fc.idBuf[:])
		}
	} else if p.access != nil {
		st.requestID = string(fc.reqID)
	}
	if fc.bw == nil {
		fc.bw = bufio.NewWriterSize(fc.c, 4096)
	}
	setCookie := stickyCookie(rt, sticky, grp)
	status, n := fc.forward(st, start, setCookie)
	st.t.release()
	info := reqInfo{remote: fc.remote, method: fc.method, host: rawHost, path: path, proto: "HTTP/1.1"}
	p.account(info, status, n, st, start)
	if fc.finish() != nil {
		fc.closeAfter = true
	}
	fc.st = reqState{}
	return true
}

// finish flushes the end of an answer. On a connection that stays open it
// is held (deferConn) and written by the read of the next request, which
// then waits for it without first finding nothing.
func (fc *fastConn) finish() error {
	if fc.dc == nil || fc.closeAfter {
		return fc.bw.Flush()
	}
	fc.dc.hold = true
	err := fc.bw.Flush()
	fc.dc.hold = false
	return err
}

// sendHeld writes what finish held and no read sent.
func (fc *fastConn) sendHeld() {
	if fc.dc != nil && fc.dc.sendHeld() != nil {
		fc.closeAfter = true
	}
}

var methodRequests = map[string]*http.Request{
	http.MethodGet:     {Method: http.MethodGet},
	http.MethodHead:    {Method: http.MethodHead},
	http.MethodOptions: {Method: http.MethodOptions},
}

// writeRequest writes the upstream request: what ReverseProxy with rewrite
// (forward.go) and http.Request.Write send for the same request.
func (fc *fastConn) writeRequest(bw *bufio.Writer) error {
	bw.WriteString(fc.method)
	bw.WriteByte(' ')
	bw.Write(fc.target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.Write(fc.host)
	bw.WriteString("\r\n")
	for _, f := range fc.fields {
		if !f.skip && string(f.name) == "User-Agent" {
			bw.WriteString("User-Agent: ")
			bw.Write(f.value)
			bw.WriteString("\r\n")
		}
	}
	for _, f := range fc.fields {
		if f.skip || string(f.name) == "User-Agent" {
			continue
		}
		bw.Write(f.name)
		bw.WriteString(": ")
		bw.Write(f.value)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-For: ")
	bw.Write(fc.xff)
	bw.WriteString("\r\nX-Forwarded-Host: ")
	bw.Write(fc.host)
	bw.WriteString("\r\nX-Forwarded-Proto: ")
	bw.WriteString(fc.l.scheme)
	bw.WriteString("\r\n")
	if fc.genID {
		bw.WriteString("X-Request-Id: ")
		bw.Write(fc.idBuf[:])
		bw.WriteString("\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// forward sends the request to st.t (once more elsewhere if connecting
// failed) and copies the response; it returns the status and the body
// bytes written.
func (fc *fastConn) forward(st *reqState, start time.Time, setCookie string) (int, int64) {
	p := fc.p
	req := methodRequests[fc.method]
	u := &fc.resp
	var resp *http.Response
	var hc *h1Conn
	fc.gone.Store(false)
	fc.startWatch()
	defer fc.endWatch()
	for {
		var err error
		resp, hc, _, err = p.pool.exchange(context.Background(), st.t.addr, fc, req, u)
		if err == nil {
			st.t.succeeded(p.now().UnixNano())
			break
		}
		var de *dialError
		if errors.As(err, &de) {
			if !st.retried {
				if p.retryElsewhere(st, p.now(), err) {
					continue
				}
			} else {
				p.connFailed(st.t, p.now(), err)
			}
		}
		if fc.gone.Load() {
			fc.closeAfter = true
			return 499, 0 // the client went away; nobody reads an answer
		}
		code, msg := p.upstreamFailed(st, err)
		fc.writeText(code, msg)
		return code, int64(len(msg))
	}
	if resp == nil {
		// A plain head, parsed into u (h1resp.go): its body, if any, has a
		// length, so wrapBody has nothing to track.
		fc.clb = clBody{br: hc.br, remain: u.bodyLen}
		fc.body = h1Body{rc: &fc.clb, hc: hc, pool: p.pool, stop: noStop, keep: !u.close}
		u.body = &fc.body
	} else {
		fc.body = h1Body{rc: resp.Body, hc: hc, pool: p.pool, stop: noStop, keep: !resp.Close}
		resp.Body = &fc.body
		wrapBody(st, req, resp)
		u.fromResponse(resp)
	}
	status, n, err := fc.copyResponse(u, setCookie)
	fc.mu.Lock()
	fc.up.Store(nil)
	gone := fc.gone.Load()
	fc.mu.Unlock()
	if gone {
		fc.body.keep = false // its deadline may be poisoned: not for the pool
		fc.closeAfter = true
	}
	u.body.Close()
	u.body, u.trailer = nil, nil
	if err != nil {
		st.err = errAborted
		fc.closeAfter = true
	}
	return status, n
}

func noStop() bool { return true }

func (fc *fastConn) using(hc *h1Conn) {
	fc.up.Store(hc)
	select {
	case <-fc.l.killed:
		hc.c.Close()
	default:
	}
}

// hopByHop are the fields ReverseProxy removes from a response.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// asciiFoldEqual is a == b but for ASCII letter case (Header.Del's match
// of a canonical name; no Unicode folding).
func asciiFoldEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func isHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if string(name) == h {
			return true
		}
	}
	return false
}

// copyResponse writes u to the client as net/http's server writes what
// ReverseProxy hands it: hop-by-hop fields removed, trailers announced,
// Date added, Content-Type sniffed when missing, chunked when the length is
// unknown (flushed as it comes), Content-Length: 0 for an empty one.
func (fc *fastConn) copyResponse(u *upResp, setCookie string) (status int, n int64, err error) {
	fs := u.fields
	// ReverseProxy's removeHopByHopHeaders: the fields Connection names
	// (textproto.TrimString'd, then Header.Del), then the fixed list.
	for i := range fs {
		if fs[i].skip || string(fs[i].name) != "Connection" {
			continue
		}
		for v := fs[i].value; len(v) > 0; {
			var t []byte
			t, v = nextListItem(v, ',')
			if len(t) == 0 {
				continue
			}
			for j := range fs {
				if asciiFoldEqual(fs[j].name, t) {
					fs[j].skip = true
				}
			}
		}
	}
	for i := range fs {
		if isHopByHop(fs[i].name) {
			fs[i].skip = true
		}
	}
	code := u.code
	head := fc.method == http.MethodHead
	allowed := code >= 200 && code != 204 && code != 304
	_, hasCL := u.field("Content-Length")
	bufp := buffers.Get().(*[]byte)
	defer buffers.Put(bufp)
	buf := *bufp
	// The first bytes of the body come before the head, as with net/http
	// (its header goes out at the first write): sniffing and an empty
	// body's Content-Length: 0 depend on them.
	var first int
	var rerr error
	if allowed && !head {
		want := 1
		if hasCL && u.cl > 0 {
			want = int(min(u.cl, 512))
		}
		for first < want && rerr == nil {
			var k int
			k, rerr = u.body.Read(buf[first:])
			first += k
		}
	}
	if rerr != nil && rerr != io.EOF {
		return code, 0, rerr // nothing sent: the connection closes, as after ErrAbortHandler
	}
	chunked := allowed && !head && !hasCL
	zeroLength := false
	if chunked && first == 0 && rerr == io.EOF && len(u.trailer) == 0 {
		chunked, zeroLength = false, true
	}
	sniffed := ""
	if allowed {
		if _, ok := u.field("Content-Type"); !ok && first > 0 {
			if ce, _ := u.field("Content-Encoding"); len(ce) == 0 {
				sniffed = http.DetectContentType(buf[:first])
			}
		}
	} else {
		for i := range fs {
			switch string(fs[i].name) {
			case "Content-Length":
				fs[i].skip = true
			case "Content-Type":
				fs[i].skip = fs[i].skip || code == 304
			}
		}
	}
	bw := fc.bw
	fc.writeStatus(code)
	for i := range fs {
		if f := &fs[i]; !f.skip {
			bw.Write(f.name)
			bw.WriteString(": ")
			bw.Write(f.value)
			bw.WriteString("\r\n")
		}
	}
	if setCookie != "" {
		bw.WriteString("Set-Cookie: ")
		bw.WriteString(setCookie)
		bw.WriteString("\r\n")
	}
	if zeroLength {
		bw.WriteString("Content-Length: 0\r\n")
	}
	if sniffed != "" {
		bw.WriteString("Content-Type: ")
		bw.WriteString(sniffed)
		bw.WriteString("\r\n")
	}
	if len(u.trailer) > 0 {
		bw.WriteString("Trailer: ")
		i := 0
		for k := range u.trailer {
			if i > 0 {
				bw.WriteString(", ")
			}
			bw.WriteString(k)
			i++
		}
		bw.WriteString("\r\n")
	}
	if _, ok := u.field("Date"); !ok {
		fc.writeDate()
	}
	if chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if fc.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	// The end of the answer stays buffered: serveOne flushes it once the
	// request is accounted for, so a client that read its whole answer
	// finds it in the statistics (as net/http's handler path does).
	if !allowed || head {
		return code, 0, nil
	}
	stream := chunked
	if !stream {
		if ct, ok := u.field("Content-Type"); ok {
			stream = isEventStream(ct)
		}
	}
	chunk := buf[:first]
	for {
		if len(chunk) > 0 {
			if err := fc.writeBody(chunk, chunked); err != nil {
				return code, n, err
			}
			n += int64(len(chunk))
			if stream {
				if err := bw.Flush(); err != nil {
					return code, n, err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			bw.Flush()
			return code, n, rerr
		}
		var k int
		k, rerr = u.body.Read(buf)
		chunk = buf[:k]
	}
	if chunked {
		bw.WriteString("0\r\n")
		for k, vs := range u.trailer {
			for _, v := range vs {
				bw.WriteString(k)
				bw.WriteString(": ")
				bw.WriteString(v)
				bw.WriteString("\r\n")
			}
		}
		bw.WriteString("\r\n")
	}
	return code, n, nil
}

// isEventStream is ReverseProxy's test for a response to flush at once.
func isEventStream(ct []byte) bool {
	if len(ct) < 17 || !asciiEqualFold(ct[:17], "text/event-stream") {
		return false
	}
	base, _, _ := mime.ParseMediaType(string(ct))
	return base == "text/event-stream"
}

func (fc *fastConn) writeBody(b []byte, chunked bool) error {
	bw := fc.bw
	if chunked {
		fc.scratch = strconv.AppendInt(fc.scratch[:0], int64(len(b)), 16)
		fc.scratch = append(fc.scratch, '\r', '\n')
		bw.Write(fc.scratch)
	}
	_, err := bw.Write(b)
	if chunked {
		_, err = bw.WriteString("\r\n")
	}
	return err
}

func (fc *fastConn) writeStatus(code int) {
	bw := fc.bw
	bw.WriteString("HTTP/1.1 ")
	fc.scratch = strconv.AppendInt(fc.scratch[:0], int64(code), 10)
	bw.Write(fc.scratch)
	bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		bw.WriteString(text)
	} else {
		bw.WriteString("status code ")
		bw.Write(fc.scratch)
	}
	bw.WriteString("\r\n")
}

// writeDate writes the Date field, formatted once per second per connection.
func (fc *fastConn) writeDate() {
	if now := time.Now(); now.Unix() != fc.dateSec || len(fc.date) == 0 {
		fc.dateSec = now.Unix()
		fc.date = append(fc.date[:0], "Date: "...)
		fc.date = now.UTC().AppendFormat(fc.date, http.TimeFormat)
		fc.date = append(fc.date, '\r', '\n')
	}
	fc.bw.Write(fc.date)
}

// writeText is the handler's writeText on the fast path.
func (fc *fastConn) writeText(code int, msg string) {
	bw := fc.bw
	fc.writeStatus(code)
	bw.WriteString("Cache-Control: no-store\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n")
	fc.writeDate()
	bw.WriteString("Content-Length: ")
	fc.scratch = strconv.AppendInt(fc.scratch[:0], int64(len(msg)), 10)
	bw.Write(fc.scratch)
	bw.WriteString("\r\n")
	if fc.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	bw.WriteString(msg)
	// serveOne flushes the end once the request is accounted for.
}
