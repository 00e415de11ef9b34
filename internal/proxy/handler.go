package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/runwayhq/runway/internal/naming"
)

// reqState travels with a forwarded request (in its context) so that the
// transport can retry on another target of the same route and the handler
// accounts the request to the target that finally served it. Only the
// request's goroutine touches it.
type reqState struct {
	rt        *route
	g         *group
	t         *target
	body      *countingBody
	rw        *responseWriter
	requestID string
	retried   bool
	err       error // the proxy failed the request (502/504)
}

type stateKey struct{}

// ServeHTTP routes one request: host and path lookup, maintenance, pause,
// target choice, then forwarding and accounting.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil && r.ProtoMajor == 2 {
		// h2 over TLS comes through the shim as a clear connection
		// (tlslisten.go); its TLS state is in the context.
		r.TLS, _ = r.Context().Value(tlsStateKey{}).(*tls.ConnectionState)
	}
	if asksUpgrade(r) {
		w = &closeUnlessSwitched{ResponseWriter: w}
	}
	host, rt := p.lookup(r.Host, r.URL.Path)
	if rt == nil {
		p.metrics.rejected.WithLabelValues("", "", "", "unknown_host").Inc()
		p.logRejected(r, http.StatusNotFound, nil)
		writeText(w, http.StatusNotFound, fmt.Sprintf("runway: no service is routed for host %q. Check the host name; `runway status` lists the routes.\n", r.Host))
		return
	}
	if rt.svc.pause.Load() != nil {
		if !rt.svc.waitPaused(r.Context()) {
			return // the client gave up while the service was paused
		}
		if rt = p.table.Load().lookup(host, r.URL.Path); rt == nil { // the table may have changed meanwhile
			writeText(w, http.StatusNotFound, fmt.Sprintf("runway: no service is routed for host %q.\n", r.Host))
			return
		}
	}
	if rt.maintenance != "" {
		p.reject(w, r, rt, "maintenance", http.StatusServiceUnavailable, rt.maintenance+"\n")
		return
	}
	start := p.now()
	sticky := ""
	if rt.sticky {
		if c, err := r.Cookie(rt.cookie); err == nil {
			sticky = c.Value
		}
	}
	// Everything from here is shared with the fast path (fastpath.go),
	// which hands a request with a rejection coming to this handler.
	g, t, busy := p.pickAcquire(&rt, host, r.URL.Path, sticky, start.UnixNano())
	if busy {
		rt.svc.failed.Add(1)
		w.Header().Set("Retry-After", "1")
		p.reject(w, r, rt, "busy", http.StatusServiceUnavailable,
			fmt.Sprintf("runway: every instance of %s has %d requests in flight, the most the proxy sends one (--max-conns-per-target); retry shortly.\n", describeKey(rt.key), p.maxConns))
		return
	}
	if t == nil {
		rt.svc.failed.Add(1)
		w.Header().Set("Retry-After", "1")
		p.reject(w, r, rt, "no_target", http.StatusServiceUnavailable,
			fmt.Sprintf("runway: %s has no healthy instance right now; retry shortly.\n", describeKey(rt.key)))
		return
	}
	if c := stickyCookie(rt, sticky, g); c != "" {
		w.Header().Add("Set-Cookie", c)
	}
	p.forward(w, r, &reqState{rt: rt, g: g, t: t}, start)
}

// lookup normalises the Host and finds the route of a request (nil: none).
func (p *Proxy) lookup(rawHost, path string) (host string, rt *route) {
	host, ok := naming.NormalizeHost(rawHost)
	if !ok {
		return host, nil
	}
	return host, p.table.Load().lookup(host, path)
}

// stickyCookie is the Set-Cookie value that pins the client to g, or ""
// when the route is not sticky or the client's cookie already names g.
func stickyCookie(rt *route, sticky string, g *group) string {
	if !rt.sticky || sticky == g.id {
		return ""
	}
	return (&http.Cookie{Name: rt.cookie, Value: g.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}).String()
}

// pickAcquire picks a target and counts the request on it. If the target was
// retired between reading the table and counting (a concurrent Update), it
// picks again from the new table, so no request lands on a drained target. A
// target at its connection cap is avoided once; busy reports that the second
// choice was full too.
func (p *Proxy) pickAcquire(rt **route, host, path, sticky string, now int64) (g *group, t *target, busy bool) {
	var except *target
	for range 4 {
		g, t := (*rt).pick(now, sticky, except)
		if t == nil {
			return nil, nil, except != nil
		}
		ok, full := t.acquire(p.maxConns)
		if ok {
			return g, t, false
		}
		if full {
			if except != nil {
				return nil, nil, true
			}
			except = t
			continue
		}
		next := p.table.Load().lookup(host, path)
		if next == nil {
			return nil, nil, false // the route went away: answer from the one the request had
		}
		*rt = next
	}
	return nil, nil, false
}

func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, st *reqState, start time.Time) {
	rw := &responseWriter{ResponseWriter: w}
	st.rw = rw
	r2 := r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		st.body = &countingBody{rc: r.Body}
		r2.Body = st.body
	}
	completed := false
	defer func() {
		if st.body != nil {
			r.Body.Close() // the transport may still hold st.body; make its reads fail from now on
		}
		st.t.release()
		if !completed && st.err == nil {
			st.err = errAborted // the copy of the response broke off (ReverseProxy panics with ErrAbortHandler)
		}
		p.account(requestInfo(r), rw.status, rw.bytes, st, start)
	}()
	p.rp.ServeHTTP(rw, r2)
	completed = true
}

var errAborted = fmt.Errorf("response aborted")

// reqInfo is what accounting and the access log need of a request; both
// the net/http path and the fast path (fastpath.go) fill one.
type reqInfo struct {
	remote, method, host, path, proto string
}

func requestInfo(r *http.Request) reqInfo {
	return reqInfo{remote: r.RemoteAddr, method: r.Method, host: r.Host, path: r.URL.Path, proto: r.Proto}
}

// account records a finished forwarded request: metrics, the group's window
// statistics, the access log, the service's counters. status 0 is 200;
// bytes counts the response body.
func (p *Proxy) account(r reqInfo, status int, bytes int64, st *reqState, start time.Time) {
	now := p.now()
	d := now.Sub(start)
	if status == 0 {
		status = http.StatusOK
	}
	failed := st.err != nil
	m := st.t.m
	m.byClass[statusClass(status)].Inc()
	m.duration.Observe(d.Seconds())
	if bytes > 0 {
		m.respBytes.Add(float64(bytes))
	}
	var in int64
	if st.body != nil {
		in = st.body.n.Load()
		m.reqBytes.Add(float64(in))
	}
	st.g.stats.record(now, d, failed || status >= 500)
	if p.access != nil {
		e := &accessEntry{Time: start, RequestID: st.requestID, Remote: r.remote, Method: r.method, Host: r.host,
			Path: r.path, Proto: r.proto, Status: status, DurationMS: float64(d.Microseconds()) / 1000,
			BytesIn: in, BytesOut: bytes, Project: st.rt.key.Project, Environment: st.rt.key.Environment, Service: st.rt.key.Service,
			Preview: st.rt.key.Preview, Group: st.g.id,
			Target: st.t.instance, Retried: st.retried}
		if st.err != nil {
			e.Error = st.err.Error()
		}
		p.access.write(e)
	}
	// Counted last: once Served moved, everything about the request is recorded.
	if failed {
		st.rt.svc.failed.Add(1)
	}
	st.rt.svc.served.Add(1)
}

// reject answers a request of a known route without forwarding it.
func (p *Proxy) reject(w http.ResponseWriter, r *http.Request, rt *route, reason string, code int, msg string) {
	rt.svc.served.Add(1)
	p.metrics.rejected.WithLabelValues(rt.key.Project, rt.key.Environment, rt.key.Service, reason).Inc()
	p.logRejected(r, code, rt)
	writeText(w, code, msg)
}

func (p *Proxy) logRejected(r *http.Request, code int, rt *route) {
	if p.access == nil {
		return
	}
	e := &accessEntry{Time: p.now(), Remote: r.RemoteAddr, Method: r.Method, Host: r.Host, Path: r.URL.Path,
		Proto: r.Proto, Status: code, RequestID: r.Header.Get("X-Request-Id")}
	if rt != nil {
		e.Project, e.Environment, e.Service, e.Preview = rt.key.Project, rt.key.Environment, rt.key.Service, rt.key.Preview
	}
	p.access.write(e)
}

func writeText(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}
