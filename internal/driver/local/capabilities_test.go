package local

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
)

// TestValidationReadsCapabilities: `runway validate` (config.Options built
// from Limits, as server.TargetLimits does) refuses a canary pause just
// outside the statistics windows the local target declares, at the pause,
// and accepts the longest one it declares. The conformance suite checks that
// the agent measures exactly those windows, so validation refuses exactly
// what the target cannot do.
func TestValidationReadsCapabilities(t *testing.T) {
	caps := Capabilities()
	if Limits() != caps.Validation() {
		t.Fatalf("Limits() = %+v, want the capabilities' %+v", Limits(), caps.Validation())
	}
	project := "project \"acme\" {}\nenvironment \"development\" { target = \"local\" }\n"
	manifest := func(pause time.Duration) string {
		return fmt.Sprintf("service \"web\" {\n  command = [\"./web\"]\n  deploy {\n    strategy = \"canary\"\n    timeout = \"2h\"\n"+
			"    canary {\n      step {\n        weight = 10\n        pause = %q\n      }\n    }\n  }\n}\n", pause)
	}
	opts := config.Options{Targets: map[string]config.TargetLimits{"local": Limits()}}
	errorsOf := func(pause time.Duration) hcl.Diagnostics {
		_, diags := config.LoadSourcesWith(opts, []byte(project), map[string][]byte{"web.service.hcl": []byte(manifest(pause))})
		var out hcl.Diagnostics
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				out = append(out, d)
			}
		}
		return out
	}
	if diags := errorsOf(caps.StatsWindowMax); len(diags) != 0 {
		t.Errorf("a pause of the longest window declared (%s) refused: %v", caps.StatsWindowMax, diags)
	}
	for _, pause := range []time.Duration{caps.StatsWindowMax + time.Minute, caps.StatsWindowMin - time.Millisecond} {
		diags := errorsOf(pause)
		if len(diags) != 1 || diags[0].Summary != "Pause outside what the target can measure" || diags[0].Subject.Start.Line != 9 {
			t.Errorf("pause %s: want one error at the pause (line 9), got %v", pause, diags)
		}
	}
}

// TestPlanReadsCapabilities: the planner, given the local target's
// capabilities, keeps group names within the supervisor's 63 characters and
// refuses a canary beside more groups than the proxy routes.
func TestPlanReadsCapabilities(t *testing.T) {
	caps := Capabilities()
	deploy := config.Defaults[config.Deploy]()
	deploy.Strategy, deploy.Canary.Steps = strategy.Canary, []*config.CanaryStep{{Weight: 10}}
	in := strategy.Input{Service: strings.Repeat("s", 50), Environment: "development", Release: "01JC0NF0RMANCE000000000001",
		Scale: config.Scale{Min: 1, Desired: 2, Max: 10}, Limits: caps.Plan(), Deploy: deploy}
	p, err := strategy.Make(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Group) > caps.GroupNameMax {
		t.Errorf("group %q: %d characters, the supervisor takes %d", p.Group, len(p.Group), caps.GroupNameMax)
	}
	for i := range caps.MaxWeightedGroups {
		in.Current = append(in.Current, strategy.Group{Name: fmt.Sprintf("old-%d", i), Release: "r", Count: 1, Healthy: 1, Weight: 1})
	}
	if _, err := strategy.Make(in); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("at most %d weighted groups", caps.MaxWeightedGroups)) {
		t.Errorf("a canary beside %d stable groups: %v, want refused naming the limit", len(in.Current), err)
	}
}
