package agent

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/proxy"
)

// proxySink connects the agent to its embedded proxy: it merges the routes
// (from the agent's routes file) with the healthy targets (from the
// supervisor) into one proxy.Config, and forwards drains.
type proxySink struct {
	p   *proxy.Proxy
	log *slog.Logger

	mu      sync.Mutex
	routes  []agentapi.Route
	targets []agentapi.GroupTargets
}

// SetRoutes implements RouteSink.
func (s *proxySink) SetRoutes(_ context.Context, routes []agentapi.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.routes
	s.routes = routes
	if err := s.pushLocked(); err != nil {
		s.routes = prev // the proxy kept its table: keep the routes it serves
		return err
	}
	return nil
}

// SetTargets implements TargetSink.
func (s *proxySink) SetTargets(groups []agentapi.GroupTargets) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = groups
	// The routes were loaded by the proxy before the agent stored them, and
	// the supervisor's targets are host:port: a failure here is a bug, and
	// the previous table keeps serving.
	if err := s.pushLocked(); err != nil {
		s.log.Error("push targets to the proxy", "err", err)
	}
}

// Drain implements Drainer.
func (s *proxySink) Drain(ctx context.Context, group string, ids []string, timeout time.Duration) error {
	return s.p.Drain(ctx, group, ids, timeout)
}

func (s *proxySink) pushLocked() error {
	cfg := proxy.Config{Groups: map[string][]proxy.Target{}, Routes: proxyRoutes(s.routes)}
	for _, g := range s.targets {
		ts := make([]proxy.Target, 0, len(g.Targets))
		for _, t := range g.Targets {
			ts = append(ts, proxy.Target{Instance: t.InstanceID, Addr: t.Addr})
		}
		cfg.Groups[g.Group] = ts
	}
	for _, r := range cfg.Routes {
		for _, b := range r.Backends {
			if _, ok := cfg.Groups[b.Group]; !ok {
				cfg.Groups[b.Group] = []proxy.Target{}
			}
		}
	}
	return s.p.Update(cfg)
}

// proxyHandlers adds the proxy's endpoints to the agent API.
func (a *Agent) proxyHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/stats/{environment}/{service}", a.stats)
	mux.HandleFunc("GET /v1/counters/{environment}/{service}", a.counters)
	mux.HandleFunc("PUT /v1/maintenance/{environment}/{service}", a.setMaintenance)
	mux.HandleFunc("DELETE /v1/maintenance/{environment}/{service}", a.setMaintenance)
	mux.HandleFunc("POST /v1/pause/{environment}/{service}", a.pause)
	mux.HandleFunc("POST /v1/resume/{environment}/{service}", a.pause)
	mux.HandleFunc("GET /v1/ca", a.caCert)
	mux.Handle("GET /metrics", a.metricsHandler())
}

// metricsHandler serves Options.Metrics in the Prometheus format.
func (a *Agent) metricsHandler() http.Handler {
	reg := a.opts.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func (a *Agent) needProxy(w http.ResponseWriter) bool {
	if a.opts.Proxy == nil {
		writeProblem(w, http.StatusNotImplemented, "no-proxy", "", "this agent runs without a proxy")
		return false
	}
	return true
}

func (a *Agent) stats(w http.ResponseWriter, r *http.Request) {
	if !a.needProxy(w) {
		return
	}
	key, err := routeKeyOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	window := 30 * time.Second
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < agentapi.MinStatsWindow || d > agentapi.MaxStatsWindow {
			writeProblem(w, http.StatusBadRequest, "invalid-request", "window", "window %q: want a duration from %s to %s, such as 30s", s, agentapi.MinStatsWindow, agentapi.MaxStatsWindow)
			return
		}
		window = d
	}
	out := map[string]agentapi.WindowStats{}
	for g, s := range a.opts.Proxy.Stats(key, window) {
		out[g] = s
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) counters(w http.ResponseWriter, r *http.Request) {
	if !a.needProxy(w) {
		return
	}
	key, err := routeKeyOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.opts.Proxy.Counters(key))
}

// setMaintenance turns a route's maintenance page on (PUT {"message": ...}) or off (DELETE).
func (a *Agent) setMaintenance(w http.ResponseWriter, r *http.Request) {
	key, err := routeKeyOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	msg := ""
	if r.Method == http.MethodPut {
		b, ok := readBody(w, r)
		if !ok {
			return
		}
		var body struct {
			Message string `json:"message"`
		}
		if err := decodeStrict(b, &body); err != nil {
			writeError(w, err)
			return
		}
		msg = body.Message
		if msg == "" {
			msg = "This service is down for maintenance. Please try again later."
		}
		if len(msg) > agentapi.MaxMaintenanceLen {
			writeProblem(w, http.StatusBadRequest, "invalid-request", "message", "at most %d bytes", agentapi.MaxMaintenanceLen)
			return
		}
	}
	gen, ok := a.admit(w, r, key.Environment, key.Service)
	if !ok {
		return
	}
	a.routesMu.Lock()
	defer a.routesMu.Unlock()
	rt, ok := a.routes[key]
	if !ok {
		writeProblem(w, http.StatusNotFound, "not-found", "", "no route for %s", key)
		return
	}
	rt.Maintenance = msg
	if err := a.commitRoute(key, &rt); err != nil {
		writeError(w, err)
		return
	}
	generated(w, gen)
	writeJSON(w, http.StatusOK, rt)
}

// pause holds (POST .../pause?max_hold=30s) or releases (POST .../resume) new requests of a route.
func (a *Agent) pause(w http.ResponseWriter, r *http.Request) {
	if !a.needProxy(w) {
		return
	}
	key, err := routeKeyOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	gen, ok := a.admit(w, r, key.Environment, key.Service)
	if !ok {
		return
	}
	state := map[string]any{"project": key.Project, "environment": key.Environment, "service": key.Service, "preview": key.Preview}
	if strings.HasPrefix(r.URL.Path, "/v1/resume/") {
		a.opts.Proxy.Resume(key)
		state["paused"] = false
		generated(w, gen)
		writeJSON(w, http.StatusOK, state)
		return
	}
	hold := 30 * time.Second
	if s := r.URL.Query().Get("max_hold"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d > 10*time.Minute {
			writeProblem(w, http.StatusBadRequest, "invalid-request", "max_hold", "max_hold %q: want a duration up to 10m, such as 30s", s)
			return
		}
		hold = d
	}
	a.opts.Proxy.Pause(key, hold)
	state["paused"], state["max_hold_seconds"] = true, strconv.Itoa(int(hold.Seconds()))
	generated(w, gen)
	writeJSON(w, http.StatusOK, state)
}

func (a *Agent) caCert(w http.ResponseWriter, r *http.Request) {
	if !a.needProxy(w) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": a.opts.Proxy.CACertPath()})
}
