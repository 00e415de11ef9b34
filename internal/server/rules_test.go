package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/config"
)

// TestValidateAndServerAgree feeds every rule's bad example to `runway
// validate` and to the server's API, and requires both to refuse it with the
// same diagnostics (summary, detail, line and column): the server validates
// with the same code, against its own copy of the project, so what passes
// validate is what the server accepts and the other way round.
func TestValidateAndServerAgree(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	const project = `project "rules" {}
environment "dev" {}
environment "prod" {
  protected = true
}
`
	dir := c.writeProject("rules", project, nil)
	canary := func(timeout, pause string) string {
		return fmt.Sprintf("  deploy {\n    strategy = \"canary\"\n    timeout  = %q\n    canary {\n      step {\n        weight = 10\n        pause  = %q\n      }\n    }\n  }\n", timeout, pause)
	}
	cases := []struct {
		name, body, summary string
	}{
		{"reserved PORT", "  env = { PORT = \"9000\" }\n", "Reserved variable name"},
		{"reserved RUNWAY_", "  env = { RUNWAY_RELEASE = \"x\" }\n", "Reserved variable name"},
		{"version", "  version = \"1.1;id>x;#\"\n", "Invalid version"},
		{"host of another environment", "  environment \"dev\" {\n    hosts = [\"web.prod.localhost\"]\n  }\n", "Host outside the environment"},
		{"wildcard host", "  environment \"dev\" {\n    hosts = [\"*.dev.localhost\"]\n  }\n", "Wildcard hosts are not supported"},
		{"canary pauses vs timeout", canary("30s", "40s"), "Canary pauses exceed the timeout"},
		{"canary pause vs the target's windows", canary("1h", "10m"), "Pause outside what the target can measure"},
		{"recreate in a protected environment", "  deploy {\n    strategy = \"recreate\"\n  }\n", "recreate is refused in a protected environment"},
		{"unknown template", "  env = { A = \"{{RELEASE}}\" }\n", "Unknown template value"},
		{"health timeout above interval", "  health {\n    interval = \"1s\"\n    timeout  = \"2s\"\n  }\n", "Health timeout longer than interval"},
		{"rolling without progress", "  deploy {\n    strategy = \"rolling\"\n    rolling {\n      max_surge = 0\n    }\n  }\n", "Rolling cannot make progress"},
		{"canary weight", "  deploy {\n    strategy = \"canary\"\n    canary {\n      step {\n        weight = 100\n      }\n    }\n  }\n", "Canary weight out of range"},
		{"spread", "  scale {\n    spread = 1.5\n  }\n", "spread out of range"},
		{"min above desired", "  scale {\n    min     = 3\n    desired = 2\n    max     = 4\n  }\n", "min is above desired"},
		{"unknown argument", "  prot = 8080\n", `Unsupported argument "prot"`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("web%d", i)
			svc := fmt.Sprintf("service %q {\n  command = [%q]\n%s}\n", name, helloBin, tc.body)
			file := filepath.Join(dir, name+".service.hcl")
			if err := os.WriteFile(file, []byte(svc), 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(file)

			out, err := c.cliIn(dir, "validate", file, "--output", "json")
			if err == nil {
				t.Fatalf("runway validate accepted it:\n%s", out)
			}
			var v struct {
				Valid       bool                    `json:"valid"`
				Diagnostics []config.DiagnosticJSON `json:"diagnostics"`
			}
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("runway validate --output json: %v\n%s", err, out)
			}

			req := deployRequestIn(t, dir, "rules", "dev", name, "1")
			_, err = c.api.Deploy(context.Background(), req)
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Status != 422 {
				t.Fatalf("the server accepted what validate refuses (%v)", err)
			}
			got, want := key(ce.Diagnostics), key(v.Diagnostics)
			if got != want {
				t.Fatalf("validate and the server disagree:\nvalidate: %s\nserver:   %s", want, got)
			}
			if v.Diagnostics[0].Summary != tc.summary {
				t.Fatalf("first diagnostic %q, want %q", v.Diagnostics[0].Summary, tc.summary)
			}
		})
	}
	// The project's own rules: runway.hcl refused by apply as by validate.
	bad := filepath.Join(c.dir, "badproject")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "runway.hcl"), []byte("project \"bad\" {}\nenvironment \"prod\" {\n  region = \"ohio\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := c.cliIn(bad, "project", "apply", "--yes")
	if err == nil {
		t.Fatalf("project apply of an invalid runway.hcl succeeded:\n%s", out)
	}
	_, err = c.api.ApplyProject(context.Background(), "bad", apiwire.ApplyProjectRequest{Source: "project \"bad\" {}\nenvironment \"prod\" {\n  region = \"ohio\"\n}\n",
		RequestID: "01JD3Q8Y7Z5W2X4V6T8R0P2N4A", RequestedAt: time.Now().UTC()})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 422 || len(ce.Diagnostics) != 1 || ce.Diagnostics[0].Summary != "Invalid region" || ce.Diagnostics[0].Line != 3 {
		t.Fatalf("raw project apply of an invalid runway.hcl: %v %+v", err, ce)
	}
}

// key renders diagnostics without their file's directory, for comparison.
func key(ds []config.DiagnosticJSON) string {
	var out string
	for _, d := range ds {
		out += fmt.Sprintf("[%s %s:%d:%d %s | %s] ", d.Severity, filepath.Base(d.File), d.Line, d.Column, d.Summary, d.Detail)
	}
	return out
}
