package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/supervisor"
)

// TokenFileName is the file in the data dir holding the API token.
const TokenFileName = "agent.token"

// Options configure an agent.
type Options struct {
	DataDir string
	// Listen is the loopback address of the API (127.0.0.1:7041).
	Listen string
	// PortMin and PortMax bound instance ports (default 20000-29999).
	PortMin, PortMax int
	// StopInstances stops every instance when the agent stops; by default
	// they keep running and the next agent re-adopts them.
	StopInstances bool
	Version       string
	Logger        *slog.Logger
	// Proxy, when set, is started and stopped with the agent and receives
	// its routes, targets and drains (Drainer, Routes and Targets are then
	// ignored). Metrics gathers what /metrics serves.
	Proxy   *proxy.Proxy
	Metrics prometheus.Gatherer
	// MetricsListen, when set, also serves /metrics there without a token
	// (for a scraper); on the API's address /metrics needs the token.
	MetricsListen string
	// Drainer, Routes and Targets connect the proxy; no-ops when nil.
	Drainer Drainer
	Routes  RouteSink
	Targets TargetSink
	// Supervisor tunes the supervisor (tests use a short backoff); DataDir,
	// ports, Logger and BeforeStop are set by the agent.
	Supervisor supervisor.Options
}

// Agent is a running agent: supervisor, proxy hooks and API.
type Agent struct {
	opts  Options
	log   *slog.Logger
	sup   *supervisor.Supervisor
	token string
	ln    net.Listener
	srv   *http.Server
	// metricsLn and metricsSrv serve Options.MetricsListen.
	metricsLn  net.Listener
	metricsSrv *http.Server

	routesPath string
	routesMu   sync.Mutex
	routes     map[RouteKey]Route

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the data dir (token, state, routes), re-adopts instances and
// binds the API listener; Run serves it.
func New(opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Proxy != nil {
		sink := &proxySink{p: opts.Proxy, log: opts.Logger}
		opts.Drainer, opts.Routes, opts.Targets = sink, sink, sink
	}
	if opts.Drainer == nil {
		opts.Drainer = NopDrainer{}
	}
	if opts.Routes == nil {
		opts.Routes = NopRouteSink{}
	}
	if opts.Targets == nil {
		opts.Targets = NopTargetSink{}
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:7041"
	}
	if err := checkLoopback(opts.Listen); err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		return nil, errors.New("--data-dir is required")
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s cannot be created: %w", opts.DataDir, err)
	}
	a := &Agent{opts: opts, log: opts.Logger, routesPath: filepath.Join(opts.DataDir, "routes.json")}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	var err error
	if a.token, err = loadOrCreateToken(filepath.Join(opts.DataDir, TokenFileName)); err != nil {
		return nil, err
	}
	if a.routes, err = loadRoutes(a.routesPath); err != nil {
		return nil, err
	}
	so := opts.Supervisor
	so.DataDir, so.PortMin, so.PortMax, so.Logger = opts.DataDir, opts.PortMin, opts.PortMax, opts.Logger
	so.BeforeStop = func(ctx context.Context, group string, ids []string) error {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		return opts.Drainer.Drain(dctx, group, ids)
	}
	if a.sup, err = supervisor.Open(so); err != nil {
		return nil, err
	}
	if err := a.migratePreviewRoutes(); err != nil {
		a.sup.Shutdown(context.Background(), false)
		return nil, err
	}
	a.ln, err = net.Listen("tcp", opts.Listen)
	if err != nil {
		a.sup.Shutdown(context.Background(), false)
		return nil, fmt.Errorf("listen on %s: %w (is another agent running? use --listen to pick another address)", opts.Listen, err)
	}
	a.srv = &http.Server{Handler: a.handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)}
	if opts.MetricsListen != "" {
		if a.metricsLn, err = net.Listen("tcp", opts.MetricsListen); err != nil {
			a.ln.Close()
			a.sup.Shutdown(context.Background(), false)
			return nil, fmt.Errorf("listen on --metrics-listen %s: %w", opts.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metricsHandler())
		a.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	return a, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w (want host:port such as 127.0.0.1:7041)", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: the agent API only listens on loopback (127.0.0.1 or ::1)", addr)
	}
	return nil
}

func loadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("token file %s is too short: delete it to have a new token generated", path)
		}
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return "", fmt.Errorf("token file %s is readable by others and cannot be fixed: %w", path, err)
			}
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read token file: %w", err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	tok := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create token file: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return tok, f.Close()
}

// Addr is the address the API listens on.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// URL is the base URL of the API.
func (a *Agent) URL() string { return "http://" + a.Addr() }

// Token is the API bearer token.
func (a *Agent) Token() string { return a.token }

// Supervisor is the agent's supervisor (for in-process wiring).
func (a *Agent) Supervisor() *supervisor.Supervisor { return a.sup }

// Run serves the API and feeds the proxy until ctx ends, then stops: the
// instances keep running unless Options.StopInstances.
func (a *Agent) Run(ctx context.Context) error {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.feedTargets()
	}()
	a.pushRoutes()
	if a.opts.Proxy != nil {
		if err := a.opts.Proxy.Start(ctx); err != nil {
			a.cancel()
			a.wg.Wait()
			a.sup.Shutdown(context.Background(), false)
			return fmt.Errorf("start the proxy: %w", err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- a.srv.Serve(a.ln) }()
	if a.metricsSrv != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			_ = a.metricsSrv.Serve(a.metricsLn) // ends with Shutdown below
		}()
	}
	a.log.Info("agent listening", "addr", a.Addr(), "data_dir", a.opts.DataDir, "agent_id", a.sup.AgentID())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.srv.Shutdown(sctx)
	if a.metricsSrv != nil {
		a.metricsSrv.Shutdown(sctx)
	}
	if a.opts.Proxy != nil {
		// Requests in flight finish before instances may stop.
		pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
		if perr := a.opts.Proxy.Shutdown(pctx); perr != nil {
			a.log.Warn("proxy shutdown", "err", perr)
		}
		pcancel()
	}
	a.cancel()
	a.wg.Wait()
	stopCtx, cancel2 := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel2()
	if serr := a.sup.Shutdown(stopCtx, a.opts.StopInstances); serr != nil && err == nil {
		err = serr
	}
	a.log.Info("agent stopped", "instances_stopped", a.opts.StopInstances)
	return err
}

func (a *Agent) feedTargets() {
	ch, unsub := a.sup.Subscribe()
	defer unsub()
	a.opts.Targets.SetTargets(a.sup.Snapshot())
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-ch:
			a.opts.Targets.SetTargets(a.sup.Snapshot())
		}
	}
}

func (a *Agent) pushRoutes() {
	a.routesMu.Lock()
	rs := sortedRoutes(a.routes)
	a.routesMu.Unlock()
	if err := a.opts.Routes.SetRoutes(a.ctx, rs); err != nil {
		a.log.Error("push routes to the proxy", "err", err)
	}
}
