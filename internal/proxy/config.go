package proxy

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/naming"
)

// Config is the whole routing table handed to Update. It is copied when
// compiled, so the caller may reuse it afterwards.
type Config struct {
	// Routes lists one route per RouteKey.
	Routes []Route
	// Groups maps a group id to the targets currently able to serve it
	// (the healthy instances, as the supervisor reports them).
	Groups map[string][]Target
}

// describe names the route in messages to clients: "service web (development)",
// "the preview of service web of project a (development)".
func describeKey(k agentapi.RouteKey) string {
	s := "service " + k.Service
	if k.Project != "" {
		s += " of project " + k.Project
	}
	s += " (" + k.Environment + ")"
	if k.Preview {
		s = "the preview of " + s
	}
	return s
}

var labelRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// CheckKey reports a *RouteError naming the field ("project", "environment",
// "service") that is not a name: 1 to 63 lower-case letters, digits, '.',
// '_' or '-', starting with a letter or digit. Project may be empty.
func CheckKey(k agentapi.RouteKey) error {
	for _, f := range []struct{ field, v string }{{"project", k.Project}, {"environment", k.Environment}, {"service", k.Service}} {
		if f.v == "" && f.field == "project" {
			continue
		}
		if f.v == "" {
			return &RouteError{Route: k, Field: f.field, Msg: "is required"}
		}
		if !labelRE.MatchString(f.v) {
			return &RouteError{Route: k, Field: f.field, Msg: fmt.Sprintf("%q: use 1 to 63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", f.v)}
		}
	}
	return nil
}

// Route sends the requests of some hosts (and optional path prefix) to the
// weighted groups of one service: the agent API's route (agentapi.Route, one
// declaration for the wire, the agent and the proxy; the proxy ignores its
// UpdatedAt). Hosts are served without port; a path prefix matches that
// path and the paths below it ("/api" matches "/api" and "/api/x", not
// "/apix"), the longest prefix wins, and "/" is the same as ""
// (naming.CheckPathPrefix). Maintenance, when not empty, answers every
// request with 503 and that message instead of forwarding it.
type Route = agentapi.Route

// Backend is one group of a route with its share of the traffic.
type Backend = agentapi.Backend

// Target is one instance of a group.
type Target struct {
	Instance string
	Addr     string // host:port of the instance, reached over plain HTTP/1.1
}

// RouteError is what is wrong with one route of a routing table. Field is
// the route's field at fault, named as in the agent API's JSON ("hosts[1]",
// "path_prefix", "backends[0].weight"). Conflict is set when the route is
// valid alone but clashes with another route of the table.
type RouteError struct {
	Route    agentapi.RouteKey
	Field    string
	Msg      string
	Conflict bool
}

func (e *RouteError) Error() string {
	return fmt.Sprintf("route %s: %s: %s", e.Route, e.Field, e.Msg)
}

// CheckRoute reports the first problem of one route alone as a *RouteError,
// or nil. It is the whole rule of what a route may be, applied by Update
// (through CheckRoutes) and by the agent before it stores a route.
func CheckRoute(r Route) error {
	k := r.Key()
	if err := CheckKey(k); err != nil {
		return err
	}
	fail := func(field, format string, args ...any) error {
		return &RouteError{Route: k, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if len(r.Hosts) == 0 {
		return fail("hosts", "no hosts; give at least one, such as naming.Service(service, environment, domain)")
	}
	if len(r.Hosts) > agentapi.MaxHosts {
		return fail("hosts", "%d hosts: at most %d", len(r.Hosts), agentapi.MaxHosts)
	}
	seen := make(map[string]bool, len(r.Hosts))
	for i, h := range r.Hosts {
		h = strings.ToLower(h)
		if err := naming.CheckHost(h); err != nil {
			return fail(fmt.Sprintf("hosts[%d]", i), "%v", err)
		}
		if seen[h] {
			return fail(fmt.Sprintf("hosts[%d]", i), "%q is listed twice", h)
		}
		seen[h] = true
	}
	if err := naming.CheckPathPrefix(r.PathPrefix); err != nil {
		return fail("path_prefix", "%v", err)
	}
	if len(r.Backends) > agentapi.MaxBackends {
		return fail("backends", "%d backends: at most %d", len(r.Backends), agentapi.MaxBackends)
	}
	total := 0
	groups := make(map[string]bool, len(r.Backends))
	for i, b := range r.Backends {
		if b.Group == "" {
			return fail(fmt.Sprintf("backends[%d].group", i), "is required")
		}
		if groups[b.Group] {
			return fail(fmt.Sprintf("backends[%d].group", i), "%q is listed twice", b.Group)
		}
		groups[b.Group] = true
		if b.Weight < 0 || b.Weight > agentapi.MaxWeight {
			return fail(fmt.Sprintf("backends[%d].weight", i), "%d: want 0 to %d", b.Weight, agentapi.MaxWeight)
		}
		total += b.Weight
	}
	if len(r.Backends) > 0 && total == 0 {
		return fail("backends", "all weights are 0: give at least one backend a positive weight, or send no backends")
	}
	if len(r.Maintenance) > agentapi.MaxMaintenanceLen {
		return fail("maintenance", "%d bytes: at most %d", len(r.Maintenance), agentapi.MaxMaintenanceLen)
	}
	return nil
}

// CheckRoutes checks a whole set of routes: every route alone (CheckRoute),
// one route per key, and one route per host and path prefix. It returns the
// problems joined, each a *RouteError; a conflict is reported on the later
// of the two routes, naming the earlier.
func CheckRoutes(routes []Route) error {
	var errs []error
	type hostPath struct{ host, prefix string }
	seen := map[hostPath]agentapi.RouteKey{}
	keys := map[agentapi.RouteKey]bool{}
	for _, r := range routes {
		if err := CheckRoute(r); err != nil {
			errs = append(errs, err)
			continue
		}
		k := r.Key()
		if keys[k] {
			errs = append(errs, &RouteError{Route: k, Field: "service", Msg: "the route appears twice; give each key one route", Conflict: true})
			continue
		}
		keys[k] = true
		prefix := naming.CanonicalPathPrefix(r.PathPrefix)
		for i, h := range r.Hosts {
			hp := hostPath{strings.ToLower(h), prefix}
			if other, dup := seen[hp]; dup {
				what := fmt.Sprintf("path prefix %q", r.PathPrefix)
				if prefix == "" {
					what = "no path prefix (\"\" and \"/\" are the same)"
				}
				errs = append(errs, &RouteError{Route: k, Field: fmt.Sprintf("hosts[%d]", i), Conflict: true,
					Msg: fmt.Sprintf("host %q with %s is already routed to %s: give this route another host or path prefix, or change %s first", hp.host, what, other, other)})
				continue
			}
			seen[hp] = k
		}
	}
	return errors.Join(errs...)
}

func (c *Config) validate() error {
	errs := []error{CheckRoutes(c.Routes)}
	for _, r := range c.Routes {
		for i, b := range r.Backends {
			if _, ok := c.Groups[b.Group]; !ok {
				errs = append(errs, &RouteError{Route: r.Key(), Field: fmt.Sprintf("backends[%d].group", i),
					Msg: fmt.Sprintf("group %q is not in Config.Groups (give it an empty target list if it has no healthy instance)", b.Group)})
			}
		}
	}
	for g, ts := range c.Groups {
		for _, t := range ts {
			if t.Instance == "" {
				errs = append(errs, fmt.Errorf("group %q: a target has no instance id", g))
			}
			if _, _, err := net.SplitHostPort(t.Addr); err != nil {
				errs = append(errs, fmt.Errorf("group %q instance %q: address %q: %w", g, t.Instance, t.Addr, err))
			}
		}
	}
	return errors.Join(errs...)
}
