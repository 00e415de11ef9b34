package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/supervisor"

	"github.com/runwayhq/runway/internal/naming"
)

// proxySink connects the agent to its embedded proxy: it merges the routes
// (from the agent's routes file) with the healthy targets (from the
// supervisor) into one proxy.Config, and forwards drains.
type proxySink struct {
	p *proxy.Proxy

	mu      sync.Mutex
	routes  []Route
	targets []supervisor.GroupTargets
}

// SetRoutes implements RouteSink.
func (s *proxySink) SetRoutes(_ context.Context, routes []Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routes = routes
	return s.pushLocked()
}

// SetTargets implements TargetSink.
func (s *proxySink) SetTargets(groups []supervisor.GroupTargets) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = groups
	// Routes were validated when stored; a failure here would be a bug, and
	// the previous table keeps serving.
	_ = s.pushLocked()
}

// Drain implements Drainer.
func (s *proxySink) Drain(ctx context.Context, group string, ids []string, timeout time.Duration) error {
	return s.p.Drain(ctx, group, ids, timeout)
}

func (s *proxySink) pushLocked() error {
	cfg := proxy.Config{Groups: map[string][]proxy.Target{}}
	for _, g := range s.targets {
		ts := make([]proxy.Target, 0, len(g.Targets))
		for _, t := range g.Targets {
			ts = append(ts, proxy.Target{Instance: t.InstanceID, Addr: t.Addr})
		}
		cfg.Groups[g.Group] = ts
	}
	for _, r := range s.routes {
		pr := proxy.Route{Environment: r.Environment, Service: r.Service, Hosts: r.Hosts,
			PathPrefix: r.PathPrefix, Sticky: r.Sticky, Maintenance: r.Maintenance}
		if len(pr.Hosts) == 0 {
			pr.Hosts = []string{naming.Service(r.Service, r.Environment, "")}
		}
		for _, b := range r.Backends {
			if _, ok := cfg.Groups[b.Group]; !ok {
				cfg.Groups[b.Group] = []proxy.Target{}
			}
			pr.Backends = append(pr.Backends, proxy.Backend{Group: b.Group, Weight: b.Weight})
		}
		cfg.Routes = append(cfg.Routes, pr)
	}
	return s.p.Update(cfg)
}

// WindowStats is a group's traffic over a recent window, as the agent API returns it.
type WindowStats struct {
	Requests  uint64        `json:"requests"`
	Errors    uint64        `json:"errors"`
	ErrorRate float64       `json:"error_rate"`
	P50       time.Duration `json:"p50_ns"`
	P90       time.Duration `json:"p90_ns"`
	P99       time.Duration `json:"p99_ns"`
}

// Counters are a service's totals since the agent started.
type Counters struct {
	Served uint64 `json:"served"`
	Failed uint64 `json:"failed"`
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
	reg := a.opts.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
	window := 30 * time.Second
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Second || d > proxy.MaxStatsWindow {
			writeProblem(w, http.StatusBadRequest, "invalid-request", "window", "window %q: want a duration from 1s to %s, such as 30s", s, proxy.MaxStatsWindow)
			return
		}
		window = d
	}
	out := map[string]WindowStats{}
	for g, s := range a.opts.Proxy.Stats(r.PathValue("environment"), r.PathValue("service"), window) {
		out[g] = WindowStats{Requests: s.Count, Errors: s.Errors, ErrorRate: s.ErrorRate, P50: s.P50, P90: s.P90, P99: s.P99}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) counters(w http.ResponseWriter, r *http.Request) {
	if !a.needProxy(w) {
		return
	}
	c := a.opts.Proxy.Counters(r.PathValue("environment"), r.PathValue("service"))
	writeJSON(w, http.StatusOK, Counters{Served: c.Served, Failed: c.Failed})
}

// setMaintenance turns a service's maintenance page on (PUT {"message": ...}) or off (DELETE).
func (a *Agent) setMaintenance(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("environment") + "/" + r.PathValue("service")
	msg := ""
	if r.Method == http.MethodPut {
		b, ok := readBody(w, r)
		if !ok {
			return
		}
		var body struct {
			Message string `json:"message"`
		}
		if err := decodeStrict(bytes.NewReader(b), &body); err != nil {
			writeError(w, err)
			return
		}
		msg = body.Message
		if msg == "" {
			msg = "This service is down for maintenance. Please try again later."
		}
		if len(msg) > 4096 {
			writeProblem(w, http.StatusBadRequest, "invalid-request", "message", "at most 4096 bytes")
			return
		}
	}
	a.routesMu.Lock()
	rt, ok := a.routes[key]
	if !ok {
		a.routesMu.Unlock()
		writeProblem(w, http.StatusNotFound, "not-found", "", "no route for %s", key)
		return
	}
	prev := rt
	rt.Maintenance = msg
	a.routes[key] = rt
	if err := saveRoutes(a.routesPath, a.routes); err != nil {
		a.routes[key] = prev
		a.routesMu.Unlock()
		writeError(w, fmt.Errorf("write routes file: %w", err))
		return
	}
	a.routesMu.Unlock()
	a.pushRoutes()
	writeJSON(w, http.StatusOK, rt)
}

// pause holds (POST .../pause?max_hold=30s) or releases (POST .../resume) new requests of a service.
func (a *Agent) pause(w http.ResponseWriter, r *http.Request) {
	if !a.needProxy(w) {
		return
	}
	env, svc := r.PathValue("environment"), r.PathValue("service")
	if r.URL.Path == "/v1/resume/"+env+"/"+svc {
		a.opts.Proxy.Resume(env, svc)
		writeJSON(w, http.StatusOK, map[string]any{"environment": env, "service": svc, "paused": false})
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
	a.opts.Proxy.Pause(env, svc, hold)
	writeJSON(w, http.StatusOK, map[string]any{"environment": env, "service": svc, "paused": true, "max_hold_seconds": strconv.Itoa(int(hold.Seconds()))})
}

func (a *Agent) caCert(w http.ResponseWriter, r *http.Request) {
	if !a.needProxy(w) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"path": a.opts.Proxy.CACertPath()})
}
