package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/config"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/secrets"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// backend implements api.Backend over the store and the engine.
type backend struct {
	st store.Store
	// kube resolves kubernetes environments' clusters (nil: the server
	// runs no target kubernetes).
	kube    *k8sdriver.Clusters
	eng     *engine.Engine
	drivers engine.Drivers
	// limits are the declared limits of each target (validation).
	limits map[string]config.TargetLimits
	log    *slog.Logger
	// dockerHost is the address of the engine target docker runs on, and
	// where it came from ("" without one).
	dockerHost, dockerSource string
	// secrets keeps the values releases pin (nil: the server keeps none).
	secrets *secrets.Vault
	// noAgent is the agent's token file when the server runs without an
	// agent (aws environments alone), "" when it has one.
	noAgent string
	// waiting says what a release in progress waits for (the engine's
	// Waiting); nil when nothing runs here.
	waiting func(id string) string
	// feedPoll is how often a followed feed of events looks for new ones.
	feedPoll time.Duration
	// streams ends every followed stream (logs, events) when the server
	// shuts down: http.Server.Shutdown waits for requests to end, and a
	// stream ends only when its context does.
	streams context.Context
}

// streamCtx is ctx, also ended by the server's shutdown.
func (b *backend) streamCtx(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	if b.streams == nil {
		return ctx, cancel
	}
	stop := context.AfterFunc(b.streams, cancel)
	return ctx, func() { stop(); cancel() }
}

var _ api.Backend = (*backend)(nil)

// Namespaces of the key/value table.
const (
	nsRequests       = "requests"        // request id -> release id (replay protection)
	nsRequestDigests = "request_digests" // request id -> digest of the request's body
	nsRollbacks      = "rollback_of"     // release id -> the release it rolls back to
)

func (b *backend) Deploy(ctx context.Context, req apiwire.DeployRequest, actor string) (*apiwire.Release, error) {
	rel, id, err := b.replayed(ctx, req.RequestID)
	if rel != nil || err != nil {
		return rel, err
	}
	sp, project, err := b.loadProject(ctx, req.Project)
	if err != nil {
		return nil, err
	}
	if err := checkProjectSource(req.Project, sp, project, req.ProjectSource); err != nil {
		return nil, err
	}
	env := project.Environment(req.Environment)
	if env == nil {
		return nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindUnknownEnvironment, "project %s has no environment %q; it has %s", req.Project, req.Environment, strings.Join(project.EnvironmentNames(), ", "))
	}
	if _, err := b.drivers.For(env.KubernetesTarget()); err != nil {
		return nil, b.noDriver(env)
	}
	if err := b.checkEngine(env); err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	sources := map[string]string{}
	for _, f := range req.Sources {
		files[f.Name], sources[f.Name] = []byte(f.Content), f.Content
	}
	// The same code as `runway validate`, on the server's copy of the project.
	ws, diags := config.LoadSourcesWith(config.Options{Targets: b.limits}, sp.Source, files)
	if diags.HasErrors() {
		return nil, invalid(fmt.Sprintf("the manifest of %s", req.Service), diags)
	}
	if ws.Service(req.Service) == nil {
		return nil, apiwire.Problemf(http.StatusUnprocessableEntity, apiwire.KindInvalidManifest, "the request's sources define %s, not service %q", strings.Join(serviceNames(ws), ", "), req.Service)
	}
	svc, diags := ws.Resolve(req.Service, req.Environment)
	if diags.HasErrors() {
		return nil, invalid(fmt.Sprintf("the manifest of %s", req.Service), diags)
	}
	if req.Version != "" {
		svc.Version = req.Version
	}
	if svc.Version == "" {
		return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "service %s has no version: set version in its manifest or pass one (runway deploy --version)", req.Service)
	}
	if req.Image != "" {
		if err := pinImage(env, svc, req.Image); err != nil {
			return nil, err
		}
	}
	if env.Target == "local" {
		if req.Dir == "" {
			return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "field \"dir\" is required for target local: the directory commands are resolved from")
		}
		svc.Dir = req.Dir
	}
	if err := confirmProtected(env, "deploy", req.Confirmed); err != nil {
		return nil, err
	}
	ref := target.ServiceRef{Project: req.Project, Environment: req.Environment, Service: req.Service}
	if err := b.checkHosts(ctx, ref, svc); err != nil {
		return nil, err
	}
	pins, err := b.pinSecrets(ctx, req.Project, req.Environment, req.Service, svc.SecretVars())
	if err != nil {
		return nil, err
	}
	return b.submit(ctx, req.RequestID, id, engine.Request{Project: req.Project, Environment: req.Environment,
		Protected: env.Protected, Target: env.KubernetesTarget(), Service: *svc, Sources: sources, CreatedBy: actor, Secrets: pins}, "")
}

// storeBehindReporter is a driver whose target fences a server whose store
// went back in time (the local target); StoreBehind says so, "" if not.
type storeBehindReporter interface {
	StoreBehind(ctx context.Context, ref target.ServiceRef) (string, error)
}

// noDriver answers a release to an environment whose target this server cannot run.
func (b *backend) noDriver(env *config.Environment) error {
	d := b.drivers
	if env.Target == "local" && b.noAgent != "" {
		return apiwire.Problemf(http.StatusUnprocessableEntity, apiwire.KindNoDriver,
			"environment %q has target local, and this server runs without an agent (no token file %s): it runs %s. Start `runway agent`, then restart the server (--agent-token-file names the agent's token file)",
			env.Name, b.noAgent, strings.Join(d.Targets(), ", "))
	}
	return apiwire.Problemf(http.StatusUnprocessableEntity, apiwire.KindNoDriver,
		"environment %q has target %q; this server has no %s driver configured: it runs %s. Deploy to an environment with one of these targets, or run a server that has the %s driver",
		env.Name, env.Target, env.Target, strings.Join(d.Targets(), ", "), env.Target)
}

// checkEngine refuses a docker environment whose docker.host names another
// container engine than the one this server runs target docker on: a
// server and its agent use one engine, so the release would run elsewhere
// than its manifest says.
func (b *backend) checkEngine(env *config.Environment) error {
	if env.Target != "docker" || env.Docker == nil || env.Docker.Host == "" || b.dockerHost == "" || env.Docker.Host == b.dockerHost {
		return nil
	}
	return apiwire.Problemf(http.StatusUnprocessableEntity, apiwire.KindNoDriver,
		"environment %q names container engine %s (docker.host), but this server runs target docker on %s (from %s): a server and its agent use one engine. Start runway server and runway agent with --docker-host %s, or remove docker.host from the environment",
		env.Name, env.Docker.Host, b.dockerHost, b.dockerSource, env.Docker.Host)
}

// checkHosts refuses a release whose host names another live service serves.
func (b *backend) checkHosts(ctx context.Context, ref target.ServiceRef, svc *config.Service) error {
	host, owner, err := b.hostOwner(ctx, ref, svc.RouteHosts())
	if err != nil {
		return err
	}
	if host != "" {
		hint := "choose another name in hosts"
		if owner.Project != ref.Project && svc.Domain == "" {
			hint = fmt.Sprintf("give project %s a domain in runway.hcl (such as domain = %q) so its names differ", ref.Project, ref.Project+".localhost")
		}
		return apiwire.Problemf(http.StatusConflict, apiwire.KindHostConflict, "host %s is already served by service %s of project %s in environment %s; %s", host, owner.Service, owner.Project, owner.Environment, hint)
	}
	return nil
}

func serviceNames(ws *config.Workspace) []string {
	var out []string
	for _, s := range ws.Services {
		out = append(out, fmt.Sprintf("%q", s.Name))
	}
	return out
}

// submit records and starts a release. Its id is chosen and mapped to the
// request id (and to the release it rolls back to) before the release is
// recorded: a server killed in between leaves a mapping without a release,
// which the retried request (same request id) completes, never a release the
// retry cannot find and would duplicate. id is the id a previous attempt of
// the request chose, or empty.
func (b *backend) submit(ctx context.Context, requestID, id string, req engine.Request, rollbackOf string) (*apiwire.Release, error) {
	if id == "" {
		id = store.NewID(time.Now())
		if err := b.st.Put(ctx, nsRequests, requestID, []byte(id)); err != nil {
			return nil, err
		}
	}
	if rollbackOf != "" {
		if err := b.st.Put(ctx, nsRollbacks, id, []byte(rollbackOf)); err != nil {
			return nil, err
		}
	}
	req.ID = id
	r, err := b.eng.Submit(ctx, req)
	if errors.Is(err, store.ErrExists) {
		// A concurrent retry of the same request recorded it first.
		if r, err = b.st.GetRelease(ctx, id); err == nil {
			return b.toAPI(ctx, r, false), nil
		}
	}
	if err != nil {
		return nil, err
	}
	return b.toAPI(ctx, r, false), nil
}

// replayed returns the release a request id already created, or, when an
// earlier attempt of the request chose an id but did not record its release
// (the server died in between), that id to record it under. The API's guard
// has already refused a request id reused with another request.
func (b *backend) replayed(ctx context.Context, requestID string) (*apiwire.Release, string, error) {
	id, err := b.st.Get(ctx, nsRequests, requestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	r, err := b.st.GetRelease(ctx, string(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, string(id), nil
	}
	if err != nil {
		return nil, "", err
	}
	return b.toAPI(ctx, r, false), "", nil
}

// confirmProtected refuses a deploy or rollback to a protected environment
// that nobody confirmed: the CLI asks, or takes --yes.
func confirmProtected(env *config.Environment, what string, confirmed bool) error {
	if env.Protected && !confirmed {
		return apiwire.Problemf(http.StatusPreconditionRequired, apiwire.KindConfirmationRequired,
			"environment %s is protected: a %s needs an explicit confirmation; answer yes when runway asks, or pass --yes (API: \"confirmed\": true)", env.Name, what)
	}
	return nil
}

func (b *backend) Rollback(ctx context.Context, req apiwire.RollbackRequest, actor string) (*apiwire.Release, error) {
	rel, id, err := b.replayed(ctx, req.RequestID)
	if rel != nil || err != nil {
		return rel, err
	}
	list, err := b.st.ListReleases(ctx, store.ReleaseFilter{Project: req.Project, Environment: req.Environment, Service: req.Service, Limit: 200})
	if err != nil {
		return nil, err
	}
	// An instant switch-back is a rollback too: confirmed like any other.
	if _, project, err := b.loadProject(ctx, req.Project); err != nil {
		return nil, err
	} else if env := project.Environment(req.Environment); env != nil {
		if err := confirmProtected(env, "rollback", req.Confirmed); err != nil {
			return nil, err
		}
	}
	if rel, ok, err := b.switchBack(ctx, req, list, actor); ok || err != nil {
		return rel, err
	}
	var target *store.Release
	if req.To != "" {
		for _, r := range list {
			if r.ID == req.To {
				target = r
			}
		}
		if target == nil {
			return nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "release %s is not a release of %s in %s", req.To, req.Service, req.Environment)
		}
	} else {
		// The newest successful release is what serves now; roll back to the
		// successful one before it.
		seen := 0
		for _, r := range list {
			if r.State == string(engine.StateSuccess) {
				seen++
				if seen == 2 {
					target = r
					break
				}
			}
		}
		if target == nil {
			return nil, apiwire.Problemf(http.StatusConflict, apiwire.KindNothingToRollBack, "%s in %s has no earlier successful release to roll back to; name one with --to", req.Service, req.Environment)
		}
	}
	spec, err := engine.DecodeSpec(target.Spec)
	if err != nil {
		return nil, err
	}
	next, err := b.rollbackRequest(ctx, req, spec)
	if err != nil {
		return nil, err
	}
	next.CreatedBy = actor
	return b.submit(ctx, req.RequestID, id, next, target.ID)
}

// rollbackRequest makes the release that returns to an earlier one under
// today's policy: the earlier release's manifest sources are validated
// again against the server's current copy of the project (protection,
// target, hosts and limits may have changed since).
func (b *backend) rollbackRequest(ctx context.Context, req apiwire.RollbackRequest, spec *engine.ReleaseSpec) (engine.Request, error) {
	_, project, err := b.loadProject(ctx, req.Project)
	if err != nil {
		return engine.Request{}, err
	}
	env := project.Environment(req.Environment)
	if env == nil {
		return engine.Request{}, apiwire.Problemf(http.StatusConflict, apiwire.KindUnknownEnvironment, "project %s no longer has environment %q", req.Project, req.Environment)
	}
	if _, err := b.drivers.For(env.KubernetesTarget()); err != nil {
		return engine.Request{}, b.noDriver(env)
	}
	if err := b.checkEngine(env); err != nil {
		return engine.Request{}, err
	}
	svc := spec.Service
	if len(spec.Sources) > 0 {
		sp, _ := b.st.GetProject(ctx, req.Project)
		files := map[string][]byte{}
		for name, src := range spec.Sources {
			files[name] = []byte(src)
		}
		ws, diags := config.LoadSourcesWith(config.Options{Targets: b.limits}, sp.Source, files)
		var resolved *config.Service
		if !diags.HasErrors() {
			resolved, diags = ws.Resolve(req.Service, req.Environment)
		}
		if diags.HasErrors() {
			return engine.Request{}, invalid(fmt.Sprintf("release %s's manifest no longer validates against project %s", spec.Service.Version, req.Project), diags)
		}
		resolved.Version, resolved.Dir = spec.Service.Version, spec.Service.Dir
		// The artifact is the earlier release's: its version, and the image
		// digest it pinned (target docker with a registry), so a rollback
		// runs the same bytes.
		if _, _, digest := config.SplitImage(spec.Service.Image); digest != "" {
			resolved.Image = spec.Service.Image
		}
		svc = *resolved
	} else if svc.Deploy.Strategy == "recreate" && env.Protected {
		return engine.Request{}, apiwire.Problemf(http.StatusUnprocessableEntity, apiwire.KindBadRelease, "the release to roll back to uses recreate, which protected environment %q refuses; deploy a manifest with another strategy", env.Name)
	}
	svc.Protected, svc.Target = env.Protected, env.Target
	ref := target.ServiceRef{Project: req.Project, Environment: req.Environment, Service: req.Service}
	if err := b.checkHosts(ctx, ref, &svc); err != nil {
		return engine.Request{}, err
	}
	// The earlier release's secret versions come back with it; a release
	// made before it pinned any pins the current ones.
	pins := spec.Secrets
	if len(pins) == 0 {
		if pins, err = b.pinSecrets(ctx, req.Project, req.Environment, req.Service, svc.SecretVars()); err != nil {
			return engine.Request{}, err
		}
	} else if err := b.checkPins(ctx, req.Project, req.Environment, pins); err != nil {
		return engine.Request{}, err
	}
	return engine.Request{Project: req.Project, Environment: req.Environment, Protected: env.Protected, Target: env.KubernetesTarget(),
		Service: svc, Sources: spec.Sources, Secrets: pins}, nil
}

// switchBack is the instant rollback: while the newest release of the
// service is in CleanUpSuccess, its scale_down_delay may still keep the
// previous groups; halting it then switches the traffic straight back to them
// (the engine ignores the halt once the window has closed, and the release
// ends Success). It applies when no target is named or the target is the
// release that served before. list is newest first.
func (b *backend) switchBack(ctx context.Context, req apiwire.RollbackRequest, list []*store.Release, actor string) (*apiwire.Release, bool, error) {
	var cur, prev *store.Release
	for _, r := range list {
		switch {
		case cur == nil && !r.Done:
			if r.State != string(engine.StateCleanUpSuccess) {
				return nil, false, nil
			}
			cur = r
		case cur != nil && r.State == string(engine.StateSuccess):
			prev = r
		}
		if prev != nil {
			break
		}
	}
	if cur == nil || prev == nil || (req.To != "" && req.To != prev.ID) {
		return nil, false, nil
	}
	if err := b.eng.Halt(ctx, cur.ID, fmt.Sprintf("rolled back by %s: switching back to release %s", actor, prev.ID)); err != nil {
		return nil, false, err
	}
	if err := b.st.Put(ctx, nsRollbacks, cur.ID, []byte(prev.ID)); err != nil {
		return nil, false, err
	}
	if err := b.st.Put(ctx, nsRequests, req.RequestID, []byte(cur.ID)); err != nil {
		return nil, false, err
	}
	out := b.toAPI(ctx, cur, false)
	out.SwitchBack = true
	return out, true, nil
}

func (b *backend) Halt(ctx context.Context, id, reason, actor string) error {
	r, err := b.st.GetRelease(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "no release %s", id)
	}
	if err != nil {
		return err
	}
	if r.Done {
		return apiwire.Problemf(http.StatusConflict, apiwire.KindReleaseFinished, "release %s already ended in %s", id, r.State)
	}
	if reason == "" {
		reason = "halted by " + actor
	}
	if err := b.eng.Halt(ctx, id, reason); err != nil {
		return err
	}
	b.record(ctx, &store.ServiceEvent{Kind: "release.halt", Project: r.Project, Environment: r.Environment, Service: r.Service,
		ReleaseID: id, Actor: actor, Target: "release " + id, Message: "halt requested: " + reason})
	return nil
}

func (b *backend) Release(ctx context.Context, id string) (*apiwire.ReleaseDetail, error) {
	r, err := b.st.GetRelease(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "no release %s", id)
	}
	if err != nil {
		return nil, err
	}
	evs, err := b.st.ListEvents(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &apiwire.ReleaseDetail{Release: *b.toAPI(ctx, r, true), Events: []apiwire.Event{}}
	for _, e := range evs {
		out.Events = append(out.Events, apiwire.Event{At: e.At, State: e.State, Step: e.Step, Message: e.Message})
	}
	return out, nil
}

func (b *backend) Releases(ctx context.Context, f apiwire.ReleaseFilter) ([]*apiwire.Release, error) {
	list, err := b.st.ListReleases(ctx, store.ReleaseFilter{Project: f.Project, Environment: f.Environment, Service: f.Service, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]*apiwire.Release, 0, len(list))
	for _, r := range list {
		out = append(out, b.toAPI(ctx, r, false))
	}
	return out, nil
}

func (b *backend) Status(ctx context.Context, project, env, service string) (*apiwire.ServiceStatus, error) {
	_, def, err := b.loadProject(ctx, project)
	if err != nil {
		return nil, err
	}
	e := def.Environment(env)
	if e == nil {
		return nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindUnknownEnvironment, "project %s has no environment %q; it has %s", project, env, strings.Join(def.EnvironmentNames(), ", "))
	}
	list, err := b.st.ListReleases(ctx, store.ReleaseFilter{Project: project, Environment: env, Service: service, Limit: 100})
	if err != nil {
		return nil, err
	}
	st := &apiwire.ServiceStatus{Project: project, Environment: env, Service: service, Groups: []apiwire.Group{}, Routes: []apiwire.Route{}}
	versions := map[string]string{}
	for _, r := range list {
		versions[r.ID] = r.Version
		if !r.Done && st.InProgress == nil {
			st.InProgress = b.toAPI(ctx, r, false)
		}
		if r.State == string(engine.StateSuccess) && st.Current == nil {
			st.Current = b.toAPI(ctx, r, true)
		}
	}
	for _, r := range unresolvedDirty(list) {
		st.FailureDirty = append(st.FailureDirty, b.toAPI(ctx, r, false))
	}
	drv, err := b.drivers.For(e.Target)
	if err != nil || drv == nil {
		return st, nil // nothing can run there on this server
	}
	ref := target.ServiceRef{Project: project, Environment: env, Service: service}
	groups, err := drv.ListGroups(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("list groups of %s: %w", ref, err)
	}
	for _, g := range groups {
		st.Groups = append(st.Groups, apiwire.Group{Name: g.Name, Release: g.Release, Version: versions[g.Release],
			Desired: g.Status.Desired, Healthy: g.Status.Healthy, Starting: g.Status.Starting, Unhealthy: g.Status.Unhealthy})
	}
	routes, err := drv.Routes(ctx, ref)
	if err != nil {
		return nil, err
	}
	lead, best := "", 0
	for _, r := range routes {
		st.Routes = append(st.Routes, r)
		if r.Weight > best {
			lead, best = r.Group, r.Weight
		}
	}
	// The current release is the one that serves: the finished release of
	// the group with the most traffic, when the store knows it (after a
	// restored backup the newest Success may no longer be what runs).
	for _, g := range groups {
		if g.Name != lead {
			continue
		}
		known := false
		for _, r := range list {
			if r.ID == g.Release {
				known = true
				if r.Done {
					st.Current = b.toAPI(ctx, r, true)
				}
			}
		}
		if !known {
			// What serves is unknown to this server's records (they went
			// back in time): naming an older release would be false.
			st.Current = nil
		}
	}
	healthy, weight, crashLoop := 0, 0, false
	rep, _ := drv.(target.InstanceReporter)
	for i, g := range groups {
		healthy += g.Status.Healthy
		if rep == nil {
			continue
		}
		if ins, err := rep.Instances(ctx, ref, g.Name); err == nil {
			for _, in := range ins {
				crashLoop = crashLoop || in.CrashLoop
				st.Groups[i].Instances = append(st.Groups[i].Instances, apiwire.Instance{ID: in.ID, State: in.State, Restarts: in.Restarts})
			}
		}
	}
	for _, r := range routes {
		weight += r.Weight
	}
	if a := b.alertsOf(ctx, ref, builtinAlerts(list, weight > 0, healthy, crashLoop)); len(a) > 0 {
		st.Alarms = a
	}
	if m, ok := drv.(target.Maintainer); ok {
		if msg, err := m.Maintenance(ctx, ref); err == nil {
			st.Maintenance = msg
		}
	}
	if fenced, ok := drv.(storeBehindReporter); ok {
		if msg, err := fenced.StoreBehind(ctx, ref); err == nil {
			st.StoreBehind = msg
		}
	}
	return st, nil
}

// toAPI converts a stored release; withManifest includes the resolved manifest.
func (b *backend) toAPI(ctx context.Context, r *store.Release, withManifest bool) *apiwire.Release {
	out := &apiwire.Release{
		ID: r.ID, Project: r.Project, Environment: r.Environment, Service: r.Service, Version: r.Version, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt, Digest: r.Digest, State: r.State, Done: r.Done, ErrorKind: r.ErrorKind, Error: r.Error,
		Served: r.Served, Failed: r.Failed,
	}
	if !r.FinishedAt.IsZero() {
		t := r.FinishedAt
		out.FinishedAt = &t
	}
	if r.Runner != "" {
		t := r.RunnerUntil
		out.Runner, out.RunnerUntil = r.Runner, &t
	}
	if v, err := b.st.Get(ctx, nsRollbacks, r.ID); err == nil {
		out.RollbackOf = string(v)
	}
	if spec, err := engine.DecodeSpec(r.Spec); err == nil {
		out.Target = spec.Target
		out.Secrets = pinsToAPI(spec.Secrets)
		if withManifest {
			out.Manifest, _ = json.Marshal(spec.Service)
		}
	}
	return out
}
