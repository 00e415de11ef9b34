package proxy

import (
	"sort"
	"strings"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/naming"
)

// table is one immutable version of the routing table. Update builds a new
// one and publishes it with an atomic pointer; nothing in it changes after
// publication except the per-route round-robin counter and the state behind
// the target pointers.
type table struct {
	hosts map[string][]*route // per host, longest path prefix first
}

// lookup returns the route for a normalized host and a request path, or nil.
func (t *table) lookup(host, path string) *route {
	for _, r := range t.hosts[host] {
		if prefixMatches(r.prefix, path) {
			return r
		}
	}
	return nil
}

// prefixMatches reports whether path is prefix or below it. The empty
// prefix matches everything.
func prefixMatches(prefix, path string) bool {
	if prefix == "" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// tableBuilder carries what compile needs from the registry.
type tableBuilder struct {
	service func(agentapi.RouteKey) *service
	target  func(route agentapi.RouteKey, group string, t Target) *target
	stats   func(route agentapi.RouteKey, group string) *groupStats
}

func compile(c *Config, b tableBuilder) *table {
	t := &table{hosts: map[string][]*route{}}
	for _, rc := range c.Routes {
		k := rc.Key()
		r := &route{
			key:         k,
			prefix:      naming.CanonicalPathPrefix(rc.PathPrefix),
			sticky:      rc.Sticky,
			cookie:      stickyCookieName(k),
			maintenance: rc.Maintenance,
			svc:         b.service(k),
		}
		for _, be := range rc.Backends {
			if be.Weight == 0 {
				continue
			}
			g := &group{id: be.Group, weight: be.Weight, stats: b.stats(k, be.Group)}
			for _, tc := range c.Groups[be.Group] {
				g.targets = append(g.targets, b.target(k, be.Group, tc))
			}
			r.groups = append(r.groups, g)
		}
		r.seq = smoothWeightedSequence(r.groups)
		for _, h := range rc.Hosts {
			h = strings.ToLower(h)
			t.hosts[h] = append(t.hosts[h], r)
		}
	}
	for _, rs := range t.hosts {
		sort.SliceStable(rs, func(i, j int) bool { return len(rs[i].prefix) > len(rs[j].prefix) })
	}
	return t
}

// stickyCookieName is one cookie per route key:
// runway_group_<project>~<environment>~<service>[~preview]. Names of a key
// hold only [a-z0-9._-] (CheckKey), all cookie-name characters, and never
// '~', so two keys never share a cookie.
func stickyCookieName(k agentapi.RouteKey) string {
	name := "runway_group_" + k.Project + "~" + k.Environment + "~" + k.Service
	if k.Preview {
		name += "~preview"
	}
	return name
}
