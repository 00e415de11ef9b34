package proxy

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Config is the whole routing table handed to Update. It is copied when
// compiled, so the caller may reuse it afterwards.
type Config struct {
	// Routes lists one route per (environment, service).
	Routes []Route
	// Groups maps a group id to the targets currently able to serve it
	// (the healthy instances, as the supervisor reports them).
	Groups map[string][]Target
}

// Route sends the requests of some hosts (and optional path prefix) to the
// weighted groups of one service.
type Route struct {
	Environment string
	Service     string
	// Hosts are the host names served, without port: usually
	// naming.Service(service, environment, domain) plus the manifest's extra hosts.
	Hosts []string
	// PathPrefix, if set, limits the route to that path and the paths below it
	// ("/api" matches "/api" and "/api/x", not "/apix"). The longest prefix wins.
	PathPrefix string
	// Backends are the groups that share the route's traffic by weight.
	Backends []Backend
	// Sticky keeps a client on the group it first reached (a cookie) while
	// that group still has weight and a healthy target.
	Sticky bool
	// Maintenance, when not empty, answers every request with 503 and this
	// message instead of forwarding it.
	Maintenance string
}

// Backend is one group of a route with its share of the traffic.
type Backend struct {
	Group  string
	Weight int
}

// Target is one instance of a group.
type Target struct {
	Instance string
	Addr     string // host:port of the instance, reached over plain HTTP/1.1
}

// maxWeightSum bounds the length of the precomputed round-robin sequence.
const maxWeightSum = 100000

func (c *Config) validate() error {
	var errs []error
	type hostPath struct{ host, prefix string }
	seen := map[hostPath]string{}
	services := map[string]bool{}
	for i, r := range c.Routes {
		where := fmt.Sprintf("route %d (%s/%s)", i, r.Environment, r.Service)
		if r.Environment == "" || r.Service == "" {
			errs = append(errs, fmt.Errorf("%s: environment and service are required", where))
		}
		key := r.Environment + "/" + r.Service
		if services[key] {
			errs = append(errs, fmt.Errorf("%s: service appears twice; give it one route", where))
		}
		services[key] = true
		if len(r.Hosts) == 0 {
			errs = append(errs, fmt.Errorf("%s: no hosts; use naming.Service(service, environment, domain)", where))
		}
		if r.PathPrefix != "" && (!strings.HasPrefix(r.PathPrefix, "/") || strings.HasSuffix(r.PathPrefix, "/") && r.PathPrefix != "/") {
			errs = append(errs, fmt.Errorf("%s: path prefix %q must start with / and not end with one", where, r.PathPrefix))
		}
		for _, h := range r.Hosts {
			n, ok := normalizeHost(h)
			if !ok || n != strings.ToLower(h) {
				errs = append(errs, fmt.Errorf("%s: host %q is not a valid host name without port", where, h))
				continue
			}
			k := hostPath{n, trimPrefix(r.PathPrefix)}
			if other, dup := seen[k]; dup {
				errs = append(errs, fmt.Errorf("%s: host %q with path prefix %q is already routed to %s", where, h, r.PathPrefix, other))
			}
			seen[k] = key
		}
		sum := 0
		for _, b := range r.Backends {
			if b.Weight < 0 {
				errs = append(errs, fmt.Errorf("%s: group %q has negative weight %d", where, b.Group, b.Weight))
			}
			if _, ok := c.Groups[b.Group]; !ok {
				errs = append(errs, fmt.Errorf("%s: group %q is not in Config.Groups (give it an empty target list if it has no healthy instance)", where, b.Group))
			}
			sum += b.Weight
		}
		if sum > maxWeightSum {
			errs = append(errs, fmt.Errorf("%s: weights add up to %d, more than %d", where, sum, maxWeightSum))
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

func trimPrefix(p string) string {
	if p == "/" {
		return ""
	}
	return p
}

// normalizeHost lowercases a Host header value and strips its port. It
// reports false for values that cannot be a host name.
func normalizeHost(h string) (string, bool) {
	if h == "" {
		return "", false
	}
	if h[0] == '[' { // IPv6 literal
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		return strings.ToLower(h[:end+1]), true
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return "", false
	}
	lower := true
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		case 'A' <= c && c <= 'Z':
			lower = false
		default:
			return "", false
		}
	}
	if !lower {
		h = strings.ToLower(h)
	}
	return h, true
}
