package target

import (
	"context"
	"time"

	"github.com/runwayhq/runway/internal/strategy"
)

// Counters are the requests a service's proxy served and failed (5xx of the
// proxy itself, connection errors, no healthy target) since it started.
type Counters struct {
	Served int64 `json:"served"`
	Failed int64 `json:"failed"`
}

// Metrics measure what a service's traffic did.
type Metrics interface {
	// WindowStats are the group's statistics over the last window, which
	// lies within Capabilities.StatsWindowMin and StatsWindowMax.
	WindowStats(ctx context.Context, ref ServiceRef, group string, window time.Duration) (strategy.WindowStats, error)
	// Counters are the service's served and failed request totals
	// (ErrUnsupported when the target does not count).
	Counters(ctx context.Context, ref ServiceRef) (Counters, error)
}
