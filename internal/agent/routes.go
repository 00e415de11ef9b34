package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/httpjson"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/supervisor"
)

// proxyRoute is the route as the proxy serves it: a route without hosts
// serves the service's default host (naming.Service, or naming.Preview for
// a preview) under .localhost.
func proxyRoute(r agentapi.Route) proxy.Route {
	if len(r.Hosts) == 0 {
		if r.Preview {
			r.Hosts = []string{naming.Preview(r.Service, r.Environment, "")}
		} else {
			r.Hosts = []string{naming.Service(r.Service, r.Environment, "")}
		}
	}
	return r
}

func proxyRoutes(rs []agentapi.Route) []proxy.Route {
	out := make([]proxy.Route, 0, len(rs))
	for _, r := range rs {
		out = append(out, proxyRoute(r))
	}
	return out
}

// Drainer stops routing to instances and waits until their in-flight
// requests are done, at most timeout (0: its default), then ends the
// WebSockets and streams still open. The proxy implements it; the agent
// calls it before stopping instances on scale down and deletion, with the
// drain timeout of that call.
type Drainer interface {
	Drain(ctx context.Context, groupID string, instanceIDs []string, timeout time.Duration) error
}

// RouteSink receives the whole routing table whenever it changes (and once
// at start). The proxy implements it.
type RouteSink interface {
	SetRoutes(ctx context.Context, routes []agentapi.Route) error
}

// TargetSink receives the routable instances of every group whenever they
// change (and once at start). The proxy implements it.
type TargetSink interface {
	SetTargets(groups []agentapi.GroupTargets)
}

// NopDrainer is the Drainer used until a proxy is wired: nothing to drain.
type NopDrainer struct{}

// Drain returns at once.
func (NopDrainer) Drain(context.Context, string, []string, time.Duration) error { return nil }

// NopRouteSink discards routing tables.
type NopRouteSink struct{}

// SetRoutes does nothing.
func (NopRouteSink) SetRoutes(context.Context, []agentapi.Route) error { return nil }

// NopTargetSink discards targets.
type NopTargetSink struct{}

// SetTargets does nothing.
func (NopTargetSink) SetTargets([]agentapi.GroupTargets) {}

// RoutesFormat is the format tag of DIR/routes.json. Routes with a project
// or a preview have fields a file of the same format written before lacked;
// such a file loads as project "" and preview false.
const RoutesFormat = "runway-agent-routes/1"

type routesFile struct {
	Format string           `json:"format"`
	Routes []agentapi.Route `json:"routes"`
}

func loadRoutes(path string) (map[agentapi.RouteKey]agentapi.Route, error) {
	out := map[agentapi.RouteKey]agentapi.Route{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, &supervisor.StateError{Path: path, Err: err}
	}
	var rf routesFile
	if err := httpjson.Decode(b, &rf); err != nil {
		return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("invalid JSON: %w", err)}
	}
	if rf.Format != RoutesFormat {
		return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("format %q, want %q", rf.Format, RoutesFormat)}
	}
	for _, r := range rf.Routes {
		if err := validateRoute(&r); err != nil {
			return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("route %s: %w (remove or fix the route in the file)", r.Key(), err)}
		}
		if _, dup := out[r.Key()]; dup {
			return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("route %s appears twice (remove one)", r.Key())}
		}
		out[r.Key()] = r
	}
	if err := proxy.CheckRoutes(proxyRoutes(sortedRoutes(out))); err != nil {
		return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("%w (remove or fix the route in the file)", err)}
	}
	return out, nil
}

// migratePreviewRoutes turns the preview routes of agents before route keys
// had a preview (stored as the route of service <service>-preview, sending
// traffic to <service>'s groups) into preview routes of <service>. A route
// of a service really named <service>-preview routes that service's own
// groups, so it is never taken for one.
func (a *Agent) migratePreviewRoutes() error {
	changed := false
	for k, r := range a.routes {
		svc, ok := strings.CutSuffix(r.Service, naming.PreviewSuffix)
		if r.Preview || !ok || svc == "" || len(r.Backends) == 0 {
			continue
		}
		ownedBySvc := true
		for _, b := range r.Backends {
			g, err := a.sup.Group(b.Group)
			if err != nil || g.Spec.Project != r.Project || g.Spec.Environment != r.Environment || g.Spec.Service != svc {
				ownedBySvc = false
				break
			}
		}
		nr := r
		nr.Service, nr.Preview = svc, true
		if _, taken := a.routes[nr.Key()]; !ownedBySvc || taken || proxy.CheckKey(nr.Key()) != nil {
			continue
		}
		delete(a.routes, k)
		a.routes[nr.Key()] = nr
		changed = true
		a.log.Info("routes file: an old preview route is now the preview route of its service", "was", k.String(), "now", nr.Key().String())
	}
	if !changed {
		return nil
	}
	if err := saveRoutes(a.routesPath, a.routes); err != nil {
		return fmt.Errorf("write routes file: %w", err)
	}
	return nil
}

func saveRoutes(path string, routes map[agentapi.RouteKey]agentapi.Route) error {
	rf := routesFile{Format: RoutesFormat, Routes: sortedRoutes(routes)}
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), fsutil.FileMode)
}

func sortedRoutes(m map[agentapi.RouteKey]agentapi.Route) []agentapi.Route {
	out := make([]agentapi.Route, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key().Less(out[j].Key()) })
	return out
}
