package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	k8sclient "k8s.io/client-go/kubernetes"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/driver/docker"
	"github.com/runwayhq/runway/internal/driver/ecs"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/driver/local"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// TargetLimits are the limits every target this server can run declares,
// by target kind; `runway validate` and the server validate with the same.
func TargetLimits() map[string]config.TargetLimits {
	return map[string]config.TargetLimits{"local": local.Limits(), "docker": docker.Capabilities().Validation(),
		"kubernetes":         k8sdriver.Capabilities(config.TrafficRunway).Validation(),
		"kubernetes/service": k8sdriver.Capabilities(config.TrafficService).Validation(),
		"aws":                ecs.Capabilities().Validation()}
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// invalid answers manifests that do not validate: 422 with the diagnostics,
// located as `runway validate` locates them.
func invalid(what string, diags hcl.Diagnostics) error {
	errs := diags.Errs()
	first := ""
	if len(errs) > 0 {
		first = ": " + errs[0].Error()
	}
	p := apiwire.Problemf(http.StatusUnprocessableEntity, apiwire.KindInvalidManifest, "%s: %d error(s)%s", what, len(errs), first)
	p.Diagnostics = config.DiagnosticsJSON(diags)
	return p
}

// parseProject parses a runway.hcl held or received by the server.
func parseProject(src []byte) (*config.Project, hcl.Diagnostics) {
	return config.ParseProjectSource(src, config.ProjectFileName)
}

func (b *backend) projectToAPI(p *store.Project, withSource bool) *apiwire.Project {
	out := &apiwire.Project{Name: p.Name, Version: p.Version, Digest: p.Digest, UpdatedBy: p.UpdatedBy, UpdatedAt: p.UpdatedAt}
	if withSource {
		out.Source = string(p.Source)
		if def, diags := parseProject(p.Source); !diags.HasErrors() {
			out.Definition, _ = json.Marshal(def)
		}
	}
	return out
}

// loadProject returns the server's copy of a project, parsed.
func (b *backend) loadProject(ctx context.Context, name string) (*store.Project, *config.Project, error) {
	sp, err := b.st.GetProject(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindUnknownProject, "project %q is not registered on this server; an admin registers it with `runway project apply` in the project's root directory", name)
	}
	if err != nil {
		return nil, nil, err
	}
	def, diags := parseProject(sp.Source)
	if diags.HasErrors() {
		return nil, nil, fmt.Errorf("the stored definition of project %s does not parse: %s", name, diags.Error())
	}
	return sp, def, nil
}

func (b *backend) Project(ctx context.Context, name string) (*apiwire.Project, error) {
	sp, _, err := b.loadProject(ctx, name)
	if err != nil {
		return nil, err
	}
	return b.projectToAPI(sp, true), nil
}

func (b *backend) Projects(ctx context.Context) ([]*apiwire.Project, error) {
	list, err := b.st.ListProjects(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*apiwire.Project, 0, len(list))
	for _, p := range list {
		out = append(out, b.projectToAPI(p, false))
	}
	return out, nil
}

// ApplyProject registers a project or replaces its definition. It refuses
// what would strand running services: an environment removed, or its target
// changed, while a release of it serves or runs.
func (b *backend) ApplyProject(ctx context.Context, name string, req apiwire.ApplyProjectRequest, actor string) (*apiwire.Project, error) {
	def, diags := parseProject([]byte(req.Source))
	if diags.HasErrors() {
		return nil, invalid("runway.hcl", diags)
	}
	if def.Name != name {
		return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "runway.hcl declares project %q, not %q", def.Name, name)
	}
	if err := b.checkKubernetesClusters(def); err != nil {
		return nil, err
	}
	cur, err := b.st.GetProject(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	curVersion := 0
	if cur != nil {
		curVersion = cur.Version
		if cur.Digest == digest([]byte(req.Source)) {
			out := b.projectToAPI(cur, true)
			return out, nil
		}
	}
	if req.BaseVersion != curVersion {
		return nil, apiwire.Problemf(http.StatusConflict, apiwire.KindProjectChanged, "project %s is at version %d on the server, and this apply was prepared against version %d; run `runway project apply` again to see the current difference", name, curVersion, req.BaseVersion)
	}
	if cur != nil {
		old, _ := parseProject(cur.Source)
		if err := b.checkStranded(ctx, name, old, def); err != nil {
			return nil, err
		}
	}
	sp := &store.Project{Name: name, Source: []byte(req.Source), Digest: digest([]byte(req.Source)), Version: curVersion + 1, UpdatedBy: actor}
	if err := b.st.PutProject(ctx, sp); errors.Is(err, store.ErrConflict) {
		return nil, apiwire.Problemf(http.StatusConflict, apiwire.KindProjectChanged, "project %s was changed by another apply meanwhile; run `runway project apply` again to see the current difference", name)
	} else if err != nil {
		return nil, err
	}
	b.log.Info("project applied", "project", name, "version", sp.Version, "by", actor)
	b.record(ctx, &store.ServiceEvent{Kind: "project.applied", Project: name, Actor: actor, Target: "project " + name,
		Message: fmt.Sprintf("project %s applied (version %d)", name, sp.Version)})
	out := b.projectToAPI(sp, true)
	out.Changed = true
	return out, nil
}

// checkStranded refuses a new definition that removes an environment, or
// changes its target, while a service of it has a live release.
func (b *backend) checkStranded(ctx context.Context, name string, old, next *config.Project) error {
	if old == nil {
		return nil
	}
	live, err := b.st.LiveReleases(ctx)
	if err != nil {
		return err
	}
	busy := map[string][]string{}
	for _, r := range live {
		if r.Project == name {
			busy[r.Environment] = append(busy[r.Environment], r.Service)
		}
	}
	for _, e := range old.Environments {
		services := busy[e.Name]
		if len(services) == 0 {
			continue
		}
		sort.Strings(services)
		ne := next.Environment(e.Name)
		switch {
		case ne == nil:
			return apiwire.Problemf(http.StatusConflict, apiwire.KindEnvironmentInUse, "runway.hcl removes environment %q, where %s still run; keep it until they are removed", e.Name, strings.Join(services, ", "))
		case ne.Target != e.Target:
			return apiwire.Problemf(http.StatusConflict, apiwire.KindEnvironmentInUse, "runway.hcl changes the target of environment %q from %s to %s while %s run there; add a new environment for the new target instead", e.Name, e.Target, ne.Target, strings.Join(services, ", "))
		}
	}
	return nil
}

// checkProjectSource refuses a deploy prepared against a runway.hcl other
// than the server's copy, naming what differs.
func checkProjectSource(name string, server *store.Project, serverDef *config.Project, client string) error {
	if digest([]byte(client)) == server.Digest {
		return nil
	}
	def, diags := parseProject([]byte(client))
	if diags.HasErrors() {
		return invalid("the request's runway.hcl", diags)
	}
	changes := config.Diff(mustJSON(serverDef), mustJSON(def))
	if len(changes) == 0 {
		return nil // only comments or layout differ
	}
	const show = 8
	more := ""
	if len(changes) > show {
		more = fmt.Sprintf(" (and %d more)", len(changes)-show)
		changes = changes[:show]
	}
	return apiwire.Problemf(http.StatusConflict, apiwire.KindProjectChanged,
		"your runway.hcl differs from the server's copy of project %s (version %d, applied by %s): %s%s. Policy changes only through `runway project apply` (an admin, from the project's root); or update your copy to the server's (`runway project show`)",
		name, server.Version, server.UpdatedBy, strings.Join(changes, "; "), more)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// hostOwner finds which other live service already serves one of hosts.
func (b *backend) hostOwner(ctx context.Context, ref target.ServiceRef, hosts []config.Host) (host string, owner target.ServiceRef, err error) {
	live, err := b.st.LiveReleases(ctx)
	if err != nil {
		return "", owner, err
	}
	want := map[string]bool{}
	for _, h := range hosts {
		want[h.Name] = true
	}
	for _, r := range live {
		other := target.ServiceRef{Project: r.Project, Environment: r.Environment, Service: r.Service}
		if other == ref {
			continue
		}
		spec, err := engine.DecodeSpec(r.Spec)
		if err != nil {
			continue
		}
		if spec.Service.Environment == "" {
			spec.Service.Environment = r.Environment
		}
		for _, h := range spec.Service.RouteHosts() {
			if want[h.Name] {
				return h.Name, other, nil
			}
		}
	}
	return "", owner, nil
}

// kubernetesNamespace is the namespace of ref's environment as the
// project's runway.hcl says (kubernetes.namespace, else
// <project>-<environment>); "" when the project is unknown (the driver's
// default).
func (b *backend) kubernetesNamespace(ref target.ServiceRef) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, p, err := b.loadProject(ctx, ref.Project)
	if err != nil || p == nil {
		return ""
	}
	if e := p.Environment(ref.Environment); e != nil {
		return e.KubernetesNamespace(ref.Project)
	}
	return ""
}

// kubernetesClient is the client of the cluster ref's environment names
// (kubernetes.kubeconfig and context, else the server's own), as the
// project the server has says. A project or environment it cannot read is
// an error, never the default cluster: a group deleted in the wrong
// cluster is worse than a retried step.
func (b *backend) kubernetesClient(ref target.ServiceRef) (k8sclient.Interface, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, p, err := b.loadProject(ctx, ref.Project)
	if err != nil {
		return nil, err
	}
	e := p.Environment(ref.Environment)
	if e == nil {
		return nil, fmt.Errorf("project %s has no environment %s (run runway project apply)", ref.Project, ref.Environment)
	}
	return b.kubernetesClusterOf(e)
}

// kubernetesClusterOf resolves a kubernetes environment's cluster.
func (b *backend) kubernetesClusterOf(e *config.Environment) (k8sclient.Interface, error) {
	if e.Kubernetes == nil {
		return b.kube.For("", "")
	}
	c, err := b.kube.For(e.Kubernetes.Kubeconfig, e.Kubernetes.Context)
	if err != nil {
		return nil, fmt.Errorf("environment %s: %w", e.Name, err)
	}
	return c, nil
}

// checkKubernetesClusters refuses a project whose kubernetes environment
// names a kubeconfig this server does not read or a context its kubeconfig
// lacks (a server without target kubernetes refuses their releases
// instead).
func (b *backend) checkKubernetesClusters(p *config.Project) error {
	if b.kube == nil {
		return nil
	}
	for _, e := range p.Environments {
		if e.Target != "kubernetes" {
			continue
		}
		if _, err := b.kubernetesClusterOf(e); err != nil {
			return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "runway.hcl: %v", err)
		}
	}
	return nil
}

// projectDomain is the domain of ref's project ("" when unknown: the
// proxy then serves under localhost).
func (b *backend) projectDomain(ref target.ServiceRef) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, p, err := b.loadProject(ctx, ref.Project)
	if err != nil || p == nil {
		return ""
	}
	return p.Domain
}
