package apiwire

import (
	"encoding/json"
	"time"

	"github.com/runwayhq/runway/internal/strategy"
)

// SourceFile is a manifest file as the client read it.
type SourceFile struct {
	// Name is the file's path relative to the project's root, such as
	// "web/web.service.hcl"; diagnostics name it.
	Name    string `json:"name"`
	Content string `json:"content"`
}

// DeployRequest asks for a new release of one service in one environment.
// It carries the manifest as written, never as resolved: the server parses
// and validates it against its own copy of the project, which alone decides
// protection, target and allowed hosts.
type DeployRequest struct {
	Project     string `json:"project"`
	Environment string `json:"environment"`
	Service     string `json:"service"`
	// Version overrides the manifest's version.
	Version string `json:"version,omitempty"`
	// Sources are the service's manifest file(s).
	Sources []SourceFile `json:"sources"`
	// ProjectSource is the client's runway.hcl. A deploy made against a
	// runway.hcl that differs from the server's copy is refused, naming the
	// difference, so nobody deploys believing in a policy the server lacks.
	ProjectSource string `json:"project_source"`
	// Dir is the absolute directory of the manifest on the machine that runs
	// the release's processes (target local resolves commands and
	// working_dir from it).
	Dir string `json:"dir,omitempty"`
	// RequestID is chosen by the client (a ULID) so a retried or replayed
	// request creates at most one release.
	RequestID string `json:"request_id"`
	// RequestedAt is when the client made the request; requests older than
	// the server's replay window are refused.
	RequestedAt time.Time `json:"requested_at"`
	// Confirmed says a person confirmed the deploy (runway deploy asked, or
	// --yes was given); protected environments refuse a deploy without it.
	Confirmed bool `json:"confirmed,omitempty"`
	// Image pins the release to the image the client pushed, by digest
	// (repository@sha256:…): target docker with a registry only, and only
	// of the repository of the manifest's image, so a rollback runs the
	// same bytes. The server refuses any other.
	Image string `json:"image,omitempty"`
}

// RollbackRequest makes a new release from an earlier one (the previous
// successful release when To is empty).
type RollbackRequest struct {
	Project     string    `json:"project"`
	Environment string    `json:"environment"`
	Service     string    `json:"service"`
	To          string    `json:"to,omitempty"`
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
	// Confirmed: as for deploys, protected environments refuse a rollback
	// nobody confirmed.
	Confirmed bool `json:"confirmed,omitempty"`
}

// HaltRequest stops a release at its next step boundary.
type HaltRequest struct {
	Reason      string    `json:"reason,omitempty"`
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// MaintenanceRequest turns a service's maintenance page on (every request
// answered 503 with Message, or the target's default text) or off.
type MaintenanceRequest struct {
	On          bool      `json:"on"`
	Message     string    `json:"message,omitempty"`
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// Maintenance is a service's maintenance state.
type Maintenance struct {
	On      bool   `json:"on"`
	Message string `json:"message,omitempty"`
}

// ApplyProjectRequest registers a project or changes its definition.
type ApplyProjectRequest struct {
	// Source is runway.hcl.
	Source string `json:"source"`
	// BaseVersion is the version the client showed its diff against (0 for
	// a project the server does not have yet); an apply over a newer version
	// is refused, so two admins never overwrite each other unseen.
	BaseVersion int       `json:"base_version"`
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// Project is a project as the server holds it.
type Project struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	Digest    string    `json:"digest"`
	UpdatedBy string    `json:"updated_by"`
	UpdatedAt time.Time `json:"updated_at"`
	// Source is runway.hcl as applied.
	Source string `json:"source,omitempty"`
	// Definition is the parsed project (config.Project as JSON).
	Definition json.RawMessage `json:"definition,omitempty"`
	// Changed is set on an apply's answer: false when the source was
	// already the server's.
	Changed bool `json:"changed,omitempty"`
}

// Release is a release as the API shows it.
type Release struct {
	ID          string     `json:"id"`
	Project     string     `json:"project,omitempty"`
	Environment string     `json:"environment"`
	Service     string     `json:"service"`
	Version     string     `json:"version"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	Digest      string     `json:"digest"`
	State       string     `json:"state"`
	Done        bool       `json:"done"`
	ErrorKind   string     `json:"error_kind,omitempty"`
	Error       string     `json:"error,omitempty"`
	Served      int64      `json:"served"`
	Failed      int64      `json:"failed"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	RollbackOf  string     `json:"rollback_of,omitempty"`
	// SwitchBack is set on the answer of a rollback that, instead of making
	// a new release, halted this one inside its scale_down_delay: it ends
	// FailureClean (Halted) with RollbackOf serving again.
	SwitchBack bool            `json:"switch_back,omitempty"`
	Manifest   json.RawMessage `json:"manifest,omitempty"`
	// Target is the target the release ran on.
	Target string `json:"target,omitempty"`
	// Runner is the replica that runs (or last ran) the release when
	// several servers share a PostgreSQL store; RunnerUntil is when its
	// claim lapses unless renewed (another replica then takes over).
	Runner      string     `json:"runner,omitempty"`
	RunnerUntil *time.Time `json:"runner_until,omitempty"`
	// Secrets are the secret versions the release pins, by variable name:
	// versions only, never values.
	Secrets []SecretPin `json:"secrets,omitempty"`
}

// SecretPin is one secret version a release pins.
type SecretPin struct {
	// Name is the variable the processes receive; Key the secret it holds.
	Name    string `json:"name"`
	Key     string `json:"key"`
	Service string `json:"service,omitempty"` // empty: environment-wide
	Version int    `json:"version"`
}

// Event is a timestamped step of a release.
type Event struct {
	At      time.Time `json:"at"`
	State   string    `json:"state"`
	Step    int       `json:"step"`
	Message string    `json:"message"`
}

// ReleaseDetail is a release with its events.
type ReleaseDetail struct {
	Release
	Events []Event `json:"events"`
}

// ServiceStatus is what runs for a service in an environment.
type ServiceStatus struct {
	Project     string   `json:"project,omitempty"`
	Environment string   `json:"environment"`
	Service     string   `json:"service"`
	Current     *Release `json:"current,omitempty"`
	InProgress  *Release `json:"in_progress,omitempty"`
	Groups      []Group  `json:"groups"`
	Routes      []Route  `json:"routes"`
	// Maintenance, when set, is the message of the maintenance page that
	// answers every request of the service (503).
	Maintenance string `json:"maintenance,omitempty"`
	// StoreBehind, when set, says that the server's store is behind the
	// target, so the server does not act on the service, and how to recover.
	StoreBehind string `json:"store_behind,omitempty"`
	// Alarms are the service's alarms in ALERT (the built-in ones:
	// release_failure_dirty, no_healthy_instance, instance_crash_looping).
	Alarms []string `json:"alarms,omitempty"`
	// FailureDirty are the releases that ended FailureDirty since the
	// service's last Success, newest first: their clean-up is owed until a
	// later release succeeds.
	FailureDirty []*Release `json:"failure_dirty,omitempty"`
}

// Group is the instances of one release.
type Group struct {
	Name      string     `json:"name"`
	Release   string     `json:"release"`
	Version   string     `json:"version"`
	Desired   int        `json:"desired"`
	Healthy   int        `json:"healthy"`
	Starting  int        `json:"starting"`
	Unhealthy int        `json:"unhealthy"`
	Instances []Instance `json:"instances,omitempty"`
}

// Instance is one running process or container.
type Instance struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Address  string `json:"address,omitempty"`
	Restarts int    `json:"restarts"`
}

// Route is a group receiving a share of a service's traffic: the engine's
// (strategy.Route, the traffic contract's), on the wire as it is.
type Route = strategy.Route

// ReleaseFilter selects releases in list requests.
type ReleaseFilter struct {
	Project     string
	Environment string
	Service     string
	Limit       int
}
