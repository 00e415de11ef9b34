package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runwayhq/runway/internal/httplimit"
)

// newForwarder builds the upstream side: pooled HTTP/1.1 keep-alive
// connections to targets, and httputil.ReverseProxy for hop-by-hop headers
// (RFC 9110 §7.6.1), Upgrade/WebSocket tunnelling, trailers and flushing of
// streamed responses (those without Content-Length are flushed at once).
func (p *Proxy) newForwarder() (*http.Transport, *h1Pool, *httputil.ReverseProxy) {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &dialError{err}
		}
		return c, nil
	}
	pool := newH1Pool(dial, p.opts.ResponseHeaderTimeout)
	tr := &http.Transport{
		DialContext:           dial,
		MaxIdleConns:          0, // no global cap: the per-target cap below bounds it
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: p.opts.ResponseHeaderTimeout,
		DisableCompression:    true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite:      rewrite,
		Transport:    &retryTransport{p: p, base: tr, fast: pool},
		ErrorHandler: p.upstreamError,
		BufferPool:   bufferPool{},
		ErrorLog:     log.New(slogWriter{p.log}, "", 0),
	}
	return tr, pool, rp
}

func rewrite(pr *httputil.ProxyRequest) {
	st := pr.In.Context().Value(stateKey{}).(*reqState)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = st.t.addr
	// Append to the client's X-Forwarded-For, as nginx's
	// $proxy_add_x_forwarded_for does; Host and Proto are the proxy's own view.
	if xff := pr.In.Header["X-Forwarded-For"]; xff != nil {
		pr.Out.Header["X-Forwarded-For"] = xff
	}
	pr.SetXForwarded()
	// Expect: 100-continue is answered by the proxy (net/http sends the 100
	// when the body is first read, which the transport does at once), not
	// forwarded: otherwise the client's 100 waits for the instance's, or
	// for the transport's ExpectContinueTimeout. nginx does the same.
	if pr.Out.Header["Expect"] != nil {
		delete(pr.Out.Header, "Expect")
	}
	st.requestID = pr.Out.Header.Get("X-Request-Id") // fastpath.go: the same rule on raw fields
	if st.requestID == "" {
		st.requestID = newRequestID()
		pr.Out.Header["X-Request-Id"] = []string{st.requestID}
	}
}

// dialError marks a failure to connect to a target: nothing of the request
// was sent, so it is safe to retry elsewhere.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// retryTransport retries a request once on another target of its route when
// connecting to the first one failed and none of its body was read. Nothing
// else is retried.
type retryTransport struct {
	p    *Proxy
	base *http.Transport
	fast *h1Pool
}

func (tr *retryTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if fastPathOK(req) {
		return tr.fast.RoundTrip(req)
	}
	return tr.base.RoundTrip(req)
}

func (tr *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	st, _ := req.Context().Value(stateKey{}).(*reqState)
	resp, err := tr.roundTrip(req)
	if st == nil {
		return resp, err
	}
	if err == nil {
		st.t.succeeded(tr.p.now().UnixNano())
		wrapBody(st, req, resp)
		return resp, nil
	}
	var de *dialError
	if !errors.As(err, &de) || req.Context().Err() != nil {
		return nil, err
	}
	now := tr.p.now()
	if !tr.p.retryElsewhere(st, now, err) {
		return nil, err
	}
	t := st.t
	req2 := req.Clone(req.Context())
	req2.URL.Host = t.addr
	resp, err = tr.roundTrip(req2)
	if err == nil {
		t.succeeded(now.UnixNano())
		wrapBody(st, req2, resp)
	} else if errors.As(err, &de) && req.Context().Err() == nil {
		tr.p.connFailed(t, now, err)
	}
	return resp, err
}

// retryElsewhere handles a failed connection to st.t (err, a *dialError):
// it counts the failure (passive ejection) and, unless some of the body was
// read already, moves the request to another target of its route, once.
// Both paths (retryTransport, fastpath.go) call it; false: answer the error.
func (p *Proxy) retryElsewhere(st *reqState, now time.Time, err error) bool {
	p.connFailed(st.t, now, err)
	if st.body != nil && st.body.read.Load() {
		return false
	}
	g, t := st.rt.pick(now.UnixNano(), "", st.t)
	if t == nil {
		return false
	}
	if ok, _ := t.acquire(p.maxConns); !ok {
		return false
	}
	st.t.m.retries.Inc()
	st.t.release()
	st.g, st.t, st.retried = g, t, true
	return true
}

func (p *Proxy) connFailed(t *target, now time.Time, err error) {
	if t.connFailed(now) {
		t.m.ejections.Inc()
		p.log.Warn("proxy ejected a target after connection failures", "route", t.route.String(),
			"group", t.group, "instance", t.instance, "addr", t.addr, "for", time.Duration(t.ejectedUntil.Load()-now.UnixNano()), "err", err)
	}
}

// upstreamError answers when the target could not be reached or broke off
// before its response headers: 502, or 504 on a timeout.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	st := r.Context().Value(stateKey{}).(*reqState)
	if st.body != nil && st.body.timedOut.Load() {
		// The client's fault, not the instance's: not a failed request.
		// (The failed read also cancelled the request's context, so the
		// transport reports a cancellation.)
		p.metrics.rejected.WithLabelValues(st.rt.key.Project, st.rt.key.Environment, st.rt.key.Service, "body_timeout").Inc()
		writeText(w, http.StatusRequestTimeout, fmt.Sprintf("runway: the request body did not arrive within %s (the proxy's --body-timeout); send the body at once.\n", p.opts.Limits.Body))
		return
	}
	if st.body != nil && st.body.malformed.Load() {
		// The client's chunked framing broke (h1guard.go): one answer, and
		// the connection closes, since where its next request starts is
		// unknown.
		p.metrics.rejected.WithLabelValues(st.rt.key.Project, st.rt.key.Environment, st.rt.key.Service, "malformed_body").Inc()
		w.Header().Set("Connection", "close")
		writeText(w, http.StatusBadRequest, "runway: the request body's chunked framing is malformed; nothing more is read from this connection.\n")
		return
	}
	if r.Context().Err() != nil {
		w.WriteHeader(499) // the client went away; nobody reads this
		return
	}
	code, msg := p.upstreamFailed(st, err)
	writeText(w, code, msg)
}

// upstreamFailed records that st's target failed to answer (err) and
// returns the answer: 502, or 504 on a timeout. Both paths call it.
func (p *Proxy) upstreamFailed(st *reqState, err error) (int, string) {
	st.err = err
	p.metrics.rejected.WithLabelValues(st.rt.key.Project, st.rt.key.Environment, st.rt.key.Service, "upstream_error").Inc()
	code := http.StatusBadGateway
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		code = http.StatusGatewayTimeout
	}
	p.log.Debug("proxy upstream error", "route", st.rt.key.String(), "instance", st.t.instance, "err", err)
	return code, fmt.Sprintf("runway: instance %s of %s failed to answer: connection error.\n", st.t.instance, describeKey(st.rt.key))
}

func newRequestID() string {
	var b [32]byte
	putRequestID(&b)
	return string(b[:])
}

// putRequestID writes a new request id into b.
func putRequestID(b *[32]byte) {
	const hexdigits = "0123456789abcdef"
	a, c := rand.Uint64(), rand.Uint64()
	for i := range 16 {
		b[i] = hexdigits[a>>(4*i)&0xf]
		b[16+i] = hexdigits[c>>(4*i)&0xf]
	}
}

// responseWriter records status and bytes. It forwards Flush and Hijack and
// unwraps for http.ResponseController.
type responseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64

	hjMu     sync.Mutex
	hijacked net.Conn // the client connection of an upgraded request
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols // ReverseProxy writes the 101 on the hijacked connection
	}
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hjMu.Lock()
		w.hijacked = c
		w.hjMu.Unlock()
	}
	return c, brw, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts request body bytes and remembers whether any was read
// (then a failed request can no longer be retried) and whether the client
// was too slow to send it. Close is a no-op: the
// handler closes the real body when it is done.
type countingBody struct {
	rc       io.ReadCloser
	n        atomic.Int64
	read     atomic.Bool
	timedOut atomic.Bool // the client did not send it within --body-timeout
	// malformed: its chunked framing broke (a *framingError, h1guard.go)
	malformed atomic.Bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	if err != nil && err != io.EOF && httplimit.IsBodyTimeout(err) {
		b.timedOut.Store(true)
	} else if err != nil && err != io.EOF && isFramingError(err) {
		b.malformed.Store(true)
	}
	return n, err
}

func (b *countingBody) Close() error { return nil }

var buffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

type bufferPool struct{}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// closeUnlessSwitched closes the client connection after any answer but 101
// to a request that asked for an upgrade: the framing guard passed the
// bytes after it unparsed (h1guard.go), so they must not be read as the
// next request.
type closeUnlessSwitched struct {
	http.ResponseWriter
	wrote bool
}

func (w *closeUnlessSwitched) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		w.ResponseWriter.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *closeUnlessSwitched) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *closeUnlessSwitched) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *closeUnlessSwitched) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// asksUpgrade is the guard's test, on a parsed request.
func asksUpgrade(r *http.Request) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	for _, v := range r.Header["Connection"] {
		if hasToken([]byte(v), "upgrade") {
			return true
		}
	}
	return false
}
