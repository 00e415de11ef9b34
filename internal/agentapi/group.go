package agentapi

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/runwayhq/runway/internal/config"
)

// Health check types.
const (
	HealthHTTP = "http"
	HealthTCP  = "tcp"
	HealthExec = "exec"
	HealthNone = "none"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("1.5s"); a JSON number is taken as nanoseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON accepts "30s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want a Go duration such as 2s or 500ms", s)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"2s\"", b)
	}
	*d = Duration(n)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// HealthCheck says how the supervisor decides an instance is healthy.
type HealthCheck struct {
	// Type is http, tcp, exec or none (the default: running means healthy).
	Type string `json:"type,omitempty"`
	// Path is the URL path of an http check ("/healthz").
	Path string `json:"path,omitempty"`
	// Command is the argv of an exec check; templates are substituted.
	Command            []string `json:"command,omitempty"`
	Interval           Duration `json:"interval,omitempty"`
	Timeout            Duration `json:"timeout,omitempty"`
	StartPeriod        Duration `json:"start_period,omitempty"`
	HealthyThreshold   int      `json:"healthy_threshold,omitempty"`
	UnhealthyThreshold int      `json:"unhealthy_threshold,omitempty"`
}

// Limits are the resources an instance may use; zero means unlimited.
type Limits struct {
	// CPU is a number of cores (0.5 = half a core).
	CPU float64 `json:"cpu,omitempty"`
	// MemoryMB is the memory limit in MiB.
	MemoryMB int64 `json:"memory_mb,omitempty"`
}

// GroupSpec describes a group: the instances of one service at one release.
type GroupSpec struct {
	// Name identifies the group; creating a group is idempotent by name.
	Name        string            `json:"name"`
	Project     string            `json:"project,omitempty"`
	Service     string            `json:"service"`
	Environment string            `json:"environment"`
	ReleaseID   string            `json:"release_id"`
	Version     string            `json:"version,omitempty"`
	Command     []string          `json:"command"`
	WorkDir     string            `json:"work_dir,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	// Secrets are the names of the variables that hold the release's
	// secrets; their values come on a call of their own (PUT
	// /v1/groups/{name}/secrets) and live only in the agent's memory.
	Secrets     []string    `json:"secrets,omitempty"`
	Instances   int         `json:"instances"`
	Health      HealthCheck `json:"health"`
	StopTimeout Duration    `json:"stop_timeout,omitempty"`
	Limits      Limits      `json:"limits"`
	// Image, when set, runs each instance as a container of this image on
	// the agent's container engine instead of Command as a process; Command
	// then replaces the image's command and WorkDir is not used.
	// ContainerPort is the port the service listens on inside the container
	// (the manifest's port, PORT and {{PORT}}), published on the instance's
	// port on 127.0.0.1.
	Image         string `json:"image,omitempty"`
	ContainerPort int    `json:"container_port,omitempty"`
	// NoInit runs the image's program as the container's PID 1 instead of
	// under a minimal init (the default: signals forwarded, zombies reaped).
	NoInit bool `json:"no_init,omitempty"`
}

// DefaultStopTimeout is the stop timeout of a group whose spec has none:
// how long a stopping instance has after SIGTERM before SIGKILL. It is the
// manifest's hooks.stop_timeout default (one declaration: the schema's tag).
var DefaultStopTimeout = config.Defaults[config.Hooks]().StopTimeout.Duration

// DefaultDrainTimeout is the drain of a scale down or deletion that names
// none: how long the proxy waits for in-flight requests of the instances
// it stops routing to. It is the manifest's deploy.drain_timeout default.
var DefaultDrainTimeout = config.Defaults[config.Deploy]().DrainTimeout.Duration

// MaxGroupName is the longest group name (a DNS label's 63 characters).
const MaxGroupName = 63

// GroupStatus is the observed state of a group.
type GroupStatus struct {
	Name      string    `json:"name"`
	Spec      GroupSpec `json:"spec"`
	State     string    `json:"state"` // active or deleting
	CreatedAt time.Time `json:"created_at"`
	// Limits says whether resource limits are enforced, and if not why.
	Limits    string           `json:"limits"`
	Counts    map[string]int   `json:"counts"`
	Instances []InstanceStatus `json:"instances"`
	// SecretsMissing: the spec names secrets the agent holds no values of
	// (it restarted since they were sent); instances that need to start
	// wait for them, running ones go on.
	SecretsMissing bool `json:"secrets_missing,omitempty"`
}

// GroupSecrets is the body of PUT /v1/groups/{name}/secrets: the value of
// every variable the group's spec names in secrets, and no other.
type GroupSecrets struct {
	Values map[string]string `json:"values"`
}

// Group states.
const (
	GroupActive   = "active"
	GroupDeleting = "deleting"
)

// Instance states.
const (
	StateStarting  = "starting"
	StateHealthy   = "healthy"
	StateUnhealthy = "unhealthy"
	StateStopping  = "stopping"
	StateExited    = "exited"
	StateStopped   = "stopped"
)

// InstanceStatus is the observed state of one instance.
type InstanceStatus struct {
	ID                  string        `json:"id"`
	Group               string        `json:"group"`
	Index               int           `json:"index"`
	State               string        `json:"state"`
	PID                 int           `json:"pid,omitempty"`
	Port                int           `json:"port"`
	Addr                string        `json:"addr"`
	Adopted             bool          `json:"adopted,omitempty"`
	Restarts            int           `json:"restarts"`
	ConsecutiveFailures int           `json:"consecutive_failures"`
	CrashLoop           bool          `json:"crash_loop"`
	StartedAt           time.Time     `json:"started_at,omitzero"`
	LastExit            string        `json:"last_exit,omitempty"`
	NextRestartAt       time.Time     `json:"next_restart_at,omitzero"`
	LastHealth          *HealthResult `json:"last_health,omitempty"`
	CPUPercent          float64       `json:"cpu_percent"`
	RSSBytes            int64         `json:"rss_bytes"`
}

// HealthResult is the outcome of one health check.
type HealthResult struct {
	Time   time.Time `json:"time"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail"`
}

// Target is a routable instance.
type Target struct {
	InstanceID string `json:"instance_id"`
	Addr       string `json:"addr"`
}

// GroupTargets are the routable instances of one group.
type GroupTargets struct {
	Group       string   `json:"group"`
	Service     string   `json:"service"`
	Environment string   `json:"environment"`
	ReleaseID   string   `json:"release_id"`
	Targets     []Target `json:"targets"`
}
