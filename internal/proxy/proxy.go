package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/httplimit"
	"github.com/runwayhq/runway/internal/localca"
)

// Default listen addresses (the default drain is agentapi.DefaultDrainTimeout).
const (
	DefaultHTTPAddr  = "127.0.0.1:8080"
	DefaultHTTPSAddr = "127.0.0.1:8443"
	// DefaultResponseHeaderTimeout bounds the wait for an instance's
	// response headers (504 after it); a stream or a WebSocket is not
	// bound once its headers came.
	DefaultResponseHeaderTimeout = time.Minute
	// DefaultMaxConnsPerTarget caps the requests (hence connections) in
	// flight to one instance; over it, a request goes to another instance of
	// the route, else 503.
	DefaultMaxConnsPerTarget = 1024
	// Off disables a listener when given as its address.
	Off = "off"
)

// Options configure a Proxy. The zero value is usable: default addresses,
// no HTTPS (no CADir), no access log, metrics on a private registry.
type Options struct {
	HTTPAddr  string // default DefaultHTTPAddr; Off disables it
	HTTPSAddr string // default DefaultHTTPSAddr; Off disables it; needs CADir
	// HTTPListener and HTTPSListener, when set, are served instead of
	// binding HTTPAddr and HTTPSAddr: sockets passed by `runway up` or by
	// systemd socket activation, which outlive this process. Shutdown
	// closes them (the holder's copies stay open).
	HTTPListener, HTTPSListener net.Listener
	// CADir holds the local certificate authority (ca.crt, ca.key, mode
	// 0600), created on first use. Empty disables HTTPS.
	CADir string
	// DrainTimeout bounds how long Drain waits for in-flight requests.
	DrainTimeout time.Duration
	// AccessLog receives one JSON object per request and line; nil is off.
	AccessLog io.Writer
	// Registerer receives the proxy's metrics; nil keeps them private.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock for passive health, statistics windows and
	// certificate lifetimes; nil is time.Now.
	Now func() time.Time
	// Limits bound what a client may hold: the time to send headers and a
	// request body, and idle keep-alive connections. The zero value is
	// httplimit.Default; a zero field of a set value is no limit.
	Limits httplimit.Limits
	// ResponseHeaderTimeout bounds the wait for a target's response
	// headers: 0 is DefaultResponseHeaderTimeout, negative no limit.
	ResponseHeaderTimeout time.Duration
	// MaxConnsPerTarget caps requests in flight per target: 0 is
	// DefaultMaxConnsPerTarget, negative no cap.
	MaxConnsPerTarget int
	// FastPath chooses whether plain HTTP/1.1 GET, HEAD and OPTIONS requests
	// without a body are served on the proxy's own connection loop
	// (fastpath.go), which hands a connection to net/http at its first
	// request of any other kind. The zero value is on, unless the
	// environment says RUNWAY_PROXY_FAST_PATH=0 (=1: on), which is how the
	// test suites of the packages that embed the proxy run in either mode.
	FastPath FastPathMode
}

// FastPathMode is Options.FastPath.
type FastPathMode uint8

// The modes of the HTTP/1.1 fast path.
const (
	FastPathDefault FastPathMode = iota // on, unless RUNWAY_PROXY_FAST_PATH=0
	FastPathOn
	FastPathOff
)

// fastPathMode maps a test's or a caller's bool to a mode.
func fastPathMode(on bool) FastPathMode {
	if on {
		return FastPathOn
	}
	return FastPathOff
}

// Proxy is the load balancer. Its methods are safe for concurrent use.
type Proxy struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	table   atomic.Pointer[table]
	reg     *registry // its lock serialises Update; requests never take it
	metrics *metrics
	ca      *localca.CA
	rp      *httputil.ReverseProxy
	tr      *http.Transport
	pool    *h1Pool
	access  *accessLog
	// maxConns is Options.MaxConnsPerTarget (0: no cap).
	maxConns int64

	stopper stopper

	mu      sync.Mutex
	servers []*http.Server
	fast    []*fastListener
	// fastServed counts the requests the fast path served (tests).
	fastServed atomic.Int64
	addrs      map[string]net.Addr
	wg         sync.WaitGroup
	stop       context.CancelFunc
}

// New validates the options, loads or creates the CA when CADir is set, and
// returns a Proxy with an empty table. It listens only once Start is called.
func New(opts Options) (*Proxy, error) {
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = DefaultHTTPAddr
	}
	if opts.HTTPSAddr == "" {
		opts.HTTPSAddr = DefaultHTTPSAddr
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = agentapi.DefaultDrainTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Limits == (httplimit.Limits{}) {
		opts.Limits = httplimit.Default
	}
	if opts.ResponseHeaderTimeout == 0 {
		opts.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if opts.MaxConnsPerTarget == 0 {
		opts.MaxConnsPerTarget = DefaultMaxConnsPerTarget
	}
	if opts.ResponseHeaderTimeout < 0 {
		opts.ResponseHeaderTimeout = 0
	}
	if opts.MaxConnsPerTarget < 0 {
		opts.MaxConnsPerTarget = 0
	}
	if opts.FastPath == FastPathDefault {
		opts.FastPath = FastPathOn
		if os.Getenv("RUNWAY_PROXY_FAST_PATH") == "0" {
			opts.FastPath = FastPathOff
		}
	}
	p := &Proxy{opts: opts, log: opts.Logger, now: opts.Now, addrs: map[string]net.Addr{}, maxConns: int64(opts.MaxConnsPerTarget)}
	m, err := newMetrics(opts.Registerer, p)
	if err != nil {
		return nil, fmt.Errorf("register proxy metrics: %w", err)
	}
	p.metrics = m
	p.reg = newRegistry(m)
	p.table.Store(&table{hosts: map[string][]*route{}})
	if opts.CADir != "" {
		if p.ca, err = localca.LoadOrCreate(opts.CADir, opts.Now); err != nil {
			return nil, err
		}
	}
	if opts.AccessLog != nil {
		p.access = &accessLog{w: opts.AccessLog}
	}
	p.tr, p.pool, p.rp = p.newForwarder()
	return p, nil
}

// CACertPath is the path of the local CA's certificate (what users add to
// their trust store), or "" when HTTPS is disabled.
func (p *Proxy) CACertPath() string {
	if p.ca == nil {
		return ""
	}
	return p.ca.CertPath()
}

// Handler serves requests as the listeners do (for tests and embedding).
func (p *Proxy) Handler() http.Handler { return p }

// Start binds the listeners and serves them in the background until ctx is
// done or Shutdown/Close is called.
func (p *Proxy) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		return errors.New("start proxy: already started")
	}
	errLog := log.New(slogWriter{p.log}, "", 0)
	type listener struct {
		name string
		ln   net.Listener
		srv  *http.Server
	}
	var ls []listener
	closeAll := func() {
		for _, l := range ls {
			l.ln.Close()
		}
	}
	newServer := func() *http.Server {
		srv := p.opts.Limits.Server(p)
		srv.ErrorLog = errLog
		srv.ConnState = p.stopper.connState
		return srv
	}
	if p.opts.HTTPSListener != nil && p.ca == nil {
		return errors.New("start proxy: an HTTPS listener was passed but HTTPS is off (no CA directory)")
	}
	if ln := p.opts.HTTPListener; ln != nil {
		ls = append(ls, listener{"http", ln, newServer()})
	} else if p.opts.HTTPAddr != Off {
		ln, err := net.Listen("tcp", p.opts.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen HTTP on %s: %w (set another address or stop what uses it)", p.opts.HTTPAddr, err)
		}
		ls = append(ls, listener{"http", ln, newServer()})
	}
	if (p.opts.HTTPSAddr != Off || p.opts.HTTPSListener != nil) && p.ca != nil {
		ln := p.opts.HTTPSListener
		if ln == nil {
			var err error
			if ln, err = net.Listen("tcp", p.opts.HTTPSAddr); err != nil {
				closeAll()
				return fmt.Errorf("listen HTTPS on %s: %w (set another address or stop what uses it)", p.opts.HTTPSAddr, err)
			}
		}
		// tlslisten.go: the handshake is ours, then HTTP/1.1 goes to one
		// server through the framing guard, h2 to another through the shim.
		cfg := &tls.Config{GetCertificate: p.ca.GetCertificate, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12,
			// TLS 1.2 with AEAD suites only: what RFC 9113 §9.2.2 requires of
			// h2, which net/http checks only when it handshakes itself.
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			}}
		tl := newTLSListener(ln, cfg, p.opts.Limits.Header, p.log)
		h1 := newServer()
		h1.Protocols = new(http.Protocols)
		h1.Protocols.SetHTTP1(true)
		h2 := newServer()
		h2.Protocols = new(http.Protocols)
		h2.Protocols.SetUnencryptedHTTP2(true)
		h2.HTTP2 = &http.HTTP2Config{MaxReadFrameSize: h2MaxFrame}
		h2.ConnContext = h2ConnContext
		ls = append(ls, listener{"https", &tl.h1, h1}, listener{"https-h2", &tl.h2, h2})
	}
	ctx, p.stop = context.WithCancel(ctx)
	for _, l := range ls {
		if l.name == "http" {
			l.ln = guardListener{l.ln} // h1guard.go
		}
		if p.opts.FastPath == FastPathOn && l.name != "https-h2" {
			scheme := "http"
			if l.name == "https" {
				scheme = "https"
			}
			fl := p.newFastListener(l.ln, scheme)
			p.fast = append(p.fast, fl)
			l.ln = fl
		}
		p.servers = append(p.servers, l.srv)
		p.addrs[l.name] = l.ln.Addr()
		p.stopper.listen(l.ln)
		p.wg.Add(1)
		p.stopper.serving.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.stopper.serving.Done()
			err := l.srv.Serve(l.ln)
			// net.ErrClosed: the stopper closed the listener (graceful.go).
			if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				p.log.Error("proxy listener stopped", "listener", l.name, "err", err)
			}
		}()
		if l.name != "https-h2" {
			p.log.Info("proxy listening", "listener", l.name, "addr", l.ln.Addr().String())
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), p.opts.DrainTimeout)
		defer cancel()
		p.shutdownServers(sctx)
	}()
	return nil
}

// HTTPAddr and HTTPSAddr return the bound addresses (useful with port 0),
// or nil when that listener is not running.
func (p *Proxy) HTTPAddr() net.Addr { return p.addr("http") }

// HTTPSAddr is HTTPAddr for the TLS listener.
func (p *Proxy) HTTPSAddr() net.Addr { return p.addr("https") }

func (p *Proxy) addr(name string) net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addrs[name]
}

func (p *Proxy) shutdownServers(ctx context.Context) {
	p.stopper.stopAccepting(ctx)
	p.mu.Lock()
	srvs, fast := p.servers, p.fast
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(ctx); err != nil {
				s.Close()
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		for _, fl := range fast {
			fl.kill()
		}
	}
}

// Shutdown stops accepting connections and waits for requests in flight
// until ctx is done, then closes what is left.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	stop := p.stop
	p.mu.Unlock()
	p.shutdownServers(ctx)
	if stop != nil {
		stop()
	}
	p.wg.Wait()
	p.tr.CloseIdleConnections()
	p.pool.closeIdle()
	return ctx.Err()
}

// Close stops the proxy at once, cutting requests in flight.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.Shutdown(ctx)
	return nil
}

// Update validates cfg and atomically replaces the routing table. Requests
// that start after Update returns see only the new table; targets left out
// get no new request and can be drained with Drain. On error the table is
// unchanged.
func (p *Proxy) Update(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("update proxy routes: %w", err)
	}
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	p.reg.swap(&cfg, p.now(), func(t *table) { p.table.Store(t) })
	addrs := map[string]bool{}
	for _, ts := range cfg.Groups {
		for _, t := range ts {
			addrs[t.Addr] = true
		}
	}
	p.pool.retain(func(addr string) bool { return addrs[addr] })
	return nil
}

// ErrDrainTimeout is returned by Drain when requests were still in flight
// after the drain timeout.
var ErrDrainTimeout = errors.New("drain timeout")

// Drain waits until the given targets of a group (all of its targets when
// instances is empty) are out of the routing table and have no request in
// flight — long requests, streamed responses and open WebSockets included.
// It waits at most timeout (Options.DrainTimeout when timeout <= 0; each
// call may ask for its own, as the release's deploy.drain_timeout does).
// Then WebSockets and streamed responses still open are ended properly (a
// close frame 1001 "going away", the end of the stream; see goaway.go) and
// Drain returns ErrDrainTimeout (wrapped, with the counts) once they are
// gone or a short grace passed. It returns nil when everything finished in
// time, or ctx's error. Targets the proxy does not know are already
// drained. Call Update without them first.
func (p *Proxy) Drain(ctx context.Context, group string, instances []string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = p.opts.DrainTimeout
	}
	want := map[string]bool{}
	for _, i := range instances {
		want[i] = true
	}
	var ts []*target
	p.reg.mu.Lock()
	p.reg.prune()
	for _, t := range p.reg.targets {
		if t.group == group && (len(want) == 0 || want[t.instance]) {
			ts = append(ts, t)
		}
	}
	for t := range p.reg.retired {
		if t.group == group && (len(want) == 0 || want[t.instance]) {
			ts = append(ts, t)
		}
	}
	p.reg.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for i, t := range ts {
		select {
		case <-t.idle:
		case <-timer.C:
			return p.goAway(ctx, group, ts[i:], timeout)
		case <-ctx.Done():
			return fmt.Errorf("drain group %s: %w", group, ctx.Err())
		}
	}
	return nil
}

// goAway ends the WebSockets and streams still open on ts after a drain
// timed out, and waits a little for them to be gone.
func (p *Proxy) goAway(ctx context.Context, group string, ts []*target, timeout time.Duration) error {
	ended := 0
	for _, t := range ts {
		ended += t.goAway()
	}
	if ended > 0 {
		grace := time.NewTimer(3 * goAwayGrace)
		defer grace.Stop()
	wait:
		for _, t := range ts {
			select {
			case <-t.idle:
			case <-grace.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
	}
	var busy int64
	for _, t := range ts {
		busy += t.inflight.Load()
	}
	p.log.Info("proxy drain timed out", "group", group, "after", timeout, "websockets_and_streams_ended", ended, "still_in_flight", busy)
	return fmt.Errorf("drain group %s: %w after %s: %d WebSockets and streams ended (close 1001 going away), %d requests still in flight", group, ErrDrainTimeout, timeout, ended, busy)
}

// Stats returns rolling statistics per group of a route over the last
// window (at most MaxStatsWindow), for canary analysis.
func (p *Proxy) Stats(k agentapi.RouteKey, window time.Duration) map[string]agentapi.WindowStats {
	now := p.now()
	out := map[string]agentapi.WindowStats{}
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	for sk, s := range p.reg.stats {
		if sk.route == k {
			out[sk.group] = s.window(now, window)
		}
	}
	return out
}

// Counters returns the route's counters (zero for an unknown route).
func (p *Proxy) Counters(k agentapi.RouteKey) agentapi.Counters {
	p.reg.mu.Lock()
	s := p.reg.services[k]
	p.reg.mu.Unlock()
	if s == nil {
		return agentapi.Counters{}
	}
	return agentapi.Counters{Served: s.served.Load(), Failed: s.failed.Load()}
}

// Targets lists every target the proxy tracks: those in the table and those
// drained out of it but still busy.
func (p *Proxy) Targets() []TargetStatus {
	now := p.now()
	var out []TargetStatus
	for _, t := range p.reg.allTargets() {
		out = append(out, t.status(now))
	}
	return out
}

func (p *Proxy) serviceFor(k agentapi.RouteKey) *service {
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	return p.reg.service(k)
}

// slogWriter adapts http.Server's error log (TLS handshake noise, mostly).
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.l.Debug("proxy server", "msg", string(b))
	return len(b), nil
}
