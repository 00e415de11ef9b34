// Package importrules states Runway's import rules (docs/design.md, "Package
// graph") as data and checks a package graph against them; its test runs
// the check on `go list -deps -json` of the module, so a change that breaks
// a rule fails `go test`.
package importrules

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Module is the import path prefix of Runway's packages.
const Module = "github.com/runwayhq/runway/"

// Leaves are the packages that import nothing of Runway's but other leaves:
// rules, names and wire contracts every layer may use.
var Leaves = []string{
	"internal/config", "internal/store", "internal/netplan", "internal/strategy",
	"internal/naming", "internal/runenv", "internal/redact", "internal/fsutil",
	"internal/procfs", "internal/localca", "internal/httpjson", "internal/secrets",
	"internal/agentapi", "internal/apiwire", "internal/container",
}

// Forbid says which packages a package must not depend on, even indirectly,
// and why.
type Forbid struct {
	Pkg  string
	Deps []string
	Why  string
}

// Forbidden are the layering rules between the control plane and the data
// plane, and between the API's client and its handlers.
var Forbidden = []Forbid{
	{"internal/server", []string{"internal/agent", "internal/proxy", "internal/supervisor"},
		"the control plane reaches the data plane only through internal/agentapi"},
	{"internal/driver/local", []string{"internal/agent", "internal/proxy", "internal/supervisor"},
		"the local target speaks the agent API (internal/agentapi), it does not link the agent"},
	{"internal/driver/docker", []string{"internal/agent", "internal/proxy", "internal/supervisor"},
		"the container target speaks the agent API and the engine's, it does not link the agent"},
	{"internal/engine", []string{"internal/agent", "internal/proxy", "internal/supervisor", "internal/driver/local", "internal/api"},
		"the engine consumes the target contracts (internal/target) only"},
	{"internal/client", []string{"internal/api", "internal/server"},
		"the API's client uses the wire types (internal/apiwire), not the handlers"},
	{"internal/engine", []string{"internal/container"},
		"the engine consumes the target contracts; only a target speaks to a container engine"},
	{"internal/dashboard", []string{"internal/api", "internal/server", "internal/engine"},
		"the dashboard reads and acts only through the server API (internal/client over the API handler it is given), so the API's guard decides everything"},
	{"internal/driver/ecs", []string{"internal/awsfake"},
		"the aws target speaks to AWS; the fake AWS is a test harness"},
	{"cmd/runway", []string{"internal/awsfake"},
		"the fake AWS is a test harness (internal/tools/fakeaws serves it for the README's walkthrough); the binary never links it"},
	{"cmd/runway", []string{"internal/podmantest"},
		"internal/podmantest is a test harness (it starts and resets a podman); only tests import it"},
	{"internal/driver/kubernetes", []string{"internal/agent", "internal/proxy", "internal/supervisor", "internal/driver/local"},
		"the Kubernetes target speaks the cluster's API only"},
	{"cmd/runway", []string{"internal/k8stest"},
		"internal/k8stest is a test harness (it starts a control plane); only tests import it"},
	{"cmd/runway", []string{"internal/k8snode"},
		"internal/k8snode is a test harness (it joins a real kubelet and containerd to a k8stest control plane); only tests import it"},
	{"cmd/runway", []string{"internal/pgtest"},
		"internal/pgtest is a test harness (it starts a throwaway PostgreSQL); only tests import it"},
}

// Graph maps a package (path below Module) to its Runway dependencies,
// direct and indirect (below Module too).
type Graph map[string][]string

// Check returns one message per broken rule, sorted; none when g keeps them.
func Check(g Graph) []string {
	var out []string
	leaf := map[string]bool{}
	for _, l := range Leaves {
		leaf[l] = true
	}
	for _, l := range Leaves {
		for _, d := range g[l] {
			if !leaf[d] {
				out = append(out, fmt.Sprintf("%s is a leaf but depends on %s: a leaf imports only other leaves (%s)", l, d, strings.Join(Leaves, ", ")))
			}
		}
	}
	for _, f := range Forbidden {
		for _, d := range f.Deps {
			if slices.Contains(g[f.Pkg], d) {
				out = append(out, fmt.Sprintf("%s depends on %s: %s", f.Pkg, d, f.Why))
			}
		}
	}
	sort.Strings(out)
	return out
}
