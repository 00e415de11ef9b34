package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
)

// ErrUnsupported is returned (wrapped) by a driver for a capability its
// target lacks; the engine reports it rather than pretending.
var ErrUnsupported = errors.New("not supported by this target")

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

// Drivers maps a target kind (an environment's target: "local", "docker",
// "kubernetes", "aws") to the driver that runs releases there. The server
// builds it once; a release whose target has no driver is refused at submit.
type Drivers map[string]Driver

// DefaultTarget is the target of releases recorded before releases named
// theirs.
const DefaultTarget = "local"

// ErrNoDriver is returned (wrapped) for a target this engine has no driver for.
var ErrNoDriver = errors.New("no driver for this target")

// For returns the driver of target ("" is DefaultTarget).
func (d Drivers) For(target string) (Driver, error) {
	if target == "" {
		target = DefaultTarget
	}
	if drv, ok := d[target]; ok {
		return drv, nil
	}
	return nil, fmt.Errorf("target %q: %w", target, ErrNoDriver)
}

// Targets lists the targets that have a driver, sorted.
func (d Drivers) Targets() []string {
	out := make([]string, 0, len(d))
	for k := range d {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// GroupSpec is what a driver needs to run a group: the release's resolved
// manifest and the instance count.
type GroupSpec struct {
	Ref     ServiceRef
	Group   string // deterministic: strategy.GroupName(service, release)
	Release string
	// Spec is the release's manifest; nil when the release is unknown to
	// this server (a driver may still scale an existing group).
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

// Counters are the requests a service's proxy served and failed (5xx of the
// proxy itself, connection errors, no healthy target) since it started.
type Counters struct {
	Served int64 `json:"served"`
	Failed int64 `json:"failed"`
}

// Task is a one-off command run with a release's environment.
type Task struct {
	// ID is deterministic per release and task; a driver that can should
	// run a task with a given ID at most once.
	ID      string
	Name    string
	Ref     ServiceRef
	Release string
	Spec    *config.Service
	Command []string
	// PreviewGroup, when set, means the task gets PREVIEW_URL: the preview
	// route of that group.
	PreviewGroup string
}

// TaskResult is how a task ended.
type TaskResult struct {
	ExitCode int
	Output   string // the tail of its output, for the release's events
}

// Driver is what the engine needs from a target. Every method is idempotent:
// the engine calls it again after a crash with the same arguments. A target
// that fences (the local agent) refuses a server whose store is behind it
// with an error wrapping ErrStoreBehind, from Validate or any mutating
// call; the release then acts no more on the service.
type Driver interface {
	// Validate checks that what the release refers to exists (command or
	// image, secrets, ports, ...) and reports every problem at once.
	Validate(ctx context.Context, ref ServiceRef, spec *config.Service) error
	// EnsureGroup creates the group if missing and sets its instance count.
	EnsureGroup(ctx context.Context, g GroupSpec) error
	// ScaleGroup sets an existing group's count; instances removed stop after
	// their requests finish or drain passes. A missing group scaled to 0 is
	// not an error.
	ScaleGroup(ctx context.Context, ref ServiceRef, group string, count int, drain time.Duration) error
	// ObserveGroup reports the group's instances; Exists is false if missing.
	ObserveGroup(ctx context.Context, ref ServiceRef, group string) (GroupStatus, error)
	// DeleteGroup removes the group from the routes, waits for its requests
	// in flight (at most drain) and deletes it. Missing is not an error.
	DeleteGroup(ctx context.Context, ref ServiceRef, group string, drain time.Duration) error
	// ListGroups returns the service's groups.
	ListGroups(ctx context.Context, ref ServiceRef) ([]GroupInfo, error)
	// Routes returns the service's routes; SetRoutes replaces them atomically.
	Routes(ctx context.Context, ref ServiceRef) ([]strategy.Route, error)
	SetRoutes(ctx context.Context, ref ServiceRef, routes []strategy.Route) error
	// SetPreview routes the service's preview host to group ("" removes it).
	SetPreview(ctx context.Context, ref ServiceRef, group string) error
	// WindowStats are the group's proxy statistics over the last window.
	WindowStats(ctx context.Context, ref ServiceRef, group string, window time.Duration) (strategy.WindowStats, error)
	// Counters are the service's served and failed request totals.
	Counters(ctx context.Context, ref ServiceRef) (Counters, error)
	// RunTask runs a one-off task to completion.
	RunTask(ctx context.Context, t Task) (TaskResult, error)
}

// CrashReport says why a group's instances crash: one crashed instance, how
// it ended, and the last lines of its output.
type CrashReport struct {
	Instance string
	Exit     string   // "exit status 1", "unhealthy: ..."
	Lines    []string // the last lines of its log, oldest first
}

// CrashReporter is implemented by drivers that can read why a group's
// instances crashed. The engine quotes the report in the error of a release
// whose new group exceeds its crash budget, so the one line that says why
// ("FATAL: DATABASE_URL is not set") is where the user looks first.
type CrashReporter interface {
	CrashReport(ctx context.Context, ref ServiceRef, group string) (CrashReport, error)
}
