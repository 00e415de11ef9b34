package target

import (
	"context"
	"time"

	"github.com/runwayhq/runway/internal/config"
)

// GroupSpec is what a target needs to run a group: the release's resolved
// manifest and the instance count.
type GroupSpec struct {
	Ref     ServiceRef
	Group   string // deterministic: strategy.GroupName, within Capabilities.GroupNameMax
	Release string
	// Spec is the release's manifest; nil when the release is unknown to
	// this server (a target may still scale an existing group).
	Spec  *config.Service
	Count int
}

// GroupStatus is an observation of a group's instances.
type GroupStatus struct {
	Exists    bool
	Desired   int
	Healthy   int
	Starting  int
	Unhealthy int
	// Terminated counts instances that crashed or were terminated since the
	// group was created; a release fails once its new group's count passes
	// the crash budget (scale.max_terms, see strategy.CrashBudget).
	Terminated int
}

// GroupInfo is one group of a service.
type GroupInfo struct {
	Name    string
	Release string
	Status  GroupStatus
}

// Workloads run groups of instances. Every call that stops instances takes
// the drain: how long their requests in flight may take (deploy.drain_timeout).
type Workloads interface {
	// EnsureGroup creates the group if missing and sets its instance count.
	EnsureGroup(ctx context.Context, g GroupSpec) error
	// ScaleGroup sets an existing group's count; instances removed stop
	// after their requests finish or drain passes. A missing group scaled to
	// 0 is not an error.
	ScaleGroup(ctx context.Context, ref ServiceRef, group string, count int, drain time.Duration) error
	// ObserveGroup reports the group's instances; Exists is false if missing
	// (also after DeleteGroup).
	ObserveGroup(ctx context.Context, ref ServiceRef, group string) (GroupStatus, error)
	// DeleteGroup removes the group from the routes, waits for its requests
	// in flight (at most drain) and deletes it. Missing is not an error.
	DeleteGroup(ctx context.Context, ref ServiceRef, group string, drain time.Duration) error
	// ListGroups returns the service's groups, sorted by name.
	ListGroups(ctx context.Context, ref ServiceRef) ([]GroupInfo, error)
}

// InstanceInfo is one instance of a group as the target sees it.
type InstanceInfo struct {
	ID string
	// State is starting, healthy, unhealthy, stopping or exited.
	State     string
	Restarts  int
	CrashLoop bool
	StartedAt time.Time
	// LastExit says how the instance last ended ("exit status 1").
	LastExit   string
	CPUPercent float64
	RSSBytes   int64
}

// InstanceReporter is implemented by targets that report a group's instances
// one by one: the server's event recorder (starts, exits, health changes)
// and `runway top` (CPU, memory, restarts) read it. A target without it
// shows only the counts of GroupStatus.
type InstanceReporter interface {
	// Instances returns the group's instances by id; none when it is missing.
	Instances(ctx context.Context, ref ServiceRef, group string) ([]InstanceInfo, error)
}
