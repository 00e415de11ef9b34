package target

import (
	"context"
	"errors"

	"github.com/runwayhq/runway/internal/config"
)

// ErrUnsupported is returned (wrapped) by a target for what it cannot do
// (and declares so in its Capabilities); the engine reports it rather than
// pretending.
var ErrUnsupported = errors.New("not supported by this target")

// ErrStoreBehind is wrapped by a target that fences (the local agent) when
// it refuses to act because this server's store is older than what the
// target already saw (a restored backup, a lost WAL); the engine then acts
// no more on the service (docs/design.md, "Fencing"). It is also the
// engine's error kind of that name (engine.ErrStoreBehind).
var ErrStoreBehind = errors.New("StoreBehind")

// ServiceRef names a service in an environment of a project. Two projects'
// services of the same name are different services.
type ServiceRef struct {
	Project     string `json:"project,omitempty"`
	Environment string `json:"environment"`
	Service     string `json:"service"`
}

func (r ServiceRef) String() string {
	if r.Project == "" {
		return r.Environment + "/" + r.Service
	}
	return r.Project + "/" + r.Environment + "/" + r.Service
}

// Target is everything the engine needs from a target. A target that fences
// (the local agent) refuses a server whose store is behind it with an error
// wrapping ErrStoreBehind, from Validate or any mutating call.
type Target interface {
	// Capabilities are what the target can do; they never change while it
	// runs.
	Capabilities() Capabilities
	// Validate checks that what the release refers to exists (command or
	// image, secrets, ports, ...) and reports every problem at once.
	Validate(ctx context.Context, ref ServiceRef, spec *config.Service) error
	Workloads
	Traffic
	Metrics
	Tasks
	Logs
}
