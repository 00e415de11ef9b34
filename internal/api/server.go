package api

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/auth"
)

// Backend is what the API needs from the control plane. Errors that are
// (or wrap) *Problem reach the client as such; others become a 500.
type Backend interface {
	ApplyProject(ctx context.Context, name string, req apiwire.ApplyProjectRequest, actor string) (*apiwire.Project, error)
	Project(ctx context.Context, name string) (*apiwire.Project, error)
	Projects(ctx context.Context) ([]*apiwire.Project, error)
	Deploy(ctx context.Context, req apiwire.DeployRequest, actor string) (*apiwire.Release, error)
	Rollback(ctx context.Context, req apiwire.RollbackRequest, actor string) (*apiwire.Release, error)
	Halt(ctx context.Context, releaseID, reason, actor string) error
	Release(ctx context.Context, id string) (*apiwire.ReleaseDetail, error)
	Releases(ctx context.Context, f apiwire.ReleaseFilter) ([]*apiwire.Release, error)
	Status(ctx context.Context, project, environment, service string) (*apiwire.ServiceStatus, error)
	// CheckLogs answers what Logs would refuse before its first line (an
	// unknown environment or release), so a stream starts only when it can.
	CheckLogs(ctx context.Context, q apiwire.LogsQuery) error
	// Logs emits the lines q selects in time order; following, until ctx ends.
	Logs(ctx context.Context, q apiwire.LogsQuery, emit func(apiwire.LogLine) error) error
	// Events emits the events f selects, oldest first; following, until ctx ends.
	Events(ctx context.Context, f apiwire.EventFilter, emit func(apiwire.ServiceEvent) error) error
	// Overview is one frame of `runway top` for an environment.
	Overview(ctx context.Context, project, environment string) (*apiwire.Overview, error)
	// Alarms lists alarms with their states; Notifications the newest
	// webhook deliveries.
	Alarms(ctx context.Context, f apiwire.AlarmFilter) ([]apiwire.Alarm, error)
	Notifications(ctx context.Context, f apiwire.AlarmFilter) ([]apiwire.Notification, error)
	// Maintenance turns a service's maintenance page on or off.
	Maintenance(ctx context.Context, project, env, service string, req apiwire.MaintenanceRequest, actor string) (*apiwire.Maintenance, error)
}

// Options configure the API handler.
type Options struct {
	Backend  Backend
	Identity Identity
	// Secrets keeps secrets; nil: the secret routes answer 501.
	Secrets Secrets
	Logger  *slog.Logger
	// Now and ReplayWindow implement refusal of stale requests (default 5m).
	Now          func() time.Time
	ReplayWindow time.Duration
	// AuthFailLimit failed authentications from one address within
	// AuthFailWindow make it wait out the window (429); defaults 10 and 1m.
	AuthFailLimit  int
	AuthFailWindow time.Duration
	// Metrics serves GET /metrics (the server's Prometheus exposition);
	// Observe, when set, is told every request's route pattern, status and
	// duration (runway_api_requests_total and its histogram).
	Metrics http.Handler
	Observe func(route string, status int, took time.Duration)
	// StoreHealth, when set, is asked by GET /v1/health whether the store
	// answers, and names its database ("sqlite", "postgres"); Replica is
	// this server's name among several sharing the store.
	StoreHealth func(ctx context.Context) (database string, err error)
	Replica     string
}

// Handler serves /v1.
type Handler struct {
	opts    Options
	mux     *http.ServeMux
	limiter *authLimiter
}

// New returns the API handler. It serves exactly the routes of
// auth.Rules, each behind the guard that applies its rule.
func New(opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReplayWindow == 0 {
		opts.ReplayWindow = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AuthFailLimit == 0 {
		opts.AuthFailLimit = 10
	}
	if opts.AuthFailWindow == 0 {
		opts.AuthFailWindow = time.Minute
	}
	h := &Handler{opts: opts, mux: http.NewServeMux(), limiter: newAuthLimiter(opts.AuthFailLimit, opts.AuthFailWindow, opts.Now)}
	handlers := h.handlers()
	for _, rule := range auth.Rules {
		fn, ok := handlers[rule.Route()]
		if !ok {
			panic("api: rule " + rule.Route() + " has no handler")
		}
		delete(handlers, rule.Route())
		h.mux.HandleFunc(rule.Route(), h.guard(rule, fn))
	}
	for route := range handlers {
		panic("api: route " + route + " has no rule in auth.Rules")
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "no API endpoint %s %s; see docs/api.md", r.Method, r.URL.Path))
	})
	return h
}

// handlers maps each route to its handler; the handler receives the caller's
// user name (empty on public routes).
func (h *Handler) handlers() map[string]func(http.ResponseWriter, *http.Request, string) {
	return map[string]func(http.ResponseWriter, *http.Request, string){
		"GET /v1/health":              h.health,
		"GET /v1/whoami":              h.whoami,
		"GET /v1/projects":            h.listProjects,
		"GET /v1/projects/{project}":  h.getProject,
		"PUT /v1/projects/{project}":  h.applyProject,
		"POST /v1/releases":           h.deploy,
		"GET /v1/releases":            h.listReleases,
		"GET /v1/releases/{id}":       h.getRelease,
		"POST /v1/releases/{id}/halt": h.halt,
		"POST /v1/rollbacks":          h.rollback,
		"GET /v1/projects/{project}/environments/{env}/services/{service}": h.status,
		"GET /v1/users":               h.listUsers,
		"POST /v1/users":              h.createUser,
		"GET /v1/users/{name}":        h.getUser,
		"PATCH /v1/users/{name}":      h.updateUser,
		"GET /v1/tokens":              h.listTokens,
		"POST /v1/tokens":             h.createToken,
		"POST /v1/tokens/{id}/revoke": h.revokeToken,
		"GET /v1/audit":               h.listAudit,
		"GET /v1/audit/verify":        h.verifyAudit,
		"GET /v1/projects/{project}/environments/{env}/secrets":                 h.listSecrets,
		"PUT /v1/projects/{project}/environments/{env}/secrets":                 h.putSecrets,
		"GET /v1/projects/{project}/environments/{env}/secrets/{key}":           h.getSecret,
		"GET /v1/projects/{project}/environments/{env}/secrets/{key}/history":   h.secretHistory,
		"POST /v1/projects/{project}/environments/{env}/secrets/{key}/rollback": h.rollbackSecret,
		"POST /v1/projects/{project}/environments/{env}/secrets/{key}/delete":   h.deleteSecret,
		"POST /v1/secrets/rotate-master-key":                                    h.rotateMasterKey,
		"GET /v1/events":                                                        h.events,
		"GET /v1/projects/{project}/environments/{env}/services/{service}/logs": h.logs,
		"GET /v1/projects/{project}/environments/{env}/overview":                h.overview,
		"GET /metrics":          h.metrics,
		"GET /v1/alarms":        h.alarms,
		"GET /v1/notifications": h.notifications,
		"POST /v1/projects/{project}/environments/{env}/services/{service}/maintenance": h.maintenance,
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.opts.Observe != nil {
		start := time.Now()
		mw := &metricsWriter{ResponseWriter: w, status: http.StatusOK}
		w = mw
		defer func() { h.opts.Observe(routeLabel(r.Pattern), mw.status, time.Since(start)) }()
	}
	defer func() {
		if v := recover(); v != nil {
			h.opts.Logger.Error("api handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
			writeProblem(w, nil)
		}
	}()
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if _, ok := err.(*apiwire.Problem); !ok {
		h.opts.Logger.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeProblem(w, err)
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request, _ string) {
	// The pid lets `runway up` check that what answers is the server it started.
	body := map[string]any{"status": "ok", "pid": os.Getpid()}
	if h.opts.Replica != "" {
		body["replica"] = h.opts.Replica
	}
	status := http.StatusOK
	if h.opts.StoreHealth != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		database, err := h.opts.StoreHealth(ctx)
		cancel()
		st := map[string]any{"database": database, "reachable": err == nil}
		if err != nil {
			// A server that cannot reach its store serves no request:
			// a load balancer's health check takes it out.
			// The route is public: the cause (host, user) goes to the log.
			h.opts.Logger.Warn("health: the store does not answer", "err", err)
			st["error"] = "the server cannot reach its store; its log has the cause"
			body["status"], status = "store-unavailable", http.StatusServiceUnavailable
		}
		body["store"] = st
	}
	writeJSON(w, status, body)
}

func (h *Handler) deploy(w http.ResponseWriter, r *http.Request, actor string) {
	var req apiwire.DeployRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := validateDeployRequest(&req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	rel, err := h.opts.Backend.Deploy(r.Context(), req, actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rel)
}

func (h *Handler) rollback(w http.ResponseWriter, r *http.Request, actor string) {
	var req apiwire.RollbackRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := validateRollbackRequest(&req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	rel, err := h.opts.Backend.Rollback(r.Context(), req, actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rel)
}

func (h *Handler) listReleases(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	f := apiwire.ReleaseFilter{Project: q.Get("project"), Environment: q.Get("environment"), Service: q.Get("service"), Limit: 50}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "query parameter limit must be a whole number from 1 to 1000, got %q", trunc(s)))
			return
		}
		f.Limit = n
	}
	for name, v := range map[string]string{"project": f.Project, "environment": f.Environment, "service": f.Service} {
		if v != "" && !nameRe.MatchString(v) {
			h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "query parameter %s %q is not a valid name", name, trunc(v)))
			return
		}
	}
	list, err := h.opts.Backend.Releases(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []*apiwire.Release{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *Handler) getRelease(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("id")
	if !requestIDRe.MatchString(id) {
		h.fail(w, r, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "%q is not a release id", trunc(id)))
		return
	}
	rel, err := h.opts.Backend.Release(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rel)
}

func (h *Handler) halt(w http.ResponseWriter, r *http.Request, actor string) {
	id := r.PathValue("id")
	if !requestIDRe.MatchString(id) {
		h.fail(w, r, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "%q is not a release id", trunc(id)))
		return
	}
	var req apiwire.HaltRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	if err := h.opts.Backend.Halt(r.Context(), id, req.Reason, actor); err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "status": "halt requested"})
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request, _ string) {
	project, env, svc := r.PathValue("project"), r.PathValue("env"), r.PathValue("service")
	if err := checkProject(project); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkTarget(env, svc); err != nil {
		h.fail(w, r, err)
		return
	}
	st, err := h.opts.Backend.Status(r.Context(), project, env, svc)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *Handler) listProjects(w http.ResponseWriter, r *http.Request, _ string) {
	list, err := h.opts.Backend.Projects(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []*apiwire.Project{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *Handler) getProject(w http.ResponseWriter, r *http.Request, _ string) {
	name := r.PathValue("project")
	if err := checkProject(name); err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.opts.Backend.Project(r.Context(), name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (h *Handler) applyProject(w http.ResponseWriter, r *http.Request, actor string) {
	name := r.PathValue("project")
	if err := checkProject(name); err != nil {
		h.fail(w, r, err)
		return
	}
	var req apiwire.ApplyProjectRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := validateApplyProjectRequest(&req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	p, err := h.opts.Backend.ApplyProject(r.Context(), name, req, actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// metricsWriter remembers the status a request was answered with; Unwrap
// lets http.ResponseController flush a stream through it.
type metricsWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (m *metricsWriter) WriteHeader(code int) {
	if !m.wrote {
		m.status, m.wrote = code, true
	}
	m.ResponseWriter.WriteHeader(code)
}

func (m *metricsWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }

func (h *Handler) maintenance(w http.ResponseWriter, r *http.Request, actor string) {
	project, env, svc := r.PathValue("project"), r.PathValue("env"), r.PathValue("service")
	if err := checkProject(project); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkTarget(env, svc); err != nil {
		h.fail(w, r, err)
		return
	}
	var req apiwire.MaintenanceRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !req.On && req.Message != "" {
		h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"message\" goes with \"on\": true only"))
		return
	}
	if !h.admit(w, r) {
		return
	}
	m, err := h.opts.Backend.Maintenance(r.Context(), project, env, svc, req, actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}
