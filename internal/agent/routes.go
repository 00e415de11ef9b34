package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/supervisor"
)

// Backend is one group receiving a share of a service's traffic.
type Backend struct {
	Group  string `json:"group"`
	Weight int    `json:"weight"`
}

// Route says which groups serve one service in one environment, with which
// weights, for which host names.
type Route struct {
	Environment string    `json:"environment"`
	Service     string    `json:"service"`
	Hosts       []string  `json:"hosts"`
	Backends    []Backend `json:"backends"`
	// PathPrefix limits the route to a path and the paths below it ("/api").
	PathPrefix string `json:"path_prefix,omitempty"`
	// Sticky keeps a client on the group it first reached (canaries).
	Sticky bool `json:"sticky,omitempty"`
	// Maintenance, when set, answers every request with 503 and this message.
	Maintenance string    `json:"maintenance,omitempty"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

func (r Route) key() string { return r.Environment + "/" + r.Service }

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
	SetRoutes(ctx context.Context, routes []Route) error
}

// TargetSink receives the routable instances of every group whenever they
// change (and once at start). The proxy implements it.
type TargetSink interface {
	SetTargets(groups []supervisor.GroupTargets)
}

// NopDrainer is the Drainer used until a proxy is wired: nothing to drain.
type NopDrainer struct{}

// Drain returns at once.
func (NopDrainer) Drain(context.Context, string, []string, time.Duration) error { return nil }

// NopRouteSink discards routing tables.
type NopRouteSink struct{}

// SetRoutes does nothing.
func (NopRouteSink) SetRoutes(context.Context, []Route) error { return nil }

// NopTargetSink discards targets.
type NopTargetSink struct{}

// SetTargets does nothing.
func (NopTargetSink) SetTargets([]supervisor.GroupTargets) {}

// RoutesFormat is the format tag of DIR/routes.json.
const RoutesFormat = "runway-agent-routes/1"

type routesFile struct {
	Format string  `json:"format"`
	Routes []Route `json:"routes"`
}

func loadRoutes(path string) (map[string]Route, error) {
	out := map[string]Route{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, &supervisor.StateError{Path: path, Err: err}
	}
	var rf routesFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rf); err != nil {
		return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("invalid JSON: %w", err)}
	}
	if rf.Format != RoutesFormat {
		return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("format %q, want %q", rf.Format, RoutesFormat)}
	}
	for _, r := range rf.Routes {
		if err := r.validate(); err != nil {
			return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("route %s: %w", r.key(), err)}
		}
		out[r.key()] = r
	}
	return out, nil
}

func saveRoutes(path string, routes map[string]Route) error {
	rf := routesFile{Format: RoutesFormat, Routes: sortedRoutes(routes)}
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), fsutil.FileMode)
}

func sortedRoutes(m map[string]Route) []Route {
	out := make([]Route, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}
