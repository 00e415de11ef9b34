package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/config -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date (run go test ./internal/config -update and review the diff)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestDiagnosticsGolden(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/diag/*")
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			ws, diags := Load(dir)
			if ws != nil || !diags.HasErrors() {
				t.Fatalf("%s: want errors, got none", dir)
			}
			var b bytes.Buffer
			if err := WriteDiagnostics(&b, nil, diags, false); err != nil {
				t.Fatal(err)
			}
			golden(t, dir+".golden", b.Bytes())
		})
	}
}

func TestThreeMistakesThreeDiagnostics(t *testing.T) {
	_, diags := Load("testdata/diag/three-mistakes")
	if len(diags) != 3 {
		t.Fatalf("want 3 diagnostics, got %d: %s", len(diags), render(diags))
	}
	for _, d := range diags {
		if d.Subject == nil || d.Subject.Start.Line == 0 || !strings.HasSuffix(d.Subject.Filename, "web.service.hcl") {
			t.Errorf("diagnostic without file:line:col: %s", render(diags))
		}
	}
}

func TestScaffoldGolden(t *testing.T) {
	svc := ServiceScaffold("api", []string{"./bin/api", "--port", "{{PORT}}"}, "")
	golden(t, "testdata/golden/service-init.golden", svc)
	proj := ProjectScaffold("acme")
	golden(t, "testdata/golden/project-init.golden", proj)

	// What init writes must itself be valid.
	ws, diags := LoadSources(proj, map[string][]byte{"api.service.hcl": svc})
	if diags.HasErrors() {
		t.Fatalf("scaffolded files are invalid:\n%s", render(diags))
	}
	if _, d := ws.Resolve("api", "production"); d.HasErrors() {
		t.Fatal(render(d))
	}
	// Every documented field appears in the scaffold.
	for _, name := range []string{"command", "image", "health", "stop_timeout", "max_surge", "preview", "verify", "analysis", "autoscale", "schedule", "alarm", "memory_mb", "start_period"} {
		if !bytes.Contains(svc, []byte(name)) {
			t.Errorf("service init output lacks %q", name)
		}
	}
}

func TestManifestDocsCurrent(t *testing.T) {
	var b bytes.Buffer
	if err := WriteManifestDocs(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/golden/manifest.md.golden", b.Bytes())
	committed, err := os.ReadFile("../../docs/manifest.md")
	if err != nil || !bytes.Equal(committed, b.Bytes()) {
		t.Errorf("docs/manifest.md is not current: run `make docs` and commit it")
	}
}

func TestExamplesValid(t *testing.T) {
	dirs, _ := filepath.Glob("../../examples/*")
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, ProjectFileName)); err != nil {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if _, diags := Load(dir); diags.HasErrors() {
				t.Fatal(render(diags))
			}
		})
	}
}
