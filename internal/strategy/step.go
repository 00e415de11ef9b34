package strategy

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind names a step type in persisted plans; never rename one.
type Kind string

// The step kinds.
const (
	KindRunTask     Kind = "run_task"
	KindEnsureGroup Kind = "ensure_group"
	KindScaleGroup  Kind = "scale_group"
	KindWaitHealthy Kind = "wait_healthy"
	KindSetRoutes   Kind = "set_routes"
	KindSetPreview  Kind = "set_preview"
	KindPause       Kind = "pause"
	KindAnalyze     Kind = "analyze"
	KindDeleteGroup Kind = "delete_group"
)

// Step is one idempotent action of a plan. The concrete types below are the
// only implementations.
type Step interface {
	Kind() Kind
	String() string
}

// RunTask runs a one-off task with the new release's environment and fails the
// release unless it exits 0. ID is deterministic (release and phase position)
// so a driver can run it at most once even when the engine re-runs the step
// after a crash.
type RunTask struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"` // "pre_deploy" or "verify"
	Release string   `json:"release"`
	Command []string `json:"command"`
	// Preview gives the task PREVIEW_URL, the preview route of Group.
	Preview bool   `json:"preview,omitempty"`
	Group   string `json:"group,omitempty"`
}

// EnsureGroup makes the group of Release exist with Count instances: created
// if missing, its count set otherwise. Plans use it to create and grow groups;
// shrinking is ScaleGroup, which drains.
type EnsureGroup struct {
	Group   string `json:"group"`
	Release string `json:"release"`
	Count   int    `json:"count"`
}

// ScaleGroup sets an existing group's instance count; instances removed get no
// new requests and stop once their requests finish or Drain passes. A missing
// group is not an error when Count is 0.
type ScaleGroup struct {
	Group string        `json:"group"`
	Count int           `json:"count"`
	Drain time.Duration `json:"drain"`
}

// WaitHealthy waits until at least Min instances of Group are healthy. When
// MaxTerms > 0 (the crash budget, see CrashBudget) and the group's instances
// have crashed or been replaced more often than that, the release fails.
type WaitHealthy struct {
	Group    string `json:"group"`
	Min      int    `json:"min"`
	MaxTerms int    `json:"max_terms,omitempty"`
}

// Route is one group receiving a service's traffic. Weights are relative: a
// group gets Weight / sum(Weights) of new requests.
type Route struct {
	Group  string `json:"group"`
	Weight int    `json:"weight"`
}

// Without returns routes without group's, and whether it had one (a target
// deleting a group takes it out of the routes first).
func Without(routes []Route, group string) ([]Route, bool) {
	var keep []Route
	for _, r := range routes {
		if r.Group != group {
			keep = append(keep, r)
		}
	}
	return keep, len(keep) != len(routes)
}

// SetRoutes replaces the service's routes atomically. An empty list removes
// the service's routes.
type SetRoutes struct {
	Routes []Route `json:"routes"`
}

// SetPreview routes the service's preview host to Group; "" removes it.
type SetPreview struct {
	Group string `json:"group"`
}

// Pause holds the current state for Duration. The engine persists when the
// pause began so a resumed pause only waits the remainder.
type Pause struct {
	Duration time.Duration `json:"duration"`
	Reason   string        `json:"reason,omitempty"`
}

// Analyze compares the canary group with the stable groups on the proxy's
// window statistics over the last Window (the canary step's pause; 0 means
// the driver's default window); see Judge.
type Analyze struct {
	Canary               string        `json:"canary"`
	Stable               []string      `json:"stable"`
	Window               time.Duration `json:"window"`
	MinRequests          int           `json:"min_requests"`
	MaxErrorRateIncrease float64       `json:"max_error_rate_increase"`
	MaxLatencyP99Ratio   float64       `json:"max_latency_p99_ratio"`
	// LatencySlack is the p99 difference below which the ratio is not
	// judged: 0.4 ms against 0.2 ms is a ratio of 2 but no regression.
	LatencySlack time.Duration `json:"latency_slack"`
}

// DeleteGroup takes the group out of the routes, waits for its requests in
// flight (at most Drain) and deletes it. A missing group is not an error.
type DeleteGroup struct {
	Group string        `json:"group"`
	Drain time.Duration `json:"drain"`
}

func (RunTask) Kind() Kind     { return KindRunTask }
func (EnsureGroup) Kind() Kind { return KindEnsureGroup }
func (ScaleGroup) Kind() Kind  { return KindScaleGroup }
func (WaitHealthy) Kind() Kind { return KindWaitHealthy }
func (SetRoutes) Kind() Kind   { return KindSetRoutes }
func (SetPreview) Kind() Kind  { return KindSetPreview }
func (Pause) Kind() Kind       { return KindPause }
func (Analyze) Kind() Kind     { return KindAnalyze }
func (DeleteGroup) Kind() Kind { return KindDeleteGroup }

func (s RunTask) String() string { return fmt.Sprintf("run %s task %q", s.Name, s.Command) }
func (s EnsureGroup) String() string {
	return fmt.Sprintf("ensure group %s has %d instances", s.Group, s.Count)
}
func (s ScaleGroup) String() string { return fmt.Sprintf("scale group %s to %d", s.Group, s.Count) }
func (s WaitHealthy) String() string {
	if s.MaxTerms > 0 {
		return fmt.Sprintf("wait for %d healthy in %s (crash budget %d)", s.Min, s.Group, s.MaxTerms)
	}
	return fmt.Sprintf("wait for %d healthy in %s", s.Min, s.Group)
}
func (s SetRoutes) String() string {
	if len(s.Routes) == 0 {
		return "remove routes"
	}
	out := "route"
	for i, r := range s.Routes {
		if i > 0 {
			out += ","
		}
		out += fmt.Sprintf(" %s=%d", r.Group, r.Weight)
	}
	return out
}
func (s SetPreview) String() string {
	if s.Group == "" {
		return "remove preview route"
	}
	return "route preview to " + s.Group
}
func (s Pause) String() string { return "pause " + s.Duration.String() }
func (s Analyze) String() string {
	return fmt.Sprintf("analyze canary %s against %v", s.Canary, s.Stable)
}
func (s DeleteGroup) String() string { return "drain and delete group " + s.Group }

// Steps is a list of steps that marshals each as {"kind": ..., "args": {...}}.
type Steps []Step

type envelope struct {
	Kind Kind            `json:"kind"`
	Args json.RawMessage `json:"args"`
}

// MarshalJSON writes the steps with their kinds.
func (s Steps) MarshalJSON() ([]byte, error) {
	out := make([]envelope, 0, len(s))
	for _, st := range s {
		b, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("marshal step %s: %w", st.Kind(), err)
		}
		out = append(out, envelope{Kind: st.Kind(), Args: b})
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads steps written by MarshalJSON.
func (s *Steps) UnmarshalJSON(b []byte) error {
	var in []envelope
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	if len(in) == 0 {
		*s = nil
		return nil
	}
	out := make(Steps, 0, len(in))
	for _, e := range in {
		st, err := decodeStep(e.Kind, e.Args)
		if err != nil {
			return err
		}
		out = append(out, st)
	}
	*s = out
	return nil
}

func decodeStep(k Kind, args json.RawMessage) (Step, error) {
	var (
		st  Step
		err error
	)
	switch k {
	case KindRunTask:
		var v RunTask
		err, st = json.Unmarshal(args, &v), &v
	case KindEnsureGroup:
		var v EnsureGroup
		err, st = json.Unmarshal(args, &v), &v
	case KindScaleGroup:
		var v ScaleGroup
		err, st = json.Unmarshal(args, &v), &v
	case KindWaitHealthy:
		var v WaitHealthy
		err, st = json.Unmarshal(args, &v), &v
	case KindSetRoutes:
		var v SetRoutes
		err, st = json.Unmarshal(args, &v), &v
	case KindSetPreview:
		var v SetPreview
		err, st = json.Unmarshal(args, &v), &v
	case KindPause:
		var v Pause
		err, st = json.Unmarshal(args, &v), &v
	case KindAnalyze:
		var v Analyze
		err, st = json.Unmarshal(args, &v), &v
	case KindDeleteGroup:
		var v DeleteGroup
		err, st = json.Unmarshal(args, &v), &v
	default:
		return nil, fmt.Errorf("unknown step kind %q", k)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s step: %w", k, err)
	}
	return deref(st), nil
}

// deref returns the value behind the pointer so decoded steps compare equal
// to the values Plan builds.
func deref(st Step) Step {
	switch v := st.(type) {
	case *RunTask:
		return *v
	case *EnsureGroup:
		return *v
	case *ScaleGroup:
		return *v
	case *WaitHealthy:
		return *v
	case *SetRoutes:
		return *v
	case *SetPreview:
		return *v
	case *Pause:
		return *v
	case *Analyze:
		return *v
	case *DeleteGroup:
		return *v
	}
	return st
}
