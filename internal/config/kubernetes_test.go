package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

const k8sProject = `project "acme" {}
environment "production" {
  target   = "kubernetes"
  registry = "registry.acme.test/acme"
  kubernetes {
    context = "prod"
    traffic = "service"
  }
}
environment "staging" {
  target   = "kubernetes"
  registry = "registry.acme.test/acme"
}
`

func TestKubernetesProjectRules(t *testing.T) {
	cases := []struct{ name, env, summary, at string }{
		{"no registry", "  target = \"kubernetes\"", "Missing registry", "2:1"},
		{"kubernetes block on docker", "  target = \"docker\"\n  kubernetes {\n  }", "kubernetes block is used by target kubernetes only", "4:3"},
		{"bad namespace", "  target = \"kubernetes\"\n  registry = \"r.io/x\"\n  kubernetes {\n    namespace = \"Acme_Prod\"\n  }", "Invalid namespace", "6:17"},
		{"relative kubeconfig", "  target = \"kubernetes\"\n  registry = \"r.io/x\"\n  kubernetes {\n    kubeconfig = \"kube/config\"\n  }", "kubeconfig must be absolute", "6:18"},
		{"unknown traffic", "  target = \"kubernetes\"\n  registry = \"r.io/x\"\n  kubernetes {\n    traffic = \"mesh\"\n  }", "Invalid traffic", "6:15"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "project \"a\" {}\nenvironment \"dev\" {\n" + tc.env + "\n}\n"
			_, diags := ParseProjectSource([]byte(src), "runway.hcl")
			if len(diags) != 1 {
				t.Fatalf("want 1 diagnostic %q, got %d:\n%s", tc.summary, len(diags), render(diags))
			}
			d := diags[0]
			if !strings.Contains(d.Summary, tc.summary) {
				t.Errorf("summary = %q, want %q", d.Summary, tc.summary)
			}
			if got := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column); got != tc.at {
				t.Errorf("at %s, want %s\n%s", got, tc.at, render(diags))
			}
		})
	}
	p, diags := ParseProjectSource([]byte(k8sProject), "runway.hcl")
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	prod, staging := p.Environments[0], p.Environments[1]
	if prod.KubernetesTarget() != "kubernetes/service" || staging.KubernetesTarget() != "kubernetes" {
		t.Errorf("limits keys %q, %q", prod.KubernetesTarget(), staging.KubernetesTarget())
	}
	if got := staging.KubernetesNamespace("acme"); got != "acme-staging" {
		t.Errorf("default namespace %q, want acme-staging", got)
	}
	if prod.Kubernetes.Traffic != "service" || prod.Kubernetes.Context != "prod" {
		t.Errorf("block %+v", prod.Kubernetes)
	}
}

func canarySvc(image string, desired int, weights ...int) string {
	var steps strings.Builder
	for _, w := range weights {
		fmt.Fprintf(&steps, "      step {\n        weight = %d\n        pause = \"1m\"\n      }\n", w)
	}
	return fmt.Sprintf("service \"web\" {\n  image = %q\n  scale {\n    desired = %d\n    max = 20\n  }\n  deploy {\n    strategy = \"canary\"\n    canary {\n%s    }\n  }\n}\n", image, desired, steps.String())
}

// TestKubernetesServiceRules: images name a registry; with traffic
// "service" a canary step whose weight no replica ratio gives is refused
// at its line, with the weights that are exact.
func TestKubernetesServiceRules(t *testing.T) {
	opts := Options{Targets: map[string]TargetLimits{"kubernetes/service": {ReplicaRatio: true}, "kubernetes": {}}}
	load := func(svc string) hcl.Diagnostics {
		_, diags := LoadSourcesWith(opts, []byte(k8sProject), map[string][]byte{"web.service.hcl": []byte(svc)})
		return diags
	}
	errs := func(diags hcl.Diagnostics) (out hcl.Diagnostics) {
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				out = append(out, d)
			}
		}
		return out
	}
	if d := errs(load(canarySvc("registry.acme.test/acme/web:{{VERSION}}", 4, 20))); len(d) != 0 {
		t.Fatalf("an exact weight refused: %s", render(d))
	}
	d := errs(load(canarySvc("web:{{VERSION}}", 4, 20)))
	if len(d) != 1 || d[0].Summary != "Image without a registry" || !strings.Contains(d[0].Detail, "registry.acme.test/acme/web:{{VERSION}}") {
		t.Fatalf("image without registry: %s", render(d))
	}
	// 10% of 4 instances: the canary gets 1 of 5, 20%: refused, in the
	// service-traffic environment only (the runway one is exact).
	d = errs(load(canarySvc("registry.acme.test/acme/web:1", 4, 10, 20)))
	if len(d) != 1 || d[0].Summary != "Canary weight a replica ratio cannot express" {
		t.Fatalf("want one refused step, got %s", render(d))
	}
	if got := fmt.Sprintf("%d:%d", d[0].Subject.Start.Line, d[0].Subject.Start.Column); got != "11:18" {
		t.Errorf("at %s, want the weight of the first step (11:18)", got)
	}
	if !strings.Contains(d[0].Detail, "exact weights are 20") || !strings.Contains(d[0].Detail, `traffic = "runway"`) {
		t.Errorf("detail %q", d[0].Detail)
	}
}

func TestReplicaRatioWeights(t *testing.T) {
	for _, c := range []struct {
		desired int
		want    []int
	}{{1, []int{50}}, {4, []int{20}}, {9, []int{10, 25}}, {0, nil}} {
		if got := ReplicaRatioWeights(c.desired); !reflect.DeepEqual(got, c.want) {
			t.Errorf("ReplicaRatioWeights(%d) = %v, want %v", c.desired, got, c.want)
		}
	}
	// Every weight it lists is the canary's exact share.
	for d := 1; d <= 50; d++ {
		for _, w := range ReplicaRatioWeights(d) {
			n := max(1, (d*w+99)/100)
			if n*100 != w*(n+d) {
				t.Fatalf("desired %d weight %d: %d of %d", d, w, n, n+d)
			}
		}
	}
}

// TestNoStatsRefusesCanary: a target that measures no statistics refuses
// a canary (its analysis could never pass) at deploy.strategy.
func TestNoStatsRefusesCanary(t *testing.T) {
	opts := Options{Targets: map[string]TargetLimits{"kubernetes/service": {NoStats: true}, "kubernetes": {NoStats: true}}}
	_, diags := LoadSourcesWith(opts, []byte(k8sProject), map[string][]byte{"web.service.hcl": []byte(canarySvc("registry.acme.test/acme/web:1", 4, 20))})
	var got []string
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			got = append(got, fmt.Sprintf("%s %d:%d", d.Summary, d.Subject.Start.Line, d.Subject.Start.Column))
		}
	}
	// One per environment of the project (both kubernetes).
	if len(got) != 2 || got[0] != "Canary analysis needs statistics the target does not measure 8:16" || got[1] != got[0] {
		t.Errorf("diagnostics %v", got)
	}
}

// TestKubernetesBuild: a build block is allowed in a kubernetes
// environment; the image defaults to <registry>/<service>:{{VERSION}},
// which names the registry the nodes pull from.
func TestKubernetesBuild(t *testing.T) {
	ws, diags := LoadSources([]byte(k8sProject), map[string][]byte{"web.service.hcl": []byte("service \"web\" {\n  port = 8080\n  build {\n    context = \".\"\n  }\n}\n")})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	svc, diags := ws.Resolve("web", "staging")
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	if svc.Image != "registry.acme.test/acme/web:{{VERSION}}" {
		t.Fatalf("image = %q, want the service under the registry", svc.Image)
	}
}
