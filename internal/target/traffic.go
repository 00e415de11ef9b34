package target

import (
	"context"

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
