package apiwire

import "time"

// LogLine is one line an instance wrote, as `runway logs` reads it
// (GET /v1/projects/{project}/environments/{env}/services/{service}/logs).
type LogLine struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	Group    string    `json:"group"`
	Release  string    `json:"release,omitempty"`
	Version  string    `json:"version,omitempty"`
	Stream   string    `json:"stream"`
	Text     string    `json:"text"`
}

// LogsQuery selects log lines: of the service's live groups, or of one
// release's group (also after it was deleted) when Release is set.
type LogsQuery struct {
	Project     string
	Environment string
	Service     string
	Release     string
	Instance    string
	// Filter keeps lines whose instance id or text contains it.
	Filter string
	Since  time.Time
	// Tail keeps the last Tail lines (0: all).
	Tail   int
	Follow bool
}

// ServiceEvent is one line of `runway events` (GET /v1/events): a step of
// a release, an instance starting, exiting or changing health, a group
// scaled, a halt, a project applied. Kind "wait" lines are not stored: they
// say what a release in progress waits for right now, and have no ID.
type ServiceEvent struct {
	ID          string    `json:"id,omitempty"`
	At          time.Time `json:"at"`
	Kind        string    `json:"kind"`
	Project     string    `json:"project,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Service     string    `json:"service,omitempty"`
	Release     string    `json:"release,omitempty"`
	Actor       string    `json:"actor"`
	Target      string    `json:"target"`
	State       string    `json:"state,omitempty"`
	// Step is a release event's step index (-1: a state transition).
	Step    int    `json:"step"`
	Message string `json:"message"`
}

// EventFilter selects events; After continues after an event's id (a
// follower that reconnects), Limit keeps the newest (default 100).
type EventFilter struct {
	Project     string
	Environment string
	Service     string
	Release     string
	After       string
	Limit       int
	Follow      bool
}

// Overview is one frame of `runway top`: every service of an environment
// (GET /v1/projects/{project}/environments/{env}/overview).
type Overview struct {
	Project     string            `json:"project"`
	Environment string            `json:"environment"`
	At          time.Time         `json:"at"`
	Window      string            `json:"window"` // the statistics window, such as "30s"
	Services    []ServiceOverview `json:"services"`
}

// ServiceOverview is one service's line of `runway top`.
type ServiceOverview struct {
	Service  string         `json:"service"`
	Versions []VersionShare `json:"versions"`
	Healthy  int            `json:"healthy"`
	Total    int            `json:"total"`
	// RequestsPerSecond, ErrorRate (0-1) and the latency percentiles are
	// over the window; the percentiles are the slowest group's.
	RequestsPerSecond float64 `json:"requests_per_second"`
	ErrorRate         float64 `json:"error_rate"`
	P50Seconds        float64 `json:"p50_seconds"`
	P99Seconds        float64 `json:"p99_seconds"`
	CPUPercent        float64 `json:"cpu_percent"`
	RSSBytes          int64   `json:"rss_bytes"`
	Restarts          int     `json:"restarts"`
	// Alarms are the service's alarms in ALERT.
	Alarms     []string `json:"alarms"`
	InProgress string   `json:"in_progress,omitempty"` // the state of a release in progress
	// Maintenance is the message of the maintenance page while it is on.
	Maintenance string `json:"maintenance,omitempty"`
}

// VersionShare is one group of a service: its version, traffic share and health.
type VersionShare struct {
	Version string `json:"version"`
	Group   string `json:"group"`
	Release string `json:"release"`
	// Weight is the group's share of traffic in percent.
	Weight  int `json:"weight"`
	Healthy int `json:"healthy"`
	Total   int `json:"total"`
}

// Alarm is an alarm of a service and its state as the server last
// evaluated it (GET /v1/alarms): a manifest's alarm block, or a built-in
// one (Builtin, no metric).
type Alarm struct {
	Project     string    `json:"project"`
	Environment string    `json:"environment"`
	Service     string    `json:"service"`
	Name        string    `json:"name"`
	Builtin     bool      `json:"builtin,omitempty"`
	Metric      string    `json:"metric,omitempty"`
	Comparison  string    `json:"comparison,omitempty"`
	Threshold   float64   `json:"threshold,omitempty"`
	For         string    `json:"for,omitempty"`
	Notify      []string  `json:"notify,omitempty"`
	State       string    `json:"state"` // OK, ALERT, NO_DATA
	Since       time.Time `json:"since"`
	Value       string    `json:"value,omitempty"`
	// Doc says when a built-in alarm is in ALERT.
	Doc       string    `json:"doc,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Notification is a webhook delivery of an alarm's change (GET
// /v1/notifications): retried with backoff until delivered or 10 minutes old.
type Notification struct {
	ID          string     `json:"id"`
	CreatedAt   time.Time  `json:"created_at"`
	Project     string     `json:"project"`
	Environment string     `json:"environment"`
	Service     string     `json:"service"`
	Alarm       string     `json:"alarm"`
	Channel     string     `json:"channel"`
	State       string     `json:"state"` // pending, delivered, failed
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	NextAt      *time.Time `json:"next_at,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// AlarmFilter selects alarms and notifications.
type AlarmFilter struct {
	Project, Environment, Service string
}
