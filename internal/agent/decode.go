package agent

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/httpjson"
	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/supervisor"
)

// maxBody caps request bodies.
const maxBody = 1 << 20

// decodeStrict decodes exactly one JSON object into v, refusing unknown
// fields and trailing data (httpjson.Decode); errors name the offending field.
func decodeStrict(b []byte, v any) error {
	err := httpjson.Decode(b, v)
	var de *httpjson.DecodeError
	if !errors.As(err, &de) {
		return err
	}
	if de.Field == "" {
		return &supervisor.FieldError{Field: "body", Msg: de.Msg}
	}
	if strings.HasSuffix(de.Msg, "not a known field") {
		return &supervisor.FieldError{Field: de.Field, Msg: de.Msg + " (see docs/agent-api.md)"}
	}
	return &supervisor.FieldError{Field: de.Field, Msg: de.Msg}
}

// DecodeGroupSpec parses the body of POST /v1/groups. Validation that needs
// the machine (command exists, work_dir) happens in the supervisor.
func DecodeGroupSpec(b []byte) (agentapi.GroupSpec, error) {
	var s agentapi.GroupSpec
	if err := decodeStrict(b, &s); err != nil {
		return s, err
	}
	if s.Name == "" {
		return s, &supervisor.FieldError{Field: "name", Msg: "is required"}
	}
	return s, nil
}

// MaxDrainTimeout is the longest drain a scale or delete call may ask for.
const MaxDrainTimeout = time.Hour

// DecodeScale parses the body of PUT /v1/groups/{name}/scale: the instance
// count and the drain timeout (0 when absent).
func DecodeScale(b []byte) (int, time.Duration, error) {
	var s agentapi.ScaleRequest
	if err := decodeStrict(b, &s); err != nil {
		return 0, 0, err
	}
	if s.Instances == nil {
		return 0, 0, &supervisor.FieldError{Field: "instances", Msg: "is required"}
	}
	if *s.Instances < 0 || *s.Instances > supervisor.MaxInstances {
		return 0, 0, &supervisor.FieldError{Field: "instances", Msg: fmt.Sprintf("%d: want 0 to %d", *s.Instances, supervisor.MaxInstances)}
	}
	drain, err := ParseDrainTimeout(s.DrainTimeout)
	return *s.Instances, drain, err
}

// ParseDrainTimeout parses the drain_timeout of a scale body or a delete
// query: "" is 0 (the agent's default), else a Go duration from 0 to
// MaxDrainTimeout.
func ParseDrainTimeout(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxDrainTimeout {
		return 0, &supervisor.FieldError{Field: "drain_timeout", Msg: fmt.Sprintf("%q: want a duration from 0s to %s, such as 30s (0s: the agent's --drain-timeout)", v, MaxDrainTimeout)}
	}
	return d, nil
}

// DecodeRoute parses the body of PUT /v1/routes/{environment}/{service}
// with the key given by the URL (path, and the project and preview query
// parameters): identity fields in the body must agree with it.
func DecodeRoute(key agentapi.RouteKey, b []byte) (agentapi.Route, error) {
	var r agentapi.Route
	if err := decodeStrict(b, &r); err != nil {
		return r, err
	}
	if r.Project == "" {
		r.Project = key.Project
	}
	if r.Environment == "" {
		r.Environment = key.Environment
	}
	if r.Service == "" {
		r.Service = key.Service
	}
	if r.Project != key.Project {
		return r, &supervisor.FieldError{Field: "project", Msg: fmt.Sprintf("%q differs from the URL's project=%q", r.Project, key.Project)}
	}
	if r.Environment != key.Environment {
		return r, &supervisor.FieldError{Field: "environment", Msg: fmt.Sprintf("%q differs from the URL's %q", r.Environment, key.Environment)}
	}
	if r.Service != key.Service {
		return r, &supervisor.FieldError{Field: "service", Msg: fmt.Sprintf("%q differs from the URL's %q", r.Service, key.Service)}
	}
	if r.Preview && !key.Preview {
		return r, &supervisor.FieldError{Field: "preview", Msg: "is true but the URL has no preview=true: put a preview route at /v1/routes/{environment}/{service}?preview=true"}
	}
	r.Preview = key.Preview
	return r, validateRoute(&r)
}

// validateRoute normalizes the hosts to lower case and checks the route alone
// with the proxy's rule (proxy.CheckRoute), as the proxy will serve it.
func validateRoute(r *agentapi.Route) error {
	for i, h := range r.Hosts {
		r.Hosts[i] = strings.ToLower(h)
	}
	return routeFieldError(proxy.CheckRoute(proxyRoute(*r)), *r)
}

// routeFieldError turns the proxy's verdict on route r into the agent's
// errors: a *FieldError (400) or a *routeConflict (409) naming the field of
// r's body, or the error itself when it is not about r.
func routeFieldError(err error, r agentapi.Route) error {
	if err == nil {
		return nil
	}
	re := routeErrorFor(err, r.Key())
	if re == nil {
		return err
	}
	field, msg := re.Field, re.Msg
	if len(r.Hosts) == 0 && strings.HasPrefix(field, "hosts") {
		// The proxy saw the default host, which the body did not list.
		field, msg = "hosts", fmt.Sprintf("none given, so the route would serve %s: %s; list the hosts", proxyRoute(r).Hosts[0], msg)
	}
	if re.Conflict {
		return &routeConflict{field: field, msg: field + ": " + msg}
	}
	return &supervisor.FieldError{Field: field, Msg: msg}
}

// routeErrorFor finds the proxy's *RouteError about key in err (which may
// join several).
func routeErrorFor(err error, key agentapi.RouteKey) *proxy.RouteError {
	var re *proxy.RouteError
	if errors.As(err, &re) && re.Route == key {
		return re
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if re := routeErrorFor(e, key); re != nil {
				return re
			}
		}
	case interface{ Unwrap() error }:
		if e := u.Unwrap(); e != nil {
			return routeErrorFor(e, key)
		}
	}
	return nil
}

// routeKeyOf reads a route key from a request: environment and service
// from the path, project=NAME and preview=true from the query.
func routeKeyOf(req *http.Request) (agentapi.RouteKey, error) {
	q := req.URL.Query()
	k := agentapi.RouteKey{Project: q.Get("project"), Environment: req.PathValue("environment"), Service: req.PathValue("service")}
	switch v := q.Get("preview"); v {
	case "", "false", "0":
	case "true", "1":
		k.Preview = true
	default:
		return k, &supervisor.FieldError{Field: "preview", Msg: fmt.Sprintf("%q: want true or false", v)}
	}
	if err := proxy.CheckKey(k); err != nil {
		var re *proxy.RouteError
		errors.As(err, &re)
		return k, &supervisor.FieldError{Field: re.Field, Msg: re.Msg}
	}
	return k, nil
}

// ParseLogQuery parses the query of GET .../logs: since (RFC 3339 time or
// a duration back from now such as 5m), filter, stream (stdout|stderr),
// tail (a number of lines), follow (true|1), format (text|json).
func ParseLogQuery(v url.Values, now time.Time) (agentapi.LogQuery, string, error) {
	var q agentapi.LogQuery
	if s := v.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			q.Since = t
		} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			q.Since = now.Add(-d)
		} else {
			return q, "", &supervisor.FieldError{Field: "since", Msg: fmt.Sprintf("%q: want an RFC 3339 time or a duration such as 5m", s)}
		}
	}
	q.Filter = v.Get("filter")
	if len(q.Filter) > 1024 {
		return q, "", &supervisor.FieldError{Field: "filter", Msg: "longer than 1024 bytes"}
	}
	switch q.Stream = v.Get("stream"); q.Stream {
	case "", "stdout", "stderr":
	default:
		return q, "", &supervisor.FieldError{Field: "stream", Msg: fmt.Sprintf("%q: want stdout or stderr", q.Stream)}
	}
	if s := v.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1_000_000 {
			return q, "", &supervisor.FieldError{Field: "tail", Msg: fmt.Sprintf("%q: want a number of lines from 0 to 1000000", s)}
		}
		q.Tail = n
	}
	switch s := v.Get("follow"); s {
	case "", "0", "false":
	case "1", "true":
		q.Follow = true
	default:
		return q, "", &supervisor.FieldError{Field: "follow", Msg: fmt.Sprintf("%q: want true or false", s)}
	}
	format := v.Get("format")
	switch format {
	case "":
		format = "text"
	case "text", "json":
	default:
		return q, "", &supervisor.FieldError{Field: "format", Msg: fmt.Sprintf("%q: want text or json", format)}
	}
	return q, format, nil
}

// DecodeGroupSecrets parses the body of PUT /v1/groups/{name}/secrets.
// Errors name the field, never a value.
func DecodeGroupSecrets(b []byte) (map[string]string, error) {
	var gs agentapi.GroupSecrets
	if err := decodeStrict(b, &gs); err != nil {
		// One fixed message: a syntax error's text may quote a byte of a
		// value, an unknown field's its name, taken from the body.
		return nil, &supervisor.FieldError{Field: "body", Msg: "is not a JSON object {\"values\": {\"NAME\": \"value\"}} with string values and no other field"}
	}
	if gs.Values == nil {
		return nil, &supervisor.FieldError{Field: "values", Msg: "is required: the value of every secret the group names"}
	}
	return gs.Values, nil
}
