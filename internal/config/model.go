package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The types below are the schema: the parser decodes HCL into them by their
// `hcl` tags, fills omitted fields from their `default` tags, and
// `runway docs manifest` renders the reference from their `doc` tags, so
// parser and documentation cannot drift apart.
//
// Tag grammar:
//
//	hcl:"name"          an attribute
//	hcl:"name,block"    a nested block (struct: at most one; *struct: optional; []struct: repeated)
//	hcl:",label"        the block's label
//	default:"..."       the default in HCL syntax; `defaultdoc` documents computed defaults
//	doc:"..."           one sentence for the reference
//	enum:"a|b|c"        the allowed values of a string
//	planned:"..."       the block is accepted and validated but not acted on yet; why (docs mark it, validate warns)

// Project is runway.hcl: the project, its environments, network and notification channels.
type Project struct {
	Name         string         `json:"name"`
	Domain       string         `json:"domain,omitempty"`
	Environments []*Environment `json:"environments"`
	Network      Network        `json:"network"`
	Notify       []*Notify      `json:"notify,omitempty"`

	// File is the path of runway.hcl; Dir its directory.
	File string `json:"-"`
	Dir  string `json:"-"`
}

// projectFile is the top level of runway.hcl.
type projectFile struct {
	Project      projectBlock   `hcl:"project,block" doc:"The project: its name (the label) and domain. Exactly one."`
	Environments []*Environment `hcl:"environment,block" doc:"An environment releases go to, such as development, staging or production. At least one."`
	Network      Network        `hcl:"network,block" doc:"The address space environments are planned in (see runway netplan)."`
	Notify       []*Notify      `hcl:"notify,block" doc:"A notification channel that alarms report to: a signed JSON POST per alarm that fires or resolves."`
}

type projectBlock struct {
	Name   string `hcl:",label" doc:"Project name: lower-case letters, digits and dashes."`
	Domain string `hcl:"domain" default:"\"\"" doc:"DNS domain services live under (<service>.<environment>.<domain>); without it they live at <service>.<environment>.localhost."`
}

// Environment is one place releases go to.
type Environment struct {
	Name      string   `hcl:",label" json:"name" doc:"Environment name: lower-case letters, digits and dashes."`
	Target    string   `hcl:"target" json:"target" default:"\"local\"" enum:"local|docker|kubernetes|aws" doc:"Where services of this environment run: local (processes on this machine), docker, kubernetes or aws."`
	Region    string   `hcl:"region" json:"region,omitempty" default:"\"\"" doc:"Cloud region (required for target aws), such as us-east-2."`
	Zones     []string `hcl:"zones" json:"zones,omitempty" default:"[]" defaultdoc:"the first network.zones zones of the region (a, b, c)" doc:"Availability zone suffixes to spread over, such as [\"a\", \"b\", \"c\"]."`
	Protected bool     `hcl:"protected" json:"protected" default:"false" doc:"A protected environment refuses the recreate strategy, needs confirmation for changes and gets highly available infrastructure."`
	// HostsAllowed widens where services of the environment may take host names.
	HostsAllowed []string `hcl:"hosts_allowed" json:"hosts_allowed,omitempty" default:"[]" doc:"Host names outside <environment>.<domain> (and <environment>.localhost) that services of this environment may serve, such as [\"www.acme.com\"]; \"*.acme.com\" allows every name under acme.com."`
	// Registry and Docker are settings of target docker.
	Registry string  `hcl:"registry" json:"registry,omitempty" default:"\"\"" defaultdoc:"none: images stay on the engine that built them (target kubernetes requires one)" doc:"Targets docker, kubernetes and aws: registry and prefix images are pushed to, as host[:port]/prefix (\"registry.acme.com/web\"; for aws the account's ECR registry and the project, \"123456789012.dkr.ecr.us-east-2.amazonaws.com/saas\", pushed with ECR's credentials); releases then pin the pushed digest, so a rollback runs the same bytes."`
	Docker   *Docker `hcl:"docker,block" json:"docker,omitempty" doc:"Target docker: which container engine runs the environment's services. Optional."`
	// Kubernetes is the settings of target kubernetes (kubernetes.go).
	Kubernetes *Kubernetes `hcl:"kubernetes,block" json:"kubernetes,omitempty" doc:"Target kubernetes: which cluster, context and namespace the environment's services run in, and how traffic reaches them. Optional."`
}

// Docker chooses the container engine of a docker environment.
type Docker struct {
	Host string `hcl:"host" json:"host,omitempty" default:"\"\"" defaultdoc:"DOCKER_HOST, else the first of Docker's and podman's usual sockets that exists" doc:"Address of the Docker Engine API (Docker or podman), such as \"unix:///var/run/docker.sock\" or \"tcp://10.0.0.5:2376\"."`
}

// Network is the address space environments are planned in.
type Network struct {
	IPSpace      string   `hcl:"ip_space" json:"ip_space" default:"\"10.0.0.0/8\"" doc:"The private IPv4 range all environments are allocated from."`
	Reserved     []string `hcl:"reserved" json:"reserved,omitempty" default:"[]" doc:"Ranges used elsewhere (VPNs, peered networks, offices) that are never allocated."`
	RegionPrefix int      `hcl:"region_prefix" json:"region_prefix" default:"16" doc:"Prefix length of the block given to each environment-region."`
	ZonePrefix   int      `hcl:"zone_prefix" json:"zone_prefix" default:"18" doc:"Prefix length of the block given to each availability zone."`
	SubnetPrefix int      `hcl:"subnet_prefix" json:"subnet_prefix" default:"20" doc:"Prefix length of each subnet tier inside a zone."`
	Zones        int      `hcl:"zones" json:"zones" default:"3" doc:"Availability zones per environment-region (one more zone-sized block is kept spare)."`
	Tiers        []string `hcl:"tiers" json:"tiers" default:"[\"public\", \"private\", \"data\", \"spare\"]" doc:"Subnet tiers created in every zone, in allocation order."`
}

// Notify is a notification channel.
type Notify struct {
	Name    string `hcl:",label" json:"name" doc:"Channel name, referenced by alarms."`
	Webhook string `hcl:"webhook" json:"webhook" required:"true" doc:"HTTPS URL that receives a JSON POST per notification."`
	Secret  string `hcl:"secret" json:"secret,omitempty" default:"\"\"" doc:"Name of the key that signs notifications (header X-Runway-Signature: sha256=HMAC of the timestamp, a dot and the body); the server reads the key itself, never the manifest. Empty: notifications are not signed."`
}

// Service is the resolved manifest of one service for one environment.
type Service struct {
	Name       string            `hcl:",label" json:"name" doc:"Service name: lower-case letters, digits and dashes."`
	Command    []string          `hcl:"command" json:"command,omitempty" default:"[]" doc:"Program and arguments to run, for process targets (local). Relative paths are resolved from the manifest's directory."`
	Image      string            `hcl:"image" json:"image,omitempty" default:"\"\"" defaultdoc:"with build: <service>:{{VERSION}} (under the environment's registry when it has one)" doc:"Container image, for container targets (docker, kubernetes, aws), with a tag or digest, such as \"web:{{VERSION}}\"; with build, the name the built image is tagged with."`
	Build      *Build            `hcl:"build,block" json:"build,omitempty" doc:"Target docker: builds the image from a directory with a Dockerfile (runway build; runway deploy builds when the tag is missing). Optional."`
	Init       bool              `hcl:"init" json:"init" default:"true" doc:"Target docker: a minimal init runs as the container's PID 1, forwarding signals to the program and reaping zombies; false runs the image's program as PID 1, which must then handle SIGTERM itself."`
	Version    string            `hcl:"version" json:"version,omitempty" default:"\"\"" defaultdoc:"none: given by runway deploy --version" doc:"Version of the release, shown in status and passed as RUNWAY_VERSION."`
	Port       int               `hcl:"port" json:"port" default:"8080" doc:"Port the service listens on inside its container; process targets get a free port in PORT and {{PORT}} instead."`
	WorkingDir string            `hcl:"working_dir" json:"working_dir" default:"\".\"" doc:"Working directory of processes, relative to the manifest's directory."`
	Env        map[string]string `hcl:"env" json:"env,omitempty" default:"{}" doc:"Environment variables; values may use template values such as {{PORT}}."`
	Secrets    []string          `hcl:"secrets" json:"secrets,omitempty" default:"[]" mapto:"secret_env" doc:"Secrets injected as environment variables of the same name, such as [\"DATABASE_URL\"] (values live in Runway's secret store: runway secret put). A release pins each one's current version: the service's own secret, else the environment-wide one. A map VARIABLE = \"KEY\" here is the same as secret_env."`
	SecretEnv  map[string]string `hcl:"secret_env" json:"secret_env,omitempty" default:"{}" doc:"Secrets injected under another variable name: VARIABLE = \"KEY\" (such as DB_URL = \"DATABASE_URL\"); pinned like secrets. Also written as secrets = { VARIABLE = \"KEY\" }."`
	Hosts      []string          `hcl:"hosts" json:"hosts,omitempty" default:"[]" doc:"Extra host names routed to the service, besides <service>.<environment>.<domain or localhost>: exact lower-case names (wildcards such as *.acme.com are not supported)."`
	Health     Health            `hcl:"health,block" json:"health" doc:"How Runway decides an instance may receive traffic."`
	Resources  Resources         `hcl:"resources,block" json:"resources" doc:"Resource limits per instance."`
	Scale      Scale             `hcl:"scale,block" json:"scale" doc:"How many instances run."`
	Autoscale  *Autoscale        `hcl:"autoscale,block" json:"autoscale,omitempty" doc:"Scales between scale.min and scale.max to keep a metric near a target. Optional." planned:"Runway does not autoscale yet: the instance count stays scale.desired"`
	Schedules  []*Schedule       `hcl:"schedule,block" json:"schedules,omitempty" doc:"Sets the desired count at times given by a cron expression. Optional, repeatable." planned:"Runway does not run schedules yet: the instance count stays scale.desired"`
	Deploy     Deploy            `hcl:"deploy,block" json:"deploy" doc:"How releases roll out."`
	Hooks      Hooks             `hcl:"hooks,block" json:"hooks" doc:"Commands run around a release and how instances stop."`
	Alarms     []*Alarm          `hcl:"alarm,block" json:"alarms,omitempty" doc:"A condition on a metric, evaluated by the server every 10 s, that notifies channels when it fires and resolves. Optional, repeatable."`

	// Environment is the environment this manifest was resolved for ("" for the base).
	Environment string `json:"environment,omitempty"`
	// Project is the name of the project the service belongs to; Domain its
	// domain ("" means services live under .localhost).
	Project string `json:"project,omitempty"`
	Domain  string `json:"domain,omitempty"`
	// Protected is the environment's protection (see Environment.Protected)
	// and Target its target; both come from runway.hcl.
	Protected bool   `json:"protected,omitempty"`
	Target    string `json:"target,omitempty"`
	// File is the manifest's path; Dir its absolute directory, from which
	// relative command paths and working_dir are resolved.
	File string `json:"file"`
	Dir  string `json:"dir"`
}

// Build says how a service's image is built.
type Build struct {
	Context    string            `hcl:"context" json:"context" default:"\".\"" doc:"Directory sent to the engine, relative to the manifest's directory; its .dockerignore is honoured."`
	Dockerfile string            `hcl:"dockerfile" json:"dockerfile" default:"\"Dockerfile\"" doc:"Path of the Dockerfile, relative to context and inside it."`
	Args       map[string]string `hcl:"args" json:"args,omitempty" default:"{}" doc:"Build arguments (ARG), such as { GO_VERSION = \"1.26\" }; template values allowed."`
}

// Health is an instance health check.
type Health struct {
	Kind               string   `hcl:"kind" json:"kind" default:"\"http\"" enum:"http|tcp|exec" doc:"http: GET path answers 200-399; tcp: the port accepts a connection; exec: command exits 0."`
	Path               string   `hcl:"path" json:"path,omitempty" default:"\"/\"" doc:"Path requested by http checks."`
	Command            []string `hcl:"command" json:"command,omitempty" default:"[]" doc:"Command run by exec checks (template values allowed)."`
	Interval           Duration `hcl:"interval" json:"interval" default:"\"5s\"" doc:"Time between checks."`
	Timeout            Duration `hcl:"timeout" json:"timeout" default:"\"2s\"" defaultdoc:"2s, or interval when that is shorter" doc:"A check slower than this fails; at most interval."`
	HealthyThreshold   int      `hcl:"healthy_threshold" json:"healthy_threshold" default:"2" doc:"Consecutive successes before an instance receives traffic."`
	UnhealthyThreshold int      `hcl:"unhealthy_threshold" json:"unhealthy_threshold" default:"3" doc:"Consecutive failures before an instance is taken out and replaced."`
	StartPeriod        Duration `hcl:"start_period" json:"start_period" default:"\"10s\"" doc:"Failures during this time after start do not count (successes do)."`
}

// Resources are per-instance limits.
type Resources struct {
	CPU      float64 `hcl:"cpu" json:"cpu" default:"0" doc:"CPU cores per instance (0.5 is half a core); 0 means no limit."`
	MemoryMB int     `hcl:"memory_mb" json:"memory_mb" default:"0" doc:"Memory per instance in MiB; 0 means no limit."`
}

// Scale is the instance count.
type Scale struct {
	Min      int     `hcl:"min" json:"min" default:"1" defaultdoc:"1, or desired when desired is 0" doc:"Fewest instances (autoscaling and schedules never go below)."`
	Desired  int     `hcl:"desired" json:"desired" default:"2" doc:"Instances of a first release; later releases keep the running count."`
	Max      int     `hcl:"max" json:"max" default:"0" defaultdoc:"desired" doc:"Most instances (autoscaling and schedules never go above)."`
	Spread   float64 `hcl:"spread" json:"spread" default:"0" doc:"Blue/green: start desired × (1 + spread) new instances and accept the release when desired × (1 − spread) are healthy; 0 ≤ spread < 1."`
	MaxTerms int     `hcl:"max_terms" json:"max_terms" default:"0" defaultdoc:"the new group's size, at least 3" doc:"Crash budget, every strategy: the release fails (FailureClean, with the crashed instance's last output in its error) once the new group's instances crashed or were replaced as unhealthy more often than this; 0 means the default."`
}

// Autoscale keeps a metric near a target.
type Autoscale struct {
	Metric           string   `hcl:"metric" json:"metric" required:"true" enum:"cpu|memory|requests_per_instance|latency_p99" doc:"Metric to track."`
	Target           float64  `hcl:"target" json:"target" required:"true" doc:"Value to keep the metric near (percent for cpu and memory, requests/s, or seconds)."`
	ScaleOutCooldown Duration `hcl:"scale_out_cooldown" json:"scale_out_cooldown" default:"\"1m\"" doc:"Least time between two scale-outs."`
	ScaleInCooldown  Duration `hcl:"scale_in_cooldown" json:"scale_in_cooldown" default:"\"5m\"" doc:"Least time between two scale-ins."`
}

// Schedule sets the desired count at given times.
type Schedule struct {
	Name     string `hcl:",label" json:"name" doc:"Schedule name."`
	Cron     string `hcl:"cron" json:"cron" required:"true" doc:"Standard five-field cron expression, such as \"0 8 * * MON-FRI\"."`
	Desired  int    `hcl:"desired" json:"desired" required:"true" doc:"Desired count from that time on (within scale.min and scale.max)."`
	Timezone string `hcl:"timezone" json:"timezone" default:"\"UTC\"" doc:"IANA time zone the cron expression is read in."`
}

// Deploy is the rollout policy.
type Deploy struct {
	Strategy       string    `hcl:"strategy" json:"strategy" default:"\"rolling\"" enum:"recreate|rolling|blue_green|canary" doc:"recreate (stop old, start new; downtime), rolling, blue_green or canary."`
	Timeout        Duration  `hcl:"timeout" json:"timeout" default:"\"10m\"" doc:"A release still running after this is halted and rolled back."`
	ScaleDownDelay Duration  `hcl:"scale_down_delay" json:"scale_down_delay" default:"\"30s\"" doc:"How long the previous group is kept after a switch, so a rollback is instant."`
	DrainTimeout   Duration  `hcl:"drain_timeout" json:"drain_timeout" default:"\"30s\"" doc:"Longest wait for requests in flight before stopping an instance taken out of traffic (sent with every scale and delete call); WebSockets still open then get a close frame 1001 going away."`
	Rolling        Rolling   `hcl:"rolling,block" json:"rolling" doc:"Settings of the rolling strategy."`
	BlueGreen      BlueGreen `hcl:"blue_green,block" json:"blue_green" doc:"Settings of the blue_green strategy."`
	Canary         Canary    `hcl:"canary,block" json:"canary" doc:"Settings of the canary strategy."`
}

// Rolling configures the rolling strategy.
type Rolling struct {
	MaxSurge       int `hcl:"max_surge" json:"max_surge" default:"1" doc:"Instances started above the desired count at a time."`
	MaxUnavailable int `hcl:"max_unavailable" json:"max_unavailable" default:"0" doc:"Instances that may be out of service at a time."`
}

// BlueGreen configures the blue_green strategy.
type BlueGreen struct {
	Preview bool     `hcl:"preview" json:"preview" default:"false" doc:"Route <service>-preview.<environment>.<domain or localhost> to the new group before the switch."`
	Verify  []string `hcl:"verify" json:"verify,omitempty" default:"[]" doc:"Command that must exit 0 before the switch; gets PREVIEW_URL (template values allowed)."`
}

// Canary configures the canary strategy.
type Canary struct {
	Steps    []*CanaryStep `hcl:"step,block" json:"steps,omitempty" doc:"A traffic weight for the canary and how long to hold it. Weights strictly increase in (0, 100)."`
	Analysis Analysis      `hcl:"analysis,block" json:"analysis" doc:"How the canary is compared with the stable group at each step."`
}

// CanaryStep is one weight of a canary rollout.
type CanaryStep struct {
	Weight int      `hcl:"weight" json:"weight" required:"true" doc:"Percent of requests sent to the canary, 1-99."`
	Pause  Duration `hcl:"pause" json:"pause" default:"\"1m\"" doc:"How long to hold the weight before analysis and the next step."`
}

// Analysis are the canary's pass criteria.
type Analysis struct {
	MaxErrorRateIncrease float64 `hcl:"max_error_rate_increase" json:"max_error_rate_increase" default:"0.01" doc:"Largest allowed canary error rate minus stable error rate (0.01 = one point)."`
	MaxLatencyP99Ratio   float64 `hcl:"max_latency_p99_ratio" json:"max_latency_p99_ratio" default:"1.5" doc:"Largest allowed canary p99 latency divided by stable p99 latency."`
	MinRequests          int     `hcl:"min_requests" json:"min_requests" default:"100" doc:"Requests the canary must have served before it is judged."`
}

// Hooks are commands around a release.
type Hooks struct {
	PreDeploy   []string `hcl:"pre_deploy" json:"pre_deploy,omitempty" default:"[]" doc:"One-off command run once with the new release's environment before traffic moves (migrations); non-zero exit fails the release."`
	StopTimeout Duration `hcl:"stop_timeout" json:"stop_timeout" default:"\"30s\"" doc:"Time between SIGTERM and SIGKILL when an instance stops."`
}

// Alarm notifies channels when a metric crosses a threshold.
type Alarm struct {
	Name       string   `hcl:",label" json:"name" doc:"Alarm name."`
	Metric     string   `hcl:"metric" json:"metric" required:"true" enum:"error_rate|latency_p99|request_rate|healthy_instances|restarts|cpu|memory" doc:"Metric watched: error_rate (0-1), latency_p99 (seconds) and request_rate (per second) over the last minute; healthy_instances; restarts of the running instances; cpu (percent of one core) and memory (MiB) summed over the instances."`
	Comparison string   `hcl:"comparison" json:"comparison" default:"\">\"" enum:">|>=|<|<=" doc:"How the metric is compared with the threshold."`
	Threshold  float64  `hcl:"threshold" json:"threshold" required:"true" doc:"Threshold value."`
	For        Duration `hcl:"for" json:"for" default:"\"1m\"" doc:"How long the condition must hold before the alarm fires."`
	Notify     []string `hcl:"notify" json:"notify,omitempty" default:"[]" doc:"Names of notify channels of runway.hcl."`
}

// Duration is a time.Duration written as a Go duration string ("30s", "2m").
type Duration struct{ time.Duration }

// String formats the duration like time.Duration, trimming zero units ("1m" not "1m0s").
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// SecretVars maps each variable a release's processes receive a secret in to
// the secret's key: the secrets list under their own name, and secret_env.
func (s *Service) SecretVars() map[string]string {
	out := make(map[string]string, len(s.Secrets)+len(s.SecretEnv))
	for _, k := range s.Secrets {
		out[k] = k
	}
	for v, k := range s.SecretEnv {
		out[v] = k
	}
	return out
}
