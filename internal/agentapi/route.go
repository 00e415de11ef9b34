package agentapi

import (
	"strings"
	"time"
)

// RouteKey is the identity of a route: a service of a project in an
// environment, or that service's preview (the blue/green route to the new
// group before the switch). Two keys that differ in any field are two
// routes with their own statistics, counters, pause, sticky cookie and
// access-log lines. The zero Project is the project of a single-project
// agent.
//
// The proxy's routing table, the agent's routes map and routes file,
// conflicts, statistics, counters, maintenance and pause all use this one key.
type RouteKey struct {
	Project     string
	Environment string
	Service     string
	Preview     bool
}

// String is the key's text form, [project/]environment/service[#preview]:
// no name may hold '/' or '#' (proxy.CheckKey), so the form is unambiguous and a
// service named "web-preview" is never the preview of "web".
func (k RouteKey) String() string {
	var b strings.Builder
	if k.Project != "" {
		b.WriteString(k.Project)
		b.WriteByte('/')
	}
	b.WriteString(k.Environment)
	b.WriteByte('/')
	b.WriteString(k.Service)
	if k.Preview {
		b.WriteString("#preview")
	}
	return b.String()
}

// Less orders keys by project, environment, service, then the preview after
// the service's own route.
func (k RouteKey) Less(o RouteKey) bool {
	if k.Project != o.Project {
		return k.Project < o.Project
	}
	if k.Environment != o.Environment {
		return k.Environment < o.Environment
	}
	if k.Service != o.Service {
		return k.Service < o.Service
	}
	return !k.Preview && o.Preview
}

// Limits of one route. With them the precomputed round-robin sequence of a
// route (the sum of its weights divided by their gcd) has at most
// MaxBackends*MaxWeight = 100000 entries.
const (
	MaxHosts          = 100
	MaxBackends       = 100
	MaxWeight         = 1000
	MaxMaintenanceLen = 4096
)

// Backend is one group receiving a share of a service's traffic.
type Backend struct {
	Group  string `json:"group"`
	Weight int    `json:"weight"`
}

// Route says which groups serve one service of a project in one
// environment (or that service's preview), with which weights, for which
// host names.
type Route struct {
	// Project is empty for a single-project agent (and in routes files
	// written before routes had projects).
	Project     string `json:"project,omitempty"`
	Environment string `json:"environment"`
	Service     string `json:"service"`
	// Preview marks the service's blue/green preview route: the new group
	// before the switch, on its own hosts.
	Preview  bool      `json:"preview,omitempty"`
	Hosts    []string  `json:"hosts"`
	Backends []Backend `json:"backends"`
	// PathPrefix limits the route to a path and the paths below it ("/api").
	PathPrefix string `json:"path_prefix,omitempty"`
	// Sticky keeps a client on the group it first reached (canaries).
	Sticky bool `json:"sticky,omitempty"`
	// Maintenance, when set, answers every request with 503 and this message.
	Maintenance string    `json:"maintenance,omitempty"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// Key is the route's identity.
func (r Route) Key() RouteKey {
	return RouteKey{Project: r.Project, Environment: r.Environment, Service: r.Service, Preview: r.Preview}
}

// ScaleRequest is the body of PUT /v1/groups/{name}/scale.
type ScaleRequest struct {
	Instances *int `json:"instances"`
	// DrainTimeout bounds the drain of the instances a scale down stops (a
	// Go duration; "" or "0s": the agent's --drain-timeout).
	DrainTimeout string `json:"drain_timeout,omitempty"`
}
