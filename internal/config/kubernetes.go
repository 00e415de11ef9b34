package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// The rules of target kubernetes: its environment block, the registry it
// requires, the images its services give, and the canary steps its
// "service" traffic mode can express.

// Kubernetes says which cluster, context and namespace a kubernetes
// environment runs in and how its traffic is routed.
type Kubernetes struct {
	Kubeconfig string `hcl:"kubeconfig" json:"kubeconfig,omitempty" default:"\"\"" defaultdoc:"the server's (its first --kubeconfig, else KUBECONFIG, ~/.kube/config, the in-cluster service account)" doc:"Path of the kubeconfig file the server reads for this environment's cluster, such as \"/etc/runway/kubeconfig\"; the server reads only files it was started with (runway server --kubeconfig FILE, repeatable), and refuses a project naming another."`
	Context    string `hcl:"context" json:"context,omitempty" default:"\"\"" defaultdoc:"the server's --kube-context in the server's kubeconfig, else the kubeconfig's current context" doc:"Context of the kubeconfig to use, such as \"prod-eu\": it selects the cluster (and credentials) of this environment's releases; a context the kubeconfig lacks is refused, naming those it has."`
	Namespace  string `hcl:"namespace" json:"namespace,omitempty" default:"\"\"" defaultdoc:"<project>-<environment>" doc:"Namespace the environment's Deployments, Services, Jobs and Secrets live in."`
	Traffic    string `hcl:"traffic" json:"traffic,omitempty" default:"\"runway\"" enum:"runway|service" doc:"How requests reach the groups: runway (Runway's proxy in the cluster: exact weights, preview host, per-group statistics) or service (a Kubernetes Service: blue/green switches its selector, a canary is a replica ratio)."`
}

// Kubernetes traffic modes.
const (
	TrafficRunway  = "runway"
	TrafficService = "service"
)

// KubernetesTarget is the key of a kubernetes environment's limits in
// Options.Targets: "kubernetes" for traffic runway, "kubernetes/service"
// for traffic service (the modes carry different limits).
func (e *Environment) KubernetesTarget() string {
	if e.Target != "kubernetes" {
		return e.Target
	}
	if e.Kubernetes != nil && e.Kubernetes.Traffic == TrafficService {
		return "kubernetes/" + TrafficService
	}
	return "kubernetes"
}

// KubernetesNamespace is the namespace of a kubernetes environment of
// project: the block's, else <project>-<environment> (cut to 63
// characters).
func (e *Environment) KubernetesNamespace(project string) string {
	if e.Kubernetes != nil && e.Kubernetes.Namespace != "" {
		return e.Kubernetes.Namespace
	}
	ns := project + "-" + e.Name
	if len(ns) > 63 {
		ns = strings.TrimRight(ns[:63], "-")
	}
	return ns
}

// dnsLabelRe is a Kubernetes namespace name (RFC 1123 label).
var dnsLabelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func checkKubernetesEnvironment(c *checker, e *Environment, base string) {
	if e.Target != "kubernetes" {
		if e.Kubernetes != nil {
			c.errf(base+".kubernetes", "kubernetes block is used by target kubernetes only", "Environment %q has target %s; remove the kubernetes block or set target = \"kubernetes\".", e.Name, e.Target)
		}
		return
	}
	if e.Registry == "" {
		c.errf(base, "Missing registry", "Environment %q runs on Kubernetes, whose nodes pull images from a registry: set registry = \"registry.acme.com/team\" (host[:port]/prefix) and give images under it.", e.Name)
	}
	k := e.Kubernetes
	if k == nil {
		return
	}
	if k.Namespace != "" && !dnsLabelRe.MatchString(k.Namespace) {
		c.errf(base+".kubernetes.namespace", "Invalid namespace", "namespace %q must be a DNS label: lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit, such as \"acme-prod\".", k.Namespace)
	}
	if k.Kubeconfig != "" && strings.ContainsRune(k.Kubeconfig, 0) {
		c.errf(base+".kubernetes.kubeconfig", "Invalid kubeconfig path", "kubeconfig must be a file path, such as \"/etc/runway/kubeconfig\".")
	} else if k.Kubeconfig != "" && !filepath.IsAbs(k.Kubeconfig) && !strings.HasPrefix(k.Kubeconfig, "~/") {
		c.errf(base+".kubernetes.kubeconfig", "kubeconfig must be absolute", "kubeconfig %q is read by the server, whose working directory is not the manifest's: give an absolute path (or ~/...), or leave it out to use KUBECONFIG.", k.Kubeconfig)
	}
	if k.Context != "" && (len(k.Context) > 253 || strings.ContainsAny(k.Context, "\x00\n")) {
		c.errf(base+".kubernetes.context", "Invalid context", "context %q must be the name of a context of the kubeconfig.", trunc(k.Context, 64))
	}
}

// checkKubernetesImage: a kubernetes node pulls the image, so it names the
// registry host it is pulled from.
func checkKubernetesImage(c *checker, s *Service, env *Environment) {
	if env.Target != "kubernetes" || s.Image == "" {
		return
	}
	checkImage(c, "image", s.Image)
	repo, _, _ := SplitImage(s.Image)
	first, _, found := strings.Cut(repo, "/")
	if !found || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		c.errf("image", "Image without a registry", "image %q names no registry, and Kubernetes nodes pull every image: write it under the environment's registry, such as %q.", s.Image, strings.TrimSuffix(env.Registry, "/")+"/"+repo+":{{VERSION}}")
	}
}

// ReplicaRatioWeights are the canary weights (1 to 99) that traffic
// "service" carries exactly for a stable group of desired instances: the
// canary of weight w gets max(1, ceil(desired*w/100)) instances beside the
// desired stable ones (the planner's count), and one Service spreads
// requests over all of them, so the canary's share is n/(n+desired).
func ReplicaRatioWeights(desired int) []int {
	var ws []int
	for w := 1; w < 100; w++ {
		if ReplicaRatioExact(desired, w) {
			ws = append(ws, w)
		}
	}
	return ws
}

// ReplicaRatioExact reports whether a canary of weight w beside desired
// stable instances gets exactly w% of the requests of one Service.
func ReplicaRatioExact(desired, w int) bool {
	if desired < 1 {
		return false
	}
	n := max(1, (desired*w+99)/100)
	return n*100 == w*(n+desired)
}

func checkReplicaRatio(c *checker, sc Scale, d Deploy, targetKind string) {
	if d.Strategy != "canary" {
		return
	}
	for i, st := range d.Canary.Steps {
		if st == nil || st.Weight <= 0 || st.Weight >= 100 || ReplicaRatioExact(sc.Desired, st.Weight) {
			continue
		}
		ok := ReplicaRatioWeights(sc.Desired)
		hint := "no weight is exact with that count; raise scale.desired"
		if len(ok) > 0 {
			hint = fmt.Sprintf("with scale.desired = %d the exact weights are %s", sc.Desired, joinInts(ok))
		}
		c.errf(fmt.Sprintf("deploy.canary.step[%d].weight", i), "Canary weight a replica ratio cannot express",
			"target %s routes through one Kubernetes Service, so a canary's share is its instances over all instances: weight = %d is not such a ratio (%s). Use one of those weights, or traffic = \"runway\" for exact weights.",
			targetKind, st.Weight, hint)
	}
}

func joinInts(ns []int) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, n)
	}
	return b.String()
}
