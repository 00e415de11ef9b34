package target

import (
	"context"
	"errors"

	"github.com/runwayhq/runway/internal/strategy"
)

// Traffic routes a service's requests to its groups by weight.
type Traffic interface {
	// Routes returns the service's weighted groups (nil when it has none).
	Routes(ctx context.Context, ref ServiceRef) ([]strategy.Route, error)
	// SetRoutes replaces them atomically. Weights are relative; at most
	// Capabilities.MaxWeightedGroups groups, each weight at most
	// Capabilities.MaxWeight. An empty list removes the traffic and is a
	// no-op for a service without routes.
	SetRoutes(ctx context.Context, ref ServiceRef, routes []strategy.Route) error
	// SetPreview routes the service's preview host to group ("" removes
	// it). A target without Capabilities.Preview returns ErrUnsupported for
	// a group, and does nothing for "".
	SetPreview(ctx context.Context, ref ServiceRef, group string) error
}

// Maintainer is implemented by targets whose traffic layer can answer a
// service's every request with a maintenance page (503) instead of
// routing it: the server's maintenance on/off. A target without it is
// refused by the server, naming the target.
type Maintainer interface {
	// SetMaintenance turns the page on, with message ("" for the target's
	// default text), or off. A service without a route is ErrNoRoute.
	SetMaintenance(ctx context.Context, ref ServiceRef, on bool, message string) error
	// Maintenance is the page's message while on, "" while off.
	Maintenance(ctx context.Context, ref ServiceRef) (string, error)
}

// ErrNoRoute: the service has no route yet (nothing was released), so
// there is no traffic to answer with a maintenance page.
var ErrNoRoute = errors.New("the service has no route yet: release it first")
