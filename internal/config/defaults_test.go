package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
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

// TestExposedPortWarning: a docker environment's service whose image (as
// the engine reports it) does not expose its port is warned, at port; an
// image that exposes it, exposes nothing, or is not on the engine is not.
func TestExposedPortWarning(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("runway.hcl", "project \"acme\" {}\nenvironment \"dev\" { target = \"docker\" }\n")
	write("web.service.hcl", "service \"web\" {\n  image   = \"web:{{VERSION}}\"\n  version = \"1.2\"\n  port    = 3000\n}\n")
	var asked []string
	for _, tc := range []struct {
		ports []string
		ok    bool
		warn  bool
	}{{[]string{"8080/tcp"}, true, true}, {[]string{"3000/tcp", "9090/tcp"}, true, false}, {nil, true, false}, {nil, false, false}} {
		asked = nil
		_, diags := LoadWith(Options{Exposed: func(host, image string) ([]string, bool) {
			asked = append(asked, host+"|"+image)
			return tc.ports, tc.ok
		}}, dir)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		var got *hcl.Diagnostic
		for _, d := range diags {
			if d.Summary == "Port not exposed by the image" {
				got = d
			}
		}
		if (got != nil) != tc.warn {
			t.Errorf("ports %v ok %v: warning %v, want %v", tc.ports, tc.ok, got, tc.warn)
		}
		if got != nil && (got.Severity != hcl.DiagWarning || got.Subject == nil || got.Subject.Start.Line != 4 || !strings.Contains(got.Detail, "EXPOSE 3000")) {
			t.Errorf("warning %+v: want a warning at line 4 (port) naming EXPOSE 3000", got)
		}
		if len(asked) != 1 || asked[0] != "|web:1.2" {
			t.Errorf("asked the engine about %v, want once about web:1.2 on the default engine", asked)
		}
	}
}
