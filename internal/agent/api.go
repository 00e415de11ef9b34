package agent

import (
	"bufio"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/httpjson"
	"github.com/runwayhq/runway/internal/httplimit"
	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/supervisor"
)

func writeProblem(w http.ResponseWriter, status int, slug, field, format string, args ...any) {
	httpjson.WriteProblem(w, status, agentapi.Problem{Type: httpjson.TypeURI(slug), Title: http.StatusText(status), Status: status,
		Detail: fmt.Sprintf(format, args...), Field: field})
}

// writeError maps supervisor and agent errors to problems.
func writeError(w http.ResponseWriter, err error) {
	var fe *supervisor.FieldError
	var ce *supervisor.ConflictError
	switch {
	case errors.As(err, &fe):
		writeProblem(w, http.StatusBadRequest, "invalid-request", fe.Field, "%s", fe.Error())
	case errors.As(err, &ce):
		writeProblem(w, http.StatusConflict, "group-exists", ce.Field, "%s", ce.Error())
	case errors.Is(err, supervisor.ErrNotFound):
		writeProblem(w, http.StatusNotFound, "not-found", "", "%s", err.Error())
	case errors.Is(err, supervisor.ErrDeleting):
		writeProblem(w, http.StatusConflict, "group-deleting", "", "%s", err.Error())
	case errors.Is(err, supervisor.ErrPortsExhausted):
		writeProblem(w, http.StatusServiceUnavailable, "ports-exhausted", "instances", "%s", err.Error())
	default:
		var rc *routeConflict
		if errors.As(err, &rc) {
			writeProblem(w, http.StatusConflict, "route-conflict", rc.field, "%s", rc.msg)
			return
		}
		writeProblem(w, http.StatusInternalServerError, "internal", "", "%s", err.Error())
	}
}

type routeConflict struct{ field, msg string }

func (e *routeConflict) Error() string { return e.msg }

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

func (a *Agent) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", a.health)
	mux.HandleFunc("GET /v1/groups", a.listGroups)
	mux.HandleFunc("POST /v1/groups", a.createGroup)
	mux.HandleFunc("GET /v1/groups/{name}", a.getGroup)
	mux.HandleFunc("DELETE /v1/groups/{name}", a.deleteGroup)
	mux.HandleFunc("PUT /v1/groups/{name}/scale", a.scaleGroup)
	mux.HandleFunc("PUT /v1/groups/{name}/secrets", a.putGroupSecrets)
	mux.HandleFunc("GET /v1/groups/{name}/instances", a.listInstances)
	mux.HandleFunc("GET /v1/groups/{name}/instances/{id}", a.getInstance)
	mux.HandleFunc("GET /v1/groups/{name}/instances/{id}/logs", a.logs)
	mux.HandleFunc("GET /v1/logs", a.logGroups)
	mux.HandleFunc("GET /v1/targets", a.targets)
	mux.HandleFunc("GET /v1/routes", a.listRoutes)
	mux.HandleFunc("GET /v1/routes/{environment}/{service}", a.getRoute)
	mux.HandleFunc("PUT /v1/routes/{environment}/{service}", a.putRoute)
	mux.HandleFunc("DELETE /v1/routes/{environment}/{service}", a.deleteRoute)
	a.proxyHandlers(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "not-found", "", "no endpoint %s %s (see docs/agent-api.md)", r.Method, r.URL.Path)
	})
	return a.auth(mux)
}

// auth requires the bearer token everywhere except GET /v1/health; /metrics
// too (Options.MetricsListen serves it without a token elsewhere).
func (a *Agent) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + a.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/health" {
			got := []byte(r.Header.Get("Authorization"))
			if subtle.ConstantTimeCompare(got, want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="runway-agent"`)
				writeProblem(w, http.StatusUnauthorized, "unauthorized", "",
					"missing or wrong bearer token: send 'Authorization: Bearer <token>' with the token from %s", a.opts.DataDir+"/"+TokenFileName)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	// Any Content-Type is read as JSON: curl -d sends a form type by default.
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if httplimit.IsBodyTimeout(err) {
		writeProblem(w, http.StatusRequestTimeout, "request-timeout", "body", "%v (the agent's --api-body-timeout); send the body at once", err)
		return nil, false
	}
	if err != nil {
		writeProblem(w, http.StatusRequestEntityTooLarge, "too-large", "body", "request body over %d bytes or unreadable: %v", maxBody, err)
		return nil, false
	}
	return b, true
}

func (a *Agent) health(w http.ResponseWriter, r *http.Request) {
	h := agentapi.Health{Status: "ok", AgentID: a.sup.AgentID(), PID: os.Getpid(), Version: a.opts.Version, DataDir: a.sup.DataDir(), Generations: a.gens.list()}
	for _, g := range a.sup.Groups() {
		h.Groups++
		h.Instances += len(g.Instances)
	}
	writeJSON(w, http.StatusOK, h)
}

func (a *Agent) listGroups(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.sup.Groups())
}

func (a *Agent) createGroup(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	spec, err := DecodeGroupSpec(b)
	if err != nil {
		writeError(w, err)
		return
	}
	gen, ok := a.admit(w, r, spec.Environment, spec.Service)
	if !ok {
		return
	}
	st, created, err := a.sup.CreateGroup(spec)
	if err != nil {
		writeError(w, err)
		return
	}
	generated(w, gen)
	w.Header().Set("Location", "/v1/groups/"+st.Name)
	if created {
		writeJSON(w, http.StatusCreated, st)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *Agent) getGroup(w http.ResponseWriter, r *http.Request) {
	st, err := a.sup.Group(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *Agent) scaleGroup(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	n, drain, err := DecodeScale(b)
	if err != nil {
		writeError(w, err)
		return
	}
	var gen int64
	if env, svc, known := a.groupScope(r.PathValue("name")); known {
		if gen, ok = a.admit(w, r, env, svc); !ok {
			return
		}
	}
	st, err := a.sup.ScaleGroup(r.Context(), r.PathValue("name"), n, drain)
	if err != nil {
		writeError(w, err)
		return
	}
	generated(w, gen)
	writeJSON(w, http.StatusOK, st)
}

// putGroupSecrets takes the values of a group's secrets into memory (never
// the state file). It does not advance the service's generation: it
// changes nothing that runs, only lets waiting instances start.
func (a *Agent) putGroupSecrets(w http.ResponseWriter, r *http.Request) {
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	values, err := DecodeGroupSecrets(b)
	clear(b)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := a.sup.SetSecrets(r.PathValue("name"), values); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Agent) deleteGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	drain, err := ParseDrainTimeout(r.URL.Query().Get("drain_timeout"))
	if err != nil {
		writeError(w, err)
		return
	}
	var gen int64
	if env, svc, known := a.groupScope(name); known {
		var ok bool
		if gen, ok = a.admit(w, r, env, svc); !ok {
			return
		}
	}
	if err := a.checkUnrouted(name); err != nil {
		writeError(w, err)
		return
	}
	done, err := a.sup.DeleteGroup(name, drain)
	if err != nil {
		writeError(w, err)
		return
	}
	generated(w, gen)
	if wait := r.URL.Query().Get("wait"); wait == "true" || wait == "1" {
		select {
		case <-done:
		case <-r.Context().Done():
			return
		}
		if _, err := a.sup.Group(name); errors.Is(err, supervisor.ErrNotFound) {
			writeJSON(w, http.StatusOK, map[string]string{"name": name, "state": "deleted"})
			return
		}
	}
	st, err := a.sup.Group(name)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]string{"name": name, "state": "deleted"})
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}

// checkUnrouted refuses to delete a group that still has weight in a route.
func (a *Agent) checkUnrouted(group string) error {
	a.routesMu.Lock()
	defer a.routesMu.Unlock()
	for _, rt := range sortedRoutes(a.routes) {
		for _, b := range rt.Backends {
			if b.Group == group && b.Weight > 0 {
				return &routeConflict{field: "group", msg: fmt.Sprintf("group %q still receives traffic in route %s (weight %d): shift its weight to 0 (PUT %s) before deleting it", group, rt.Key(), b.Weight, agentapi.KeyPath("/v1/routes/", rt.Key(), nil))}
			}
		}
	}
	return nil
}

func (a *Agent) listInstances(w http.ResponseWriter, r *http.Request) {
	st, err := a.sup.Group(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st.Instances)
}

func (a *Agent) getInstance(w http.ResponseWriter, r *http.Request) {
	st, err := a.sup.Instance(r.PathValue("name"), r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *Agent) logs(w http.ResponseWriter, r *http.Request) {
	q, format, err := ParseLogQuery(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, err)
		return
	}
	group, id := r.PathValue("name"), r.PathValue("id")
	if !a.sup.HasLogs(group, id) {
		// Neither live nor kept after its group's deletion (GET /v1/logs lists those).
		writeProblem(w, http.StatusNotFound, "not-found", "", "no logs of instance %q of group %q: neither running nor kept (GET /v1/logs lists the groups whose logs are kept)", id, group)
		return
	}
	if format == "json" {
		w.Header().Set("Content-Type", "application/x-ndjson")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	bw := bufio.NewWriter(w)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(bw)
	emit := func(l agentapi.LogLine) error {
		var err error
		if format == "json" {
			err = enc.Encode(l)
		} else {
			_, err = fmt.Fprintf(bw, "%s %s %s\n", l.Time.UTC().Format(time.RFC3339Nano), l.Stream, l.Text)
		}
		if err == nil && q.Follow && bw.Buffered() > 0 {
			err = bw.Flush()
			if flusher != nil {
				flusher.Flush()
			}
		}
		return err
	}
	ctx := r.Context()
	if q.Follow {
		w.WriteHeader(http.StatusOK)
		if flusher != nil {
			flusher.Flush()
		}
	}
	if err := a.sup.ReadLogs(ctx, group, id, q, emit); err != nil {
		a.log.Debug("read logs", "err", err)
	}
	bw.Flush()
}

// logGroups lists the groups whose logs are kept, live and deleted, newest
// first: ?environment= and ?service= narrow it.
func (a *Agent) logGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out := a.sup.LogGroups(q.Get("environment"), q.Get("service"))
	if out == nil {
		out = []agentapi.LogGroup{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) targets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.sup.Snapshot())
}

func (a *Agent) listRoutes(w http.ResponseWriter, r *http.Request) {
	a.routesMu.Lock()
	rs := sortedRoutes(a.routes)
	a.routesMu.Unlock()
	writeJSON(w, http.StatusOK, rs)
}

func (a *Agent) getRoute(w http.ResponseWriter, r *http.Request) {
	key, err := routeKeyOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	a.routesMu.Lock()
	rt, ok := a.routes[key]
	a.routesMu.Unlock()
	if !ok {
		writeProblem(w, http.StatusNotFound, "not-found", "", "no route for %s", key)
		return
	}
	writeJSON(w, http.StatusOK, rt)
}

func (a *Agent) putRoute(w http.ResponseWriter, r *http.Request) {
	key, err := routeKeyOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	b, ok := readBody(w, r)
	if !ok {
		return
	}
	rt, err := DecodeRoute(key, b)
	if err != nil {
		writeError(w, err)
		return
	}
	gen, ok := a.admit(w, r, rt.Environment, rt.Service)
	if !ok {
		return
	}
	for i, be := range rt.Backends {
		g, err := a.sup.Group(be.Group)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "invalid-request", fmt.Sprintf("backends[%d].group", i), "group %q does not exist on this agent", be.Group)
			return
		}
		if g.State != agentapi.GroupActive {
			writeProblem(w, http.StatusConflict, "group-deleting", fmt.Sprintf("backends[%d].group", i), "group %q is being deleted", be.Group)
			return
		}
		// A route, a preview route too, sends traffic only to its own service's groups.
		if g.Spec.Project != rt.Project || g.Spec.Environment != rt.Environment || g.Spec.Service != rt.Service {
			writeProblem(w, http.StatusBadRequest, "invalid-request", fmt.Sprintf("backends[%d].group", i),
				"group %q runs %s, not %s: a route sends traffic only to groups of its own project, environment and service",
				be.Group, describeService(g.Spec.Project, g.Spec.Environment, g.Spec.Service), describeService(rt.Project, rt.Environment, rt.Service))
			return
		}
	}
	rt.UpdatedAt = time.Now().UTC()
	a.routesMu.Lock()
	defer a.routesMu.Unlock()
	if prev, had := a.routes[key]; had && rt.Maintenance == "" {
		// Maintenance is switched off only through DELETE /v1/maintenance, so a
		// release does not end it by updating weights.
		rt.Maintenance = prev.Maintenance
	}
	if err := a.commitRoute(key, &rt); err != nil {
		writeError(w, err)
		return
	}
	generated(w, gen)
	writeJSON(w, http.StatusOK, rt)
}

func describeService(project, env, service string) string {
	s := fmt.Sprintf("service %q in %q", service, env)
	if project != "" {
		s += fmt.Sprintf(" of project %q", project)
	} else {
		s += " (no project)"
	}
	return s
}

func (a *Agent) deleteRoute(w http.ResponseWriter, r *http.Request) {
	key, err := routeKeyOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	gen, ok := a.admit(w, r, key.Environment, key.Service)
	if !ok {
		return
	}
	a.routesMu.Lock()
	defer a.routesMu.Unlock()
	if _, ok := a.routes[key]; !ok {
		writeProblem(w, http.StatusNotFound, "not-found", "", "no route for %s", key)
		return
	}
	if err := a.commitRoute(key, nil); err != nil {
		writeError(w, err)
		return
	}
	generated(w, gen)
	w.WriteHeader(http.StatusNoContent)
}

// commitRoute sets the route of key to *rt (removes it when rt is nil) in
// this order: the proxy's rule checks the whole new table, the proxy loads
// it, the routes file is written, and only then the agent's map changes
// and the caller may acknowledge. A table the proxy refuses changes
// nothing: the error is a *FieldError or *routeConflict naming the field
// of the route's body. Called with a.routesMu held, so tables reach the
// proxy in the order they are stored.
func (a *Agent) commitRoute(key agentapi.RouteKey, rt *agentapi.Route) error {
	next := make(map[agentapi.RouteKey]agentapi.Route, len(a.routes)+1)
	var order []agentapi.Route
	for k, r := range a.routes {
		if k != key {
			next[k] = r
		}
	}
	order = sortedRoutes(next)
	if rt != nil {
		next[key] = *rt
		// Last, so that a clash with another route is reported on this one.
		order = append(order, *rt)
	}
	if err := proxy.CheckRoutes(proxyRoutes(order)); err != nil {
		return a.refused(err, key, rt)
	}
	if err := a.opts.Routes.SetRoutes(a.ctx, order); err != nil {
		return a.refused(err, key, rt)
	}
	if err := saveRoutes(a.routesPath, next); err != nil {
		if rerr := a.opts.Routes.SetRoutes(a.ctx, sortedRoutes(a.routes)); rerr != nil {
			a.log.Error("put the previous routes back into the proxy", "err", rerr)
		}
		return fmt.Errorf("write routes file: %w", err)
	}
	a.routes = next
	return nil
}

// refused maps the proxy's refusal of a table holding rt to an agent error.
func (a *Agent) refused(err error, key agentapi.RouteKey, rt *agentapi.Route) error {
	if rt != nil && routeErrorFor(err, key) != nil {
		return routeFieldError(err, *rt)
	}
	return fmt.Errorf("the proxy refused the routing table, which is unchanged: %w", err)
}
