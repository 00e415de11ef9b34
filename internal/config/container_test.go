package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

const dockerProject = `project "acme" {}
environment "development" {
  target   = "docker"
  registry = "127.0.0.1:5000/acme"
  docker {
    host = "unix:///run/podman/podman.sock"
  }
}
environment "preview" { target = "docker" }
`

// mixedProject has a docker and a local environment.
const mixedProject = `project "acme" {}
environment "development" { target = "docker" }
environment "staging" { target = "local" }
`

// dsvc wraps body lines into a service.
func dsvc(body string) string {
	return "service \"web\" {\n" + body + "\n}\n"
}

// TestDockerRules: each rule of target docker yields one error (or the
// named warning) at its line:col, saying how to fix it.
func TestDockerRules(t *testing.T) {
	cases := []struct {
		name, service, summary, at, detail string
		project                            string
	}{
		{"image without tag", dsvc(`  image = "web"`), "Image without tag or digest", "2:11", `"web:{{VERSION}}"`, ""},
		{"image with a port but no tag", dsvc(`  image = "127.0.0.1:5000/web"`), "Image without tag or digest", "2:11", "127.0.0.1:5000/web:{{VERSION}}", ""},
		{"image with a scheme", dsvc(`  image = "https://r.io/web:1"`), "Invalid image", "2:11", "without a scheme", ""},
		{"image upper case", dsvc(`  image = "Web:1"`), "Invalid image", "2:11", "lower case", ""},
		{"bad digest", dsvc(`  image = "web@sha256:abc"`), "Invalid image digest", "2:11", "64", ""},
		{"bad tag", dsvc(`  image = "web:-x"`), "Invalid image tag", "2:11", "", ""},
		{"unknown template in image", dsvc(`  image = "web:{{VERSON}}"`), "Unknown template value", "2:11", "Did you mean {{VERSION}}?", ""},
		{"missing image and build", dsvc(`  port = 8080`), "Missing image", "1:1", "build {", "project \"acme\" {}\nenvironment \"development\" { target = \"docker\" }\n"},
		{"absolute context", dsvc("  build {\n    context = \"/src\"\n  }"), "build context must be relative", "3:15", "", ""},
		{"dockerfile outside", dsvc("  build {\n    dockerfile = \"../Dockerfile\"\n  }"), "Dockerfile outside the build context", "3:18", "inside context", ""},
		{"build arg name", dsvc("  build {\n    args = { \"1X\" = \"y\" }\n  }"), "Invalid build argument name", "3:14", "", ""},
		{"build on local", "service \"web\" {\n  command = [\"./web\"]\n  build {\n  }\n  environment \"development\" {\n    command = []\n  }\n}\n", "build is used by targets docker, kubernetes and aws only", "3:3", "target local", mixedProject},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			project := tc.project
			if project == "" {
				project = dockerProject
			}
			_, all := LoadSources([]byte(project), map[string][]byte{"web.service.hcl": []byte(tc.service)})
			var diags hcl.Diagnostics
			for _, d := range all {
				if d.Severity == hcl.DiagError || strings.Contains(d.Summary, tc.summary) {
					diags = append(diags, d)
				}
			}
			if len(diags) != 1 {
				t.Fatalf("want 1 diagnostic %q, got %d:\n%s", tc.summary, len(diags), render(all))
			}
			d := diags[0]
			if d.Summary != tc.summary {
				t.Errorf("summary = %q, want %q", d.Summary, tc.summary)
			}
			if got := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column); got != tc.at {
				t.Errorf("at %s, want %s\n%s", got, tc.at, render(diags))
			}
			if !strings.Contains(d.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to contain %q", d.Detail, tc.detail)
			}
		})
	}
}

func TestDockerProjectRules(t *testing.T) {
	cases := []struct{ name, env, summary, at string }{
		{"docker block on local", "  target = \"local\"\n  docker {\n  }", "docker block is used by target docker only", "4:3"},
		{"registry on local", "  registry = \"r.io/x\"", "registry is used by targets docker, kubernetes and aws only", "3:14"},
		{"registry with scheme", "  target = \"docker\"\n  registry = \"https://r.io/x\"", "Invalid registry", "4:14"},
		{"registry with tag", "  target = \"docker\"\n  registry = \"r.io/x:1\"", "Invalid registry", "4:14"},
		{"host scheme", "  target = \"docker\"\n  docker {\n    host = \"ssh://me@box\"\n  }", "Invalid engine address", "5:12"},
		{"host relative socket", "  target = \"docker\"\n  docker {\n    host = \"unix://docker.sock\"\n  }", "Invalid engine address", "5:12"},
		{"tcp without port", "  target = \"docker\"\n  docker {\n    host = \"tcp://10.0.0.5\"\n  }", "Invalid engine address", "5:12"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "project \"a\" {}\nenvironment \"dev\" {\n" + tc.env + "\n}\n"
			_, diags := ParseProjectSource([]byte(src), "runway.hcl")
			if len(diags) != 1 {
				t.Fatalf("want 1 diagnostic %q, got %d:\n%s", tc.summary, len(diags), render(diags))
			}
			d := diags[0]
			if d.Summary != tc.summary {
				t.Errorf("summary = %q, want %q", d.Summary, tc.summary)
			}
			if got := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column); got != tc.at {
				t.Errorf("at %s, want %s\n%s", got, tc.at, render(diags))
			}
		})
	}
	for _, ok := range []string{"unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "tcp://[::1]:2376"} {
		if why := engineHostProblem(ok); why != "" {
			t.Errorf("engineHostProblem(%q) = %q", ok, why)
		}
	}
}

// TestDockerResolve: a valid docker service resolves with its settings,
// and a build without image is tagged <registry>/<service>:{{VERSION}}, or
// <service>:{{VERSION}} without a registry.
func TestDockerResolve(t *testing.T) {
	service := dsvc("  build {\n    args = { GREETING = \"{{ENVIRONMENT}}\" }\n  }\n  resources {\n    cpu = 0.5\n    memory_mb = 128\n  }")
	ws, diags := LoadSources([]byte(dockerProject), map[string][]byte{"web.service.hcl": []byte(service)})
	if len(diags) != 0 {
		t.Fatalf("unexpected diagnostics:\n%s", render(diags))
	}
	s, _ := ws.Resolve("web", "development")
	if s.Image != "127.0.0.1:5000/acme/web:{{VERSION}}" || s.Build == nil || s.Build.Context != "." || s.Build.Dockerfile != "Dockerfile" || s.Build.Args["GREETING"] != "{{ENVIRONMENT}}" {
		t.Fatalf("resolved %+v build %+v", s.Image, s.Build)
	}
	e := ws.Project.Environment("development")
	if e.Registry != "127.0.0.1:5000/acme" || e.Docker == nil || e.Docker.Host != "unix:///run/podman/podman.sock" {
		t.Fatalf("environment %+v docker %+v", e, e.Docker)
	}
	if p, _ := ws.Resolve("web", "preview"); p.Image != "web:{{VERSION}}" {
		t.Fatalf("preview image %q, want web:{{VERSION}}", p.Image)
	}
}

func TestSplitImage(t *testing.T) {
	for _, c := range []struct{ in, repo, tag, digest string }{
		{"web", "web", "", ""},
		{"web:1", "web", "1", ""},
		{"r.io:5000/a/web", "r.io:5000/a/web", "", ""},
		{"r.io:5000/a/web:1.2", "r.io:5000/a/web", "1.2", ""},
		{"web@sha256:00", "web", "", "sha256:00"},
		{"r.io:5000/web:1@sha256:00", "r.io:5000/web", "1", "sha256:00"},
	} {
		repo, tag, digest := SplitImage(c.in)
		if repo != c.repo || tag != c.tag || digest != c.digest {
			t.Errorf("SplitImage(%q) = %q %q %q", c.in, repo, tag, digest)
		}
	}
}

// TestCheckBuildContexts: loading from files, a missing context or
// Dockerfile is an error located at the build block's field.
func TestCheckBuildContexts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("runway.hcl", dockerProject)
	write("web/web.service.hcl", dsvc("  build {\n    context = \"app\"\n  }"))
	write("api/api.service.hcl", strings.Replace(dsvc("  build {\n    dockerfile = \"Containerfile\"\n  }"), `"web"`, `"api"`, 1))
	_, got := Load(dir)
	var lines []string
	for _, d := range got {
		lines = append(lines, fmt.Sprintf("%s:%d:%d %s", filepath.Base(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column, d.Summary))
	}
	want := "api.service.hcl:3:18 Dockerfile not found\nweb.service.hcl:3:15 Build context not found"
	if strings.Join(lines, "\n") != want {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), want)
	}
	write("web/app/Dockerfile", "FROM scratch\n")
	write("api/Containerfile", "FROM scratch\n")
	if _, d := Load(dir); len(d) != 0 {
		t.Fatalf("after creating them: %s", render(d))
	}
}
