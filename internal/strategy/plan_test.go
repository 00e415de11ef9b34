package strategy

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
)

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }

func input(strategy string, desired int, current ...Group) Input {
	sc := config.Defaults[config.Scale]()
	sc.Min, sc.Desired, sc.Max = 1, desired, max(desired, 20)
	return Input{
		Service: "web", Environment: "staging", Release: "R2",
		Scale: sc,
		Deploy: config.Deploy{
			Strategy: strategy, Timeout: dur(10 * time.Minute),
			ScaleDownDelay: dur(30 * time.Second), DrainTimeout: dur(5 * time.Second),
			Rolling: config.Rolling{MaxSurge: 1},
			Canary: config.Canary{
				Steps:    []*config.CanaryStep{{Weight: 10, Pause: dur(time.Minute)}, {Weight: 50, Pause: dur(2 * time.Minute)}},
				Analysis: config.Analysis{MaxErrorRateIncrease: 0.01, MaxLatencyP99Ratio: 1.5, MinRequests: 100},
			},
		},
		Current: current,
	}
}

var v1 = Group{Name: "web-r1", Release: "R1", Count: 3, Healthy: 3, Weight: 100}

func TestGroupName(t *testing.T) {
	if got := GroupName("web", "01HX7ABC", 0); got != "web-01hx7abc" {
		t.Fatalf("GroupName = %q", got)
	}
	if got := GroupName("web", "01HX7ABC", 63); got != "web-01hx7abc" {
		t.Fatalf("GroupName within the budget = %q, want it unchanged", got)
	}
}

// TestGroupNameBudget: a 20-character service and a 26-character ULID make
// a 47-character name, over ALB's 32 for target groups; within any budget
// the name fits, keeps the service's prefix, stays deterministic and
// differs per release and per service.
func TestGroupNameBudget(t *testing.T) {
	const svc = "payments-gateway-eu1" // 20 characters
	r1, r2 := "01JBX8Q4WJ3V7T9M2K5N6P8R0S", "01JBX8Q4WJ3V7T9M2K5N6P8R0T"
	if n := len(GroupName(svc, r1, 0)); n != 47 {
		t.Fatalf("unbudgeted name has %d characters, want 47", n)
	}
	seen := map[string]bool{}
	for _, max := range []int{MinGroupNameMax, 20, 32, 46, 63} {
		for _, s := range []string{svc, "payments-gateway-eu2", "a"} {
			for _, r := range []string{r1, r2} {
				n := GroupName(s, r, max)
				if len(n) > max {
					t.Errorf("GroupName(%q, %q, %d) = %q: %d characters", s, r, max, n, len(n))
				}
				if n != GroupName(s, r, max) {
					t.Errorf("GroupName(%q, %q, %d) is not deterministic", s, r, max)
				}
				if !strings.HasPrefix(n, s[:1]) || strings.HasSuffix(n, "-") {
					t.Errorf("GroupName(%q, %q, %d) = %q: want the service's prefix and no trailing '-'", s, r, max, n)
				}
				key := fmt.Sprint(max, n)
				if seen[key] {
					t.Errorf("GroupName(%q, %q, %d) = %q collides", s, r, max, n)
				}
				seen[key] = true
			}
		}
	}
	if got := GroupName(svc, r1, 32); !strings.HasPrefix(got, "payments-gateway-e-") || len(got) != 32 {
		t.Errorf("ALB name = %q, want payments-gateway-e-<hash> of 32 characters", got)
	}
	in := input(BlueGreen, 2)
	in.Service, in.Release, in.Limits = svc, r1, Limits{GroupNameMax: 32}
	p, err := Make(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Group != GroupName(svc, r1, 32) {
		t.Errorf("plan's group %q, want the budgeted name", p.Group)
	}
}

// TestLimits: a plan the target cannot carry is refused at plan time,
// naming the limit; one within the limits is planned.
func TestLimits(t *testing.T) {
	// Three stable groups and the canary make four weighted groups.
	stable := []Group{
		{Name: "web-a", Release: "A", Count: 1, Healthy: 1, Weight: 7},
		{Name: "web-b", Release: "B", Count: 1, Healthy: 1, Weight: 11},
		{Name: "web-c", Release: "C", Count: 1, Healthy: 1, Weight: 13},
	}
	tests := []struct {
		name   string
		in     Input
		limits Limits
		want   string // "" plans
	}{
		{"canary within limits", input(Canary, 3, stable...), Limits{MaxWeight: 10000, MaxWeightedGroups: 4}, ""},
		{"canary beside more stable groups than a route carries", input(Canary, 3, stable...), Limits{MaxWeightedGroups: 3},
			"at most 3 weighted groups"},
		// Stable weights 997 and 1 (total 998): at 10 % the canary needs
		// 10×998 and the stable groups 90×997 and 90×1, which reduced by
		// their gcd (10) are 998, 8973 and 9: above the agent's 1000.
		{"canary weights above the maximum", input(Canary, 3,
			Group{Name: "web-a", Release: "A", Count: 2, Healthy: 2, Weight: 997},
			Group{Name: "web-b", Release: "B", Count: 1, Healthy: 1, Weight: 1}), Limits{MaxWeight: 1000},
			"weight 8973, but the target's weights go up to 1000"},
		{"preview without preview route", func() Input {
			in := input(BlueGreen, 2, v1)
			in.Deploy.BlueGreen.Preview = true
			return in
		}(), Limits{MaxWeight: 1000, MaxWeightedGroups: 2, NoPreview: true}, "no preview route"},
		{"preview with preview route", func() Input {
			in := input(BlueGreen, 2, v1)
			in.Deploy.BlueGreen.Preview = true
			return in
		}(), Limits{MaxWeight: 1000, MaxWeightedGroups: 2}, ""},
		{"no limits", input(Canary, 3, stable...), Limits{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Limits = tt.limits
			_, err := Make(tt.in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Make: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Make: %v, want ErrInvalid naming %q", err, tt.want)
			}
		})
	}
}

func TestDesiredCount(t *testing.T) {
	tests := []struct {
		name    string
		scale   config.Scale
		current []Group
		want    int
	}{
		{"first release uses desired", config.Scale{Min: 1, Desired: 2}, nil, 2},
		{"keeps running count", config.Scale{Min: 1, Desired: 2}, []Group{{Name: "a", Count: 5, Weight: 1}}, 5},
		{"sums serving groups", config.Scale{Min: 1, Desired: 2}, []Group{{Name: "a", Count: 2, Weight: 1}, {Name: "b", Count: 3, Weight: 9}}, 5},
		{"ignores groups without traffic", config.Scale{Min: 1, Desired: 2}, []Group{{Name: "a", Count: 7}}, 2},
		{"clamped to max", config.Scale{Min: 1, Desired: 2, Max: 4}, []Group{{Name: "a", Count: 6, Weight: 1}}, 4},
		{"clamped to min", config.Scale{Min: 3, Desired: 3}, []Group{{Name: "a", Count: 1, Weight: 1}}, 3},
		{"max 0 means no cap", config.Scale{Min: 1, Desired: 2}, []Group{{Name: "a", Count: 60, Weight: 1}}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DesiredCount(tt.scale, tt.current); got != tt.want {
				t.Fatalf("DesiredCount = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBlueGreenSizes(t *testing.T) {
	tests := []struct {
		desired        int
		spread         float64
		launch, health int
	}{
		{1, 0, 1, 1},
		{2, 0, 2, 2},
		{3, 0.2, 4, 2},   // 3.6 → 4, 2.4 → 2
		{10, 0.1, 11, 9}, // 11.000000000000002 must not become 12
		{10, 0.3, 13, 7},
		{1, 0.5, 2, 1}, // floor(0.5) = 0, raised to 1
		{2, 0.5, 3, 1},
		{5, 0.99, 10, 1}, // 9.95 → 10, 0.05 → 0 → 1
		{7, 0.25, 9, 5},  // 8.75 → 9, 5.25 → 5
		{100, 0.07, 107, 93},
	}
	for _, tt := range tests {
		l, h := BlueGreenSizes(tt.desired, tt.spread)
		if l != tt.launch || h != tt.health {
			t.Errorf("BlueGreenSizes(%d, %g) = %d, %d; want %d, %d", tt.desired, tt.spread, l, h, tt.launch, tt.health)
		}
	}
}

func TestMakeErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Input)
		want   string
	}{
		{"unknown strategy", func(in *Input) { in.Deploy.Strategy = "yolo" }, "unknown deploy.strategy"},
		{"no release id", func(in *Input) { in.Release = "" }, "release id"},
		{"desired 0", func(in *Input) { in.Scale.Desired = 0; in.Scale.Min = 0; in.Current = nil }, "at least 1 instance"},
		{"own group listed", func(in *Input) { in.Current = []Group{{Name: "web-r2", Count: 1, Weight: 1}} }, "listed as a current group"},
		{"recreate protected", func(in *Input) { in.Deploy.Strategy = Recreate; in.Protected = true }, "protected"},
		{"rolling 0/0", func(in *Input) { in.Deploy.Strategy = Rolling; in.Deploy.Rolling = config.Rolling{} }, "both 0"},
		{"rolling negative surge", func(in *Input) { in.Deploy.Strategy = Rolling; in.Deploy.Rolling.MaxSurge = -1 }, "max_surge = -1 must be at least 0"},
		{"rolling negative unavailable", func(in *Input) { in.Deploy.Strategy = Rolling; in.Deploy.Rolling.MaxUnavailable = -1 }, "max_unavailable = -1 must be at least 0"},
		{"spread 1", func(in *Input) { in.Deploy.Strategy = BlueGreen; in.Scale.Spread = 1 }, "spread"},
		{"spread negative", func(in *Input) { in.Deploy.Strategy = BlueGreen; in.Scale.Spread = -0.1 }, "spread"},
		{"max_terms negative", func(in *Input) { in.Deploy.Strategy = BlueGreen; in.Scale.MaxTerms = -1 }, "max_terms"},
		{"canary no steps", func(in *Input) { in.Deploy.Strategy = Canary; in.Deploy.Canary.Steps = nil }, "at least one"},
		{"canary weight 100", func(in *Input) {
			in.Deploy.Strategy = Canary
			in.Deploy.Canary.Steps = []*config.CanaryStep{{Weight: 100}}
		}, "must be between 1 and 99"},
		{"canary weight 0", func(in *Input) {
			in.Deploy.Strategy = Canary
			in.Deploy.Canary.Steps = []*config.CanaryStep{{Weight: 0}}
		}, "must be between 1 and 99"},
		{"canary weights not increasing", func(in *Input) {
			in.Deploy.Strategy = Canary
			in.Deploy.Canary.Steps = []*config.CanaryStep{{Weight: 50}, {Weight: 50}}
		}, "Canary weights must increase"},
		{"canary nil step", func(in *Input) {
			in.Deploy.Strategy = Canary
			in.Deploy.Canary.Steps = []*config.CanaryStep{nil}
		}, "Empty canary step"},
		{"canary negative pause", func(in *Input) {
			in.Deploy.Strategy = Canary
			in.Deploy.Canary.Steps = []*config.CanaryStep{{Weight: 5, Pause: dur(-time.Second)}}
		}, "negative"},
		{"canary pauses exceed the timeout", func(in *Input) {
			in.Deploy.Strategy = Canary
			in.Deploy.Timeout = dur(3 * time.Minute) // pauses are 1m + 2m
		}, "Canary pauses exceed the timeout"},
		{"canary negative threshold", func(in *Input) { in.Deploy.Strategy = Canary; in.Deploy.Canary.Analysis.MinRequests = -1 }, "min_requests = -1 must be at least 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(Rolling, 3, v1)
			tt.modify(&in)
			p, err := Make(in)
			if err == nil {
				t.Fatalf("Make succeeded: %+v", p)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestRecreate(t *testing.T) {
	in := input(Recreate, 2, v1, Group{Name: "web-r0", Release: "R0", Count: 1})
	p, err := Make(in)
	if err != nil {
		t.Fatal(err)
	}
	drain := 5 * time.Second
	want := Steps{
		SetRoutes{},
		DeleteGroup{Group: "web-r1", Drain: drain},
		DeleteGroup{Group: "web-r0", Drain: drain},
		EnsureGroup{Group: "web-r2", Release: "R2", Count: 3},
		WaitHealthy{Group: "web-r2", Min: 3, MaxTerms: 3},
		SetRoutes{Routes: []Route{{"web-r2", 100}}},
	}
	assertSteps(t, "deploy", p.Deploy, want)
	if p.Desired != 3 {
		t.Errorf("desired = %d, want the running 3", p.Desired)
	}
	assertSteps(t, "success", p.Success, nil)
	// Recreate's failure plan brings the old release back.
	assertSteps(t, "failure", p.Failure, Steps{
		EnsureGroup{Group: "web-r1", Release: "R1", Count: 3},
		WaitHealthy{Group: "web-r1", Min: 3},
		SetPreview{},
		SetRoutes{Routes: []Route{{"web-r1", 100}}},
		DeleteGroup{Group: "web-r2", Drain: drain},
	})
	// Unprotected development is fine.
	in.Protected = false
	in.Environment = "development"
	if _, err := Make(in); err != nil {
		t.Fatal(err)
	}
}

func TestBlueGreen(t *testing.T) {
	drain := 5 * time.Second
	t.Run("spread, max_terms, preview and verify", func(t *testing.T) {
		in := input(BlueGreen, 2, Group{Name: "web-r1", Release: "R1", Count: 5, Healthy: 4, Weight: 100})
		in.Scale.Spread = 0.2
		in.Scale.MaxTerms = 2
		in.Deploy.BlueGreen = config.BlueGreen{Preview: true, Verify: []string{"./check", "{{PREVIEW_URL}}"}}
		in.PreDeploy = []string{"./migrate"}
		p, err := Make(in)
		if err != nil {
			t.Fatal(err)
		}
		assertSteps(t, "deploy", p.Deploy, Steps{
			RunTask{ID: "R2/pre_deploy", Name: "pre_deploy", Release: "R2", Command: []string{"./migrate"}},
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 6},
			WaitHealthy{Group: "web-r2", Min: 4, MaxTerms: 2},
			SetPreview{Group: "web-r2"},
			RunTask{ID: "R2/verify", Name: "verify", Release: "R2", Command: []string{"./check", "{{PREVIEW_URL}}"}, Preview: true, Group: "web-r2"},
			SetRoutes{Routes: []Route{{"web-r2", 100}}},
			SetPreview{},
		})
		assertSteps(t, "check", p.Check, Steps{WaitHealthy{Group: "web-r2", Min: 4, MaxTerms: 2}})
		assertSteps(t, "success", p.Success, Steps{
			Pause{Duration: 30 * time.Second, Reason: "scale_down_delay"},
			DeleteGroup{Group: "web-r1", Drain: drain},
			ScaleGroup{Group: "web-r2", Count: 5, Drain: drain},
		})
		assertSteps(t, "failure", p.Failure, Steps{
			EnsureGroup{Group: "web-r1", Release: "R1", Count: 5},
			WaitHealthy{Group: "web-r1", Min: 4},
			SetPreview{},
			SetRoutes{Routes: []Route{{"web-r1", 100}}},
			DeleteGroup{Group: "web-r2", Drain: drain},
		})
		if !p.RollbackWindow(0) || p.RollbackWindow(1) {
			t.Errorf("rollback window should be exactly the scale_down_delay pause")
		}
	})
	t.Run("verify implies preview", func(t *testing.T) {
		in := input(BlueGreen, 1, v1)
		in.Deploy.BlueGreen.Verify = []string{"true"}
		p, err := Make(in)
		if err != nil {
			t.Fatal(err)
		}
		if p.Deploy[2] != (SetPreview{Group: "web-r2"}) {
			t.Errorf("step 2 = %v, want the preview route", p.Deploy[2])
		}
	})
	t.Run("first release, desired 1, spread 0", func(t *testing.T) {
		in := input(BlueGreen, 1)
		p, err := Make(in)
		if err != nil {
			t.Fatal(err)
		}
		assertSteps(t, "deploy", p.Deploy, Steps{
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 1},
			WaitHealthy{Group: "web-r2", Min: 1, MaxTerms: 3},
			SetRoutes{Routes: []Route{{"web-r2", 100}}},
		})
		// Nothing to keep around: no scale_down_delay pause, nothing to scale.
		assertSteps(t, "success", p.Success, nil)
		assertSteps(t, "failure", p.Failure, Steps{SetPreview{}, SetRoutes{}, DeleteGroup{Group: "web-r2", Drain: drain}})
	})
	t.Run("zero scale_down_delay", func(t *testing.T) {
		in := input(BlueGreen, 1, v1)
		in.Deploy.ScaleDownDelay = dur(0)
		p, _ := Make(in)
		assertSteps(t, "success", p.Success, Steps{DeleteGroup{Group: "web-r1", Drain: drain}})
	})
}

func TestCanary(t *testing.T) {
	drain := 5 * time.Second
	t.Run("steps, sizes and analysis", func(t *testing.T) {
		in := input(Canary, 2, Group{Name: "web-r1", Release: "R1", Count: 5, Healthy: 5, Weight: 100})
		p, err := Make(in)
		if err != nil {
			t.Fatal(err)
		}
		an := func(w time.Duration) Analyze {
			return Analyze{Canary: "web-r2", Stable: []string{"web-r1"}, Window: w, MinRequests: 100,
				MaxErrorRateIncrease: 0.01, MaxLatencyP99Ratio: 1.5, LatencySlack: DefaultLatencySlack}
		}
		assertSteps(t, "deploy", p.Deploy, Steps{
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 1}, // ceil(5×10%)
			WaitHealthy{Group: "web-r2", Min: 1, MaxTerms: 5},
			SetRoutes{Routes: []Route{{"web-r2", 1}, {"web-r1", 9}}},
			Pause{Duration: time.Minute, Reason: "canary at 10%"},
			an(time.Minute),
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 3}, // ceil(5×50%)
			WaitHealthy{Group: "web-r2", Min: 3, MaxTerms: 5},
			SetRoutes{Routes: []Route{{"web-r2", 1}, {"web-r1", 1}}},
			Pause{Duration: 2 * time.Minute, Reason: "canary at 50%"},
			an(2 * time.Minute),
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 5},
			WaitHealthy{Group: "web-r2", Min: 5, MaxTerms: 5},
			SetRoutes{Routes: []Route{{"web-r2", 100}}},
		})
		assertSteps(t, "success", p.Success, Steps{
			Pause{Duration: 30 * time.Second, Reason: "scale_down_delay"},
			DeleteGroup{Group: "web-r1", Drain: drain},
		})
	})
	t.Run("two stable groups keep their ratio", func(t *testing.T) {
		a := Group{Name: "web-a", Release: "A", Count: 1, Healthy: 1, Weight: 1}
		b := Group{Name: "web-b", Release: "B", Count: 3, Healthy: 3, Weight: 3}
		in := input(Canary, 2, a, b)
		in.Deploy.Canary.Steps = []*config.CanaryStep{{Weight: 20, Pause: dur(time.Second)}}
		p, err := Make(in)
		if err != nil {
			t.Fatal(err)
		}
		// canary 20%, the other 80% split 1:3: 1/5, 1/5, 3/5.
		assertSteps(t, "routes", Steps{p.Deploy[2]}, Steps{SetRoutes{Routes: []Route{{"web-r2", 1}, {"web-a", 1}, {"web-b", 3}}}})
		if got := p.Deploy[4].(Analyze).Stable; !reflect.DeepEqual(got, []string{"web-a", "web-b"}) {
			t.Errorf("stable = %v", got)
		}
	})
	t.Run("first release starts whole", func(t *testing.T) {
		p, err := Make(input(Canary, 3))
		if err != nil {
			t.Fatal(err)
		}
		assertSteps(t, "deploy", p.Deploy, Steps{
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 3},
			WaitHealthy{Group: "web-r2", Min: 3, MaxTerms: 3},
			SetRoutes{Routes: []Route{{"web-r2", 100}}},
		})
	})
	t.Run("desired 1 keeps one canary instance", func(t *testing.T) {
		in := input(Canary, 1, Group{Name: "web-r1", Release: "R1", Count: 1, Healthy: 1, Weight: 100})
		in.Deploy.Canary.Steps = []*config.CanaryStep{{Weight: 1}, {Weight: 99}}
		p, err := Make(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range p.Deploy {
			if e, ok := st.(EnsureGroup); ok && e.Count != 1 {
				t.Errorf("%v: want 1 instance", e)
			}
		}
	})
}

func assertSteps(t *testing.T, phase string, got, want Steps) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		var g, w []string
		for _, s := range got {
			g = append(g, s.String())
		}
		for _, s := range want {
			w = append(w, s.String())
		}
		t.Errorf("%s steps:\n got  %q\n want %q\n(got %#v)", phase, g, w, got)
	}
}

func TestPlanJSONRoundTrip(t *testing.T) {
	for _, s := range []string{Recreate, Rolling, BlueGreen, Canary} {
		in := input(s, 3, v1)
		in.PreDeploy = []string{"migrate"}
		in.Deploy.BlueGreen.Verify = []string{"verify"}
		p, err := Make(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back Plan
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p, &back) {
			t.Errorf("%s: round trip differs:\n%s", s, b)
		}
	}
	var st Steps
	if err := json.Unmarshal([]byte(`[{"kind":"teleport","args":{}}]`), &st); err == nil {
		t.Error("unknown kind decoded")
	}
	if err := json.Unmarshal([]byte(`[{"kind":"pause","args":{"duration":"x"}}]`), &st); err == nil {
		t.Error("bad args decoded")
	}
}

func TestStepStrings(t *testing.T) {
	// Every kind has a readable description for events and status.
	steps := Steps{RunTask{Name: "verify"}, EnsureGroup{}, ScaleGroup{}, WaitHealthy{}, WaitHealthy{MaxTerms: 1},
		SetRoutes{}, SetRoutes{Routes: []Route{{"a", 1}, {"b", 2}}}, SetPreview{}, SetPreview{Group: "g"},
		Pause{}, Analyze{}, DeleteGroup{}}
	for _, s := range steps {
		if s.String() == "" || s.Kind() == "" {
			t.Errorf("%#v has no description", s)
		}
	}
}

// TestCrashBudget: every strategy gives every wait for the new group the
// crash budget (scale.max_terms, else the group's size and at least 3), and
// none gives it to the waits of the rollback, which only restore old groups.
func TestCrashBudget(t *testing.T) {
	old := Group{Name: "web-r1", Release: "R1", Count: 5, Healthy: 5, Weight: 100}
	for _, tc := range []struct {
		strategy string
		desired  int
		maxTerms int
		spread   float64
		want     int
	}{
		{Recreate, 1, 0, 0, 3},
		{Rolling, 2, 0, 0, 3},
		{Rolling, 7, 0, 0, 7},
		{BlueGreen, 5, 0, 0.2, 6}, // launched at 6
		{BlueGreen, 5, 2, 0, 2},
		{Canary, 5, 0, 0, 5},
		{Canary, 5, 9, 0, 9},
	} {
		t.Run(fmt.Sprintf("%s desired %d max_terms %d", tc.strategy, tc.desired, tc.maxTerms), func(t *testing.T) {
			o := old
			o.Count, o.Healthy = tc.desired, tc.desired
			in := input(tc.strategy, tc.desired, o)
			in.Scale.MaxTerms, in.Scale.Spread = tc.maxTerms, tc.spread
			p, err := Make(in)
			if err != nil {
				t.Fatal(err)
			}
			waits := 0
			for _, st := range append(append(Steps{}, p.Deploy...), p.Check...) {
				if w, ok := st.(WaitHealthy); ok {
					waits++
					if w.MaxTerms != tc.want {
						t.Errorf("%s: crash budget %d, want %d", w, w.MaxTerms, tc.want)
					}
				}
			}
			if waits < 2 {
				t.Errorf("only %d waits in deploy and check", waits)
			}
			for _, st := range p.Failure {
				if w, ok := st.(WaitHealthy); ok && w.MaxTerms != 0 {
					t.Errorf("rollback step %s has a crash budget", w)
				}
			}
		})
	}
	in := input(Rolling, 2)
	in.Scale.MaxTerms = -1
	if _, err := Make(in); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "scale.max_terms") {
		t.Errorf("max_terms -1: %v", err)
	}
}
