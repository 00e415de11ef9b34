package config

import (
	"testing"
	"time"
)

// The agent fills what a group spec leaves out from these, so they must be
// the schema's defaults exactly (docs/manifest.md prints the same tags).
func TestSchemaDefaults(t *testing.T) {
	h := Defaults[Health]()
	if h.Kind != "http" || h.Path != "/" || h.Interval.Duration != 5*time.Second || h.Timeout.Duration != 2*time.Second ||
		h.HealthyThreshold != 2 || h.UnhealthyThreshold != 3 || h.StartPeriod.Duration != 10*time.Second {
		t.Fatalf("Defaults[Health]() = %+v", h)
	}
	if d := Defaults[Deploy]().DrainTimeout.Duration; d != 30*time.Second {
		t.Fatalf("drain_timeout default %s", d)
	}
	if d := Defaults[Hooks]().StopTimeout.Duration; d != 30*time.Second {
		t.Fatalf("stop_timeout default %s", d)
	}
	// A manifest without a health block gets the same values.
	w, diags := LoadSources([]byte("project \"p\" {}\nenvironment \"dev\" { target = \"local\" }\n"),
		map[string][]byte{"web.service.hcl": []byte("service \"web\" {\n  command = [\"./web\"]\n}\n")})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	s, diags := w.Resolve("web", "dev")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if s.Health.Kind != h.Kind || s.Health.Path != h.Path || s.Health.Interval != h.Interval || s.Health.Timeout != h.Timeout ||
		s.Health.HealthyThreshold != h.HealthyThreshold || s.Health.UnhealthyThreshold != h.UnhealthyThreshold || s.Health.StartPeriod != h.StartPeriod {
		t.Fatalf("loaded health %+v, want %+v", s.Health, h)
	}
}
