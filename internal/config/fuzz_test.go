package config

import (
	"bytes"
	"os"
	"testing"
)

// FuzzLoadSources feeds arbitrary project and manifest text through the
// parser, merge, defaults and validation: it must never panic, and every
// error must carry a summary.
func FuzzLoadSources(f *testing.F) {
	project, err := os.ReadFile("../../examples/hello/runway.hcl")
	if err != nil {
		f.Fatal(err)
	}
	service, err := os.ReadFile("../../examples/hello/hello.service.hcl")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(project, service)
	f.Add([]byte(testProject), []byte(svc("  scale {\n    spread = 0.5\n  }")))
	f.Add([]byte(testProject), ServiceScaffold("api", []string{"./api"}, ""))
	f.Add(ProjectScaffold("x"), []byte(`service "a" { command = ["{{PORT}}"] }`))
	f.Add([]byte(`project "a" {}`), []byte(`service "a" { environment "x" { environment "y" {} } }`))
	f.Fuzz(func(t *testing.T, project, service []byte) {
		ws, diags := LoadSources(project, map[string][]byte{"a.service.hcl": service})
		for _, d := range diags {
			if d.Summary == "" {
				t.Fatalf("diagnostic without summary: %#v", d)
			}
		}
		var b bytes.Buffer
		if err := WriteDiagnostics(&b, ws.Files(), diags, false); err != nil {
			t.Fatal(err)
		}
		if diags.HasErrors() || ws.Project == nil {
			return
		}
		for _, s := range ws.Services {
			for _, e := range ws.Project.Environments {
				if r, d := ws.Resolve(s.Name, e.Name); !d.HasErrors() && r == nil {
					t.Fatal("Resolve returned neither a service nor an error")
				}
			}
		}
	})
}
