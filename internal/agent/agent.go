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
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/dirlock"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/httplimit"
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
	// APIListener, when set, is served instead of binding Listen (a socket
	// passed by `runway up` or systemd); it must be on loopback too.
	APIListener net.Listener
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
	// HTTP bounds the API's clients; the zero value is httplimit.Default.
	HTTP httplimit.Limits
}

// Agent is a running agent: supervisor, proxy hooks and API.
type Agent struct {
	opts  Options
	log   *slog.Logger
	sup   *supervisor.Supervisor
	token string
	ln    net.Listener
	srv   *http.Server
	lock  *dirlock.Lock
	// metricsLn and metricsSrv serve Options.MetricsListen.
	metricsLn  net.Listener
	metricsSrv *http.Server

	stopInstances atomic.Bool

	routesPath string
	routesMu   sync.Mutex
	routes     map[agentapi.RouteKey]agentapi.Route
	gens       *generations

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
	// Private whatever existed: logs and tokens must not be readable by
	// other users because the directory was made earlier with mode 0755.
	if err := fsutil.Private(opts.DataDir); err != nil {
		return nil, fmt.Errorf("data dir %s cannot be created or made private: %w", opts.DataDir, err)
	}
	// Two agents on one data dir would both adopt, restart and stop the
	// same instances.
	lock, err := dirlock.Acquire(opts.DataDir, "runway agent")
	if err != nil {
		return nil, err
	}
	a, err := open(opts)
	if err != nil {
		lock.Release()
		return nil, err
	}
	a.lock = lock
	return a, nil
}

func open(opts Options) (*Agent, error) {
	a := &Agent{opts: opts, log: opts.Logger, routesPath: filepath.Join(opts.DataDir, "routes.json")}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	var err error
	if a.token, err = loadOrCreateToken(filepath.Join(opts.DataDir, TokenFileName)); err != nil {
		return nil, err
	}
	if a.routes, err = loadRoutes(a.routesPath); err != nil {
		return nil, err
	}
	if a.gens, err = loadGenerations(filepath.Join(opts.DataDir, "generations.json")); err != nil {
		return nil, err
	}
	so := opts.Supervisor
	so.DataDir, so.PortMin, so.PortMax, so.Logger = opts.DataDir, opts.PortMin, opts.PortMax, opts.Logger
	so.BeforeStop = func(ctx context.Context, group string, ids []string, drain time.Duration) error {
		// The drainer bounds itself (drain, or its default); this only
		// guards against one that does not.
		dctx, cancel := context.WithTimeout(ctx, MaxDrainTimeout+time.Minute)
		defer cancel()
		return opts.Drainer.Drain(dctx, group, ids, drain)
	}
	if a.sup, err = supervisor.Open(so); err != nil {
		return nil, err
	}
	if err := a.migratePreviewRoutes(); err != nil {
		a.sup.Shutdown(context.Background(), false)
		return nil, err
	}
	if a.ln = opts.APIListener; a.ln != nil {
		if err := checkLoopback(a.ln.Addr().String()); err != nil {
			a.sup.Shutdown(context.Background(), false)
			return nil, fmt.Errorf("the API socket passed to the agent: %w", err)
		}
	} else if a.ln, err = net.Listen("tcp", opts.Listen); err != nil {
		a.sup.Shutdown(context.Background(), false)
		return nil, fmt.Errorf("listen on %s: %w (is another agent running? use --listen to pick another address)", opts.Listen, err)
	}
	if opts.HTTP == (httplimit.Limits{}) {
		opts.HTTP = httplimit.Default
	}
	a.srv = opts.HTTP.Server(a.handler())
	a.srv.ErrorLog = slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)
	if opts.MetricsListen != "" {
		if a.metricsLn, err = net.Listen("tcp", opts.MetricsListen); err != nil {
			a.ln.Close()
			a.sup.Shutdown(context.Background(), false)
			return nil, fmt.Errorf("listen on --metrics-listen %s: %w", opts.MetricsListen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metricsHandler())
		a.metricsSrv = opts.HTTP.Server(mux)
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
	tok, err := fsutil.ReadToken(path)
	if err == nil {
		if len(tok) < 32 {
			return "", fmt.Errorf("token file %s is too short: delete it to have a new token generated", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read token file: %w (delete it to have a new token generated)", err)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	tok = hex.EncodeToString(raw)
	if err := fsutil.WriteToken(path, tok); err != nil {
		return "", fmt.Errorf("create token file: %w", err)
	}
	return tok, nil
}

// Addr is the address the API listens on.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// URL is the base URL of the API.
func (a *Agent) URL() string { return "http://" + a.Addr() }

// Token is the API bearer token.
func (a *Agent) Token() string { return a.token }

// Supervisor is the agent's supervisor (for in-process wiring).
func (a *Agent) Supervisor() *supervisor.Supervisor { return a.sup }

// StopInstancesOnExit makes Run stop every instance when it ends, as
// Options.StopInstances does (runway up asks for it on Ctrl-C only).
func (a *Agent) StopInstancesOnExit() { a.stopInstances.Store(true) }

// Run serves the API and feeds the proxy until ctx ends, then stops: the
// instances keep running unless Options.StopInstances.
func (a *Agent) Run(ctx context.Context) error {
	// The proxy gets the restored routes and the adopted instances (with
	// their last known health) before it accepts its first connection: a
	// restarted agent answers at once, neither 404 nor 503.
	a.opts.Targets.SetTargets(a.sup.Snapshot())
	a.pushRoutes()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.feedTargets()
	}()
	if a.opts.Proxy != nil {
		if err := a.opts.Proxy.Start(ctx); err != nil {
			a.cancel()
			a.wg.Wait()
			a.sup.Shutdown(context.Background(), false)
			a.lock.Release()
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
	stop := a.opts.StopInstances || a.stopInstances.Load()
	if serr := a.sup.Shutdown(stopCtx, stop); serr != nil && err == nil {
		err = serr
	}
	a.log.Info("agent stopped", "instances_stopped", stop)
	a.lock.Release()
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
