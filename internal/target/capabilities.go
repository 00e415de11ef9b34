package target

import (
	"fmt"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
)

// Capabilities are what a target can do, declared once by the target and
// read by the planner (Plan) and by validation (Validation) instead of
// guessing. A target never claims more than it does: the conformance suite
// (package targettest) checks every field against the target.
type Capabilities struct {
	// MaxWeight is the largest weight one group of a route may have
	// (weights are relative integers from 0 to MaxWeight).
	MaxWeight int
	// MaxWeightedGroups is how many groups one route can carry.
	MaxWeightedGroups int
	// StatsWindowMin and StatsWindowMax bound the statistics windows
	// WindowStats can measure (a canary's pause is its analysis window).
	StatsWindowMin, StatsWindowMax time.Duration
	// Preview: SetPreview routes a preview host (blue_green's preview and
	// verify need it).
	Preview bool
	// TaskReattach: a task started by a server that then crashed is observed
	// to its end by the next server (ObserveTask), never started again.
	TaskReattach bool
	// GroupNameMax is the longest group name the target accepts (ALB target
	// groups: 32, the local supervisor: 63); strategy.GroupName keeps names
	// within it.
	GroupNameMax int
	// ReplicaRatio: the target splits traffic between weighted groups by
	// their instance counts, not by the weights themselves (Kubernetes
	// traffic "service": one Service over the groups' pods). SetRoutes then
	// refuses weights the groups' counts do not give, and validation
	// refuses canary steps no count gives (config.ReplicaRatioWeights).
	ReplicaRatio bool
	// NoStats: the target measures no per-group statistics (WindowStats
	// and Counters return ErrUnsupported; StatsWindowMin and
	// StatsWindowMax are zero), so validation refuses canary releases,
	// whose analysis reads them.
	NoStats bool
}

// Plan is what the planner must respect.
func (c Capabilities) Plan() strategy.Limits {
	return strategy.Limits{MaxWeight: c.MaxWeight, MaxWeightedGroups: c.MaxWeightedGroups,
		GroupNameMax: c.GroupNameMax, NoPreview: !c.Preview}
}

// Validation is what `runway validate` (and the server) check a manifest
// against.
func (c Capabilities) Validation() config.TargetLimits {
	return config.TargetLimits{StatsWindowMin: c.StatsWindowMin, StatsWindowMax: c.StatsWindowMax, ReplicaRatio: c.ReplicaRatio, NoStats: c.NoStats}
}

// Check reports a declaration no planner can work with.
func (c Capabilities) Check() error {
	switch {
	case c.MaxWeight < 100:
		// A canary step routes weights of 1 to 99 out of 100.
		return fmt.Errorf("capabilities: max weight %d: at least 100", c.MaxWeight)
	case c.MaxWeightedGroups < 2:
		return fmt.Errorf("capabilities: %d weighted groups: at least 2 (a canary and its stable group)", c.MaxWeightedGroups)
	case c.NoStats && (c.StatsWindowMin != 0 || c.StatsWindowMax != 0):
		return fmt.Errorf("capabilities: no statistics but windows %s to %s", c.StatsWindowMin, c.StatsWindowMax)
	case !c.NoStats && (c.StatsWindowMin <= 0 || c.StatsWindowMax < c.StatsWindowMin):
		return fmt.Errorf("capabilities: statistics windows %s to %s: want 0 < min <= max", c.StatsWindowMin, c.StatsWindowMax)
	case c.GroupNameMax < strategy.MinGroupNameMax:
		return fmt.Errorf("capabilities: group names of at most %d characters: at least %d", c.GroupNameMax, strategy.MinGroupNameMax)
	}
	return nil
}
