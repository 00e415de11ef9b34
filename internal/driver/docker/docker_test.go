package docker

import (
	"testing"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/target"
)

// TestGroupSpecInit: a container runs under an init unless the manifest
// says init = false (the default, from the schema, is true).
func TestGroupSpecInit(t *testing.T) {
	project := []byte("project \"acme\" {}\nenvironment \"dev\" { target = \"docker\" }\n")
	for _, tc := range []struct {
		attr   string
		noInit bool
	}{{"", false}, {"  init = true\n", false}, {"  init = false\n", true}} {
		w, diags := config.LoadSources(project, map[string][]byte{"web.service.hcl": []byte("service \"web\" {\n  image = \"web:{{VERSION}}\"\n" + tc.attr + "}\n")})
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		s, diags := w.Resolve("web", "dev")
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		s.Version = "1"
		spec := GroupSpec(target.GroupSpec{Ref: target.ServiceRef{Project: "acme", Environment: "dev", Service: "web"}, Group: "web-1", Release: "1", Spec: s, Count: 1})
		if spec.NoInit != tc.noInit || spec.Image != "web:1" {
			t.Errorf("%q: no_init %v image %s, want no_init %v", tc.attr, spec.NoInit, spec.Image, tc.noInit)
		}
	}
}
