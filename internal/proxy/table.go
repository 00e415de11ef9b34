package proxy

import (
	"sort"
	"strings"
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
	service func(env, name string) *service
	target  func(env, svc, group string, t Target) *target
	stats   func(env, svc, group string) *groupStats
}

func compile(c *Config, b tableBuilder) *table {
	t := &table{hosts: map[string][]*route{}}
	for _, rc := range c.Routes {
		r := &route{
			env:         rc.Environment,
			service:     rc.Service,
			prefix:      trimPrefix(rc.PathPrefix),
			sticky:      rc.Sticky,
			cookie:      stickyCookieName(rc.Environment, rc.Service),
			maintenance: rc.Maintenance,
			svc:         b.service(rc.Environment, rc.Service),
		}
		for _, be := range rc.Backends {
			if be.Weight == 0 {
				continue
			}
			g := &group{id: be.Group, weight: be.Weight, stats: b.stats(rc.Environment, rc.Service, be.Group)}
			for _, tc := range c.Groups[be.Group] {
				g.targets = append(g.targets, b.target(rc.Environment, rc.Service, be.Group, tc))
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

func stickyCookieName(env, svc string) string {
	var b strings.Builder
	b.WriteString("runway_group_")
	for _, s := range []string{env, "_", svc} {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' {
				b.WriteByte(c)
			} else {
				b.WriteByte('-')
			}
		}
	}
	return b.String()
}
