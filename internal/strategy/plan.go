package strategy

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/config"
)

// The strategy names of config.Deploy.Strategy.
const (
	Recreate  = "recreate"
	Rolling   = "rolling"
	BlueGreen = "blue_green"
	Canary    = "canary"
)

// ErrInvalid is wrapped by every error about a policy that cannot be planned;
// the engine reports it as a bad release.
var ErrInvalid = errors.New("invalid deploy policy")

// DefaultLatencySlack is the p99 difference under which canary latency is not
// judged (see Analyze.LatencySlack).
const DefaultLatencySlack = 10 * time.Millisecond

// Group is a group of the service as observed before the release.
type Group struct {
	Name    string `json:"name"`
	Release string `json:"release"`
	// Count is the group's running instances (healthy or starting).
	Count int `json:"count"`
	// Healthy is how many of them were healthy.
	Healthy int `json:"healthy"`
	// Weight is the group's route weight; 0 when it receives no traffic.
	Weight int `json:"weight"`
}

// Input is everything a strategy needs: the release, the policy and what runs.
type Input struct {
	Service     string
	Environment string
	Protected   bool
	Release     string // release id
	Scale       config.Scale
	Deploy      config.Deploy
	PreDeploy   []string
	// Current are the service's groups before the release, in any order
	// except that they must not include the release's own group.
	Current []Group
	// Limits are what the target can carry (its declared capabilities).
	Limits Limits
}

// Limits are what a target can carry that a plan must respect; they come
// from the target's declared capabilities (target.Capabilities.Plan). A zero
// field sets no limit.
type Limits struct {
	// MaxWeight is the largest weight of one group in a route.
	MaxWeight int
	// MaxWeightedGroups is how many groups one route can carry.
	MaxWeightedGroups int
	// GroupNameMax is the longest group name the target accepts.
	GroupNameMax int
	// NoPreview: the target cannot route a preview host.
	NoPreview bool
}

// Plan is a release's steps by engine phase.
type Plan struct {
	Strategy string `json:"strategy"`
	Group    string `json:"group"`   // the new release's group
	Desired  int    `json:"desired"` // its steady-state instance count
	// Deploy runs in the Deploy state: it ends with the new group serving.
	Deploy Steps `json:"deploy"`
	// Check runs in CheckHealthy.
	Check Steps `json:"check"`
	// Success runs in CleanUpSuccess. While its leading Pause steps run, the
	// previous groups are intact and a halt still rolls back (RollbackWindow).
	Success Steps `json:"success"`
	// Failure runs in CleanUpFailure: the previous groups serve all traffic
	// again and the new group is gone. It is correct from any point of the
	// other phases.
	Failure Steps `json:"failure"`
}

// RollbackWindow reports whether a halt during Success step i can still roll
// back: no step before or at i has changed the previous groups.
func (p *Plan) RollbackWindow(i int) bool {
	for j := 0; j <= i && j < len(p.Success); j++ {
		if p.Success[j].Kind() != KindPause {
			return false
		}
	}
	return true
}

// MinGroupNameMax is the shortest name budget GroupName works with: one
// character of the service, "-" and the hash.
const MinGroupNameMax = 1 + 1 + nameHashLen

// nameHashLen is the length of the hash that stands for service and release
// in a shortened group name: 13 base32 characters are 65 bits.
const nameHashLen = 13

// GroupName is the deterministic group name of a service's release, so that
// every target call about it is idempotent: `<service>-<lower-case release
// id>`, or, when that is longer than max (> 0), as much of the service as
// fits, "-" and a hash of service and release. So with ALB's 32 characters
// "payments-gateway-eu1" (20) and a ULID (26) become
// "payments-gateway-e-<13 of hash>" (32), still unique per release.
func GroupName(service, release string, max int) string {
	name := service + "-" + strings.ToLower(release)
	if max <= 0 || len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(service + "\x00" + release))
	hash := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:nameHashLen]
	keep := max - 1 - nameHashLen
	if keep < 1 {
		return hash[:min(max, nameHashLen)]
	}
	prefix := strings.TrimRight(service[:min(keep, len(service))], "-._")
	if prefix == "" {
		return hash
	}
	return prefix + "-" + hash
}

// DesiredCount is the instance count of a new release: the instances the
// serving groups run now (so autoscaled capacity is kept), else scale.desired;
// kept within scale.min and scale.max when those are set.
func DesiredCount(sc config.Scale, current []Group) int {
	n := 0
	for _, g := range current {
		if g.Weight > 0 {
			n += g.Count
		}
	}
	if n == 0 {
		return sc.Desired
	}
	if sc.Max > 0 && n > sc.Max {
		n = sc.Max
	}
	if n < sc.Min {
		n = sc.Min
	}
	return n
}

// BlueGreenSizes are the blue/green launch count ceil(d×(1+spread)) and the
// healthy count floor(d×(1−spread)) (at least 1) for desired count d.
func BlueGreenSizes(desired int, spread float64) (launch, healthy int) {
	// The epsilon keeps 10×1.1 = 11.000000000000002 from rounding up to 12.
	const eps = 1e-9
	launch = int(math.Ceil(float64(desired)*(1+spread) - eps))
	healthy = int(math.Floor(float64(desired)*(1-spread) + eps))
	if healthy < 1 {
		healthy = 1
	}
	return launch, healthy
}

// Make plans the release described by in.
func Make(in Input) (*Plan, error) {
	if in.Service == "" || in.Release == "" {
		return nil, fmt.Errorf("%w: service and release id are required", ErrInvalid)
	}
	newGroup := GroupName(in.Service, in.Release, in.Limits.GroupNameMax)
	for _, g := range in.Current {
		if g.Name == newGroup {
			return nil, fmt.Errorf("%w: group %s of this release is listed as a current group", ErrInvalid, newGroup)
		}
	}
	d := DesiredCount(in.Scale, in.Current)
	if d < 1 {
		return nil, fmt.Errorf("%w: scale.desired is %d; a release needs at least 1 instance", ErrInvalid, d)
	}
	// The manifest's rules for the policy, as validate applies them (a
	// release made from an older one, such as a rollback, was validated
	// under the rules of its day).
	if err := config.CheckPolicy(in.Scale, in.Deploy, in.Environment, in.Protected); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	p := &Plan{Strategy: in.Deploy.Strategy, Group: newGroup, Desired: d}
	var err error
	switch in.Deploy.Strategy {
	case Recreate:
		err = planRecreate(in, p)
	case Rolling:
		err = planRolling(in, p)
	case BlueGreen:
		err = planBlueGreen(in, p)
	case Canary:
		err = planCanary(in, p)
	default:
		err = fmt.Errorf("%w: unknown deploy.strategy %q (use recreate, rolling, blue_green or canary)", ErrInvalid, in.Deploy.Strategy)
	}
	if err != nil {
		return nil, err
	}
	budget(p, in.Scale)
	if len(in.PreDeploy) > 0 {
		task := RunTask{ID: in.Release + "/pre_deploy", Name: "pre_deploy", Release: in.Release, Command: in.PreDeploy}
		p.Deploy = append(Steps{task}, p.Deploy...)
	}
	p.Failure = failurePlan(in, newGroup)
	if err := in.Limits.check(p); err != nil {
		return nil, err
	}
	return p, nil
}

// check refuses a plan the target cannot carry, naming the limit: a canary
// beside more stable groups than a route can weight, weights (the stable
// groups' shares multiplied out) above the target's maximum, a preview on a
// target without one.
func (l Limits) check(p *Plan) error {
	for _, phase := range []Steps{p.Deploy, p.Check, p.Success, p.Failure} {
		for _, st := range phase {
			switch s := st.(type) {
			case SetRoutes:
				if l.MaxWeightedGroups > 0 && len(s.Routes) > l.MaxWeightedGroups {
					return fmt.Errorf("%w: %s routes %d groups, but the target carries at most %d weighted groups in a route: "+
						"delete old groups first, or use blue_green", ErrInvalid, s, len(s.Routes), l.MaxWeightedGroups)
				}
				for _, r := range s.Routes {
					if l.MaxWeight > 0 && r.Weight > l.MaxWeight {
						return fmt.Errorf("%w: %s gives group %s weight %d, but the target's weights go up to %d: "+
							"the stable groups' weights multiplied out are too fine; delete old groups first", ErrInvalid, s, r.Group, r.Weight, l.MaxWeight)
					}
				}
			case SetPreview:
				if s.Group != "" && l.NoPreview {
					return fmt.Errorf("%w: this target has no preview route: remove blue_green's preview and verify", ErrInvalid)
				}
			}
		}
	}
	return nil
}

// CrashBudget is how many times the instances of a new group of size
// instances may crash (or be replaced as unhealthy) before the release
// fails: scale.max_terms when set, else the group's size and at least 3. A
// group of 2 whose instances exit at once fails on the second round of
// restarts (4 crashes, about 1 s with the supervisor's 1 s first backoff); a
// group of 1 on its fourth crash (about 7 s: backoffs of 1, 2 and 4 s).
func CrashBudget(sc config.Scale, size int) int {
	if sc.MaxTerms > 0 {
		return sc.MaxTerms
	}
	return max(size, 3)
}

// budget gives every wait for the new group the crash budget of its largest
// size, whatever the strategy.
func budget(p *Plan, sc config.Scale) {
	size := p.Desired
	for _, phase := range []Steps{p.Deploy, p.Check} {
		for _, st := range phase {
			if e, ok := st.(EnsureGroup); ok && e.Group == p.Group {
				size = max(size, e.Count)
			}
		}
	}
	n := CrashBudget(sc, size)
	for _, phase := range []Steps{p.Deploy, p.Check} {
		for i, st := range phase {
			if w, ok := st.(WaitHealthy); ok && w.Group == p.Group {
				w.MaxTerms = n
				phase[i] = w
			}
		}
	}
}

// serving are the current groups that receive traffic.
func serving(in Input) []Group {
	var out []Group
	for _, g := range in.Current {
		if g.Weight > 0 {
			out = append(out, g)
		}
	}
	return out
}

// deleteAll drains and deletes every current group.
func deleteAll(in Input) Steps {
	var out Steps
	for _, g := range in.Current {
		out = append(out, DeleteGroup{Group: g.Name, Drain: in.Deploy.DrainTimeout.Duration})
	}
	return out
}

// failurePlan restores the routes of before the release and deletes the new
// group. It is idempotent and correct wherever the release stopped: it
// re-creates or re-grows the previous serving groups, waits until they are as
// healthy as they were, and only then moves the traffic back.
func failurePlan(in Input, newGroup string) Steps {
	var out Steps
	var routes []Route
	for _, g := range serving(in) {
		out = append(out, EnsureGroup{Group: g.Name, Release: g.Release, Count: g.Count})
	}
	for _, g := range serving(in) {
		if h := max(g.Healthy, 1); g.Count > 0 {
			out = append(out, WaitHealthy{Group: g.Name, Min: min(h, g.Count)})
		}
		routes = append(routes, Route{Group: g.Name, Weight: g.Weight})
	}
	out = append(out, SetPreview{}, SetRoutes{Routes: routes})
	out = append(out, DeleteGroup{Group: newGroup, Drain: in.Deploy.DrainTimeout.Duration})
	return out
}

func planRecreate(in Input, p *Plan) error {
	p.Deploy = append(p.Deploy, SetRoutes{})
	p.Deploy = append(p.Deploy, deleteAll(in)...)
	p.Deploy = append(p.Deploy,
		EnsureGroup{Group: p.Group, Release: in.Release, Count: p.Desired},
		WaitHealthy{Group: p.Group, Min: p.Desired},
		SetRoutes{Routes: []Route{{Group: p.Group, Weight: 100}}},
	)
	p.Check = Steps{WaitHealthy{Group: p.Group, Min: p.Desired}}
	return nil
}

func planBlueGreen(in Input, p *Plan) error {
	launch, healthy := BlueGreenSizes(p.Desired, in.Scale.Spread)
	bg := in.Deploy.BlueGreen
	preview := bg.Preview || len(bg.Verify) > 0
	p.Deploy = append(p.Deploy,
		EnsureGroup{Group: p.Group, Release: in.Release, Count: launch},
		WaitHealthy{Group: p.Group, Min: healthy},
	)
	if preview {
		p.Deploy = append(p.Deploy, SetPreview{Group: p.Group})
	}
	if len(bg.Verify) > 0 {
		p.Deploy = append(p.Deploy, RunTask{
			ID: in.Release + "/verify", Name: "verify", Release: in.Release,
			Command: bg.Verify, Preview: true, Group: p.Group,
		})
	}
	p.Deploy = append(p.Deploy, SetRoutes{Routes: []Route{{Group: p.Group, Weight: 100}}})
	if preview {
		p.Deploy = append(p.Deploy, SetPreview{})
	}
	p.Check = Steps{WaitHealthy{Group: p.Group, Min: healthy}}
	p.Success = retire(in, p.Group, launch, p.Desired)
	return nil
}

// retire keeps the previous groups for scale_down_delay (a halt in that
// window switches back instantly), then drains and deletes them and, for a
// group launched above its desired count, scales it down.
func retire(in Input, group string, launched, desired int) Steps {
	var out Steps
	if len(in.Current) > 0 && in.Deploy.ScaleDownDelay.Duration > 0 {
		out = append(out, Pause{Duration: in.Deploy.ScaleDownDelay.Duration, Reason: "scale_down_delay"})
	}
	out = append(out, deleteAll(in)...)
	if launched > desired {
		out = append(out, ScaleGroup{Group: group, Count: desired, Drain: in.Deploy.DrainTimeout.Duration})
	}
	return out
}

func planCanary(in Input, p *Plan) error {
	c := in.Deploy.Canary
	a := c.Analysis
	stable := serving(in)
	d := p.Desired
	if len(stable) == 0 {
		// A first release has nothing to compare with: start it whole.
		p.Deploy = append(p.Deploy,
			EnsureGroup{Group: p.Group, Release: in.Release, Count: d},
			WaitHealthy{Group: p.Group, Min: d},
			SetRoutes{Routes: []Route{{Group: p.Group, Weight: 100}}},
		)
		p.Check = Steps{WaitHealthy{Group: p.Group, Min: d}}
		p.Success = retire(in, p.Group, d, d)
		return nil
	}
	var names []string
	for _, g := range stable {
		names = append(names, g.Name)
	}
	for _, st := range c.Steps {
		n := max(1, int(math.Ceil(float64(d*st.Weight)/100)))
		p.Deploy = append(p.Deploy,
			EnsureGroup{Group: p.Group, Release: in.Release, Count: n},
			WaitHealthy{Group: p.Group, Min: n},
			SetRoutes{Routes: canaryRoutes(p.Group, st.Weight, stable)},
			Pause{Duration: st.Pause.Duration, Reason: fmt.Sprintf("canary at %d%%", st.Weight)},
			Analyze{
				Canary: p.Group, Stable: names, Window: st.Pause.Duration,
				MinRequests: a.MinRequests, MaxErrorRateIncrease: a.MaxErrorRateIncrease,
				MaxLatencyP99Ratio: a.MaxLatencyP99Ratio, LatencySlack: DefaultLatencySlack,
			},
		)
	}
	p.Deploy = append(p.Deploy,
		EnsureGroup{Group: p.Group, Release: in.Release, Count: d},
		WaitHealthy{Group: p.Group, Min: d},
		SetRoutes{Routes: []Route{{Group: p.Group, Weight: 100}}},
	)
	p.Check = Steps{WaitHealthy{Group: p.Group, Min: d}}
	p.Success = retire(in, p.Group, d, d)
	return nil
}

// canaryRoutes gives the canary w% of requests and splits the rest over the
// stable groups by their weights, in the smallest integers that do so exactly.
func canaryRoutes(canary string, w int, stable []Group) []Route {
	total := 0
	for _, g := range stable {
		total += g.Weight
	}
	routes := []Route{{Group: canary, Weight: w * total}}
	for _, g := range stable {
		routes = append(routes, Route{Group: g.Name, Weight: (100 - w) * g.Weight})
	}
	return reduce(routes)
}

func reduce(routes []Route) []Route {
	d := 0
	for _, r := range routes {
		d = gcd(d, r.Weight)
	}
	if d > 1 {
		for i := range routes {
			routes[i].Weight /= d
		}
	}
	return routes
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
