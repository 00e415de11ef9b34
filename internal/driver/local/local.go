// Package local is the local target (target.Target): it runs groups through
// the agent API (supervisor + proxy on this machine) and one-off tasks
// (pre-deploy hooks, verify commands) as processes of the server's machine
// that outlive the server (tasks.go), so a resumed release re-attaches to
// them.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/runenv"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// Driver implements target.Target for the local target.
type Driver struct {
	agent   *agentapi.Client
	taskDir string
	log     *slog.Logger
	// proxyHTTP is the proxy's HTTP address, for PREVIEW_URL of verify tasks.
	proxyHTTP string
	// specOf returns the manifest of a release (host names of its routes).
	specOf func(ctx context.Context, release string) (*config.Service, error)
	// secretsOf returns the values of a release's pinned secrets, by
	// variable name (nil: the release pins none); nil when the server keeps
	// no secrets.
	secretsOf func(ctx context.Context, release string) (map[string]string, error)
	// gens and recover fence a server whose store is behind (fence.go).
	gens    Generations
	recover func(target.ServiceRef) string

	// taskLocks serialise the calls about one task id (a retried step
	// must not start a second copy).
	taskLocks target.TaskLocks

	// specOfGroup, when set, makes the agent's spec of a group (WithGroupSpec).
	specOfGroup func(target.GroupSpec) agentapi.GroupSpec

	// crashAfterTaskStart (tests) stops StartTask right after the process
	// started, before its pid is recorded, as a server killed then would.
	crashAfterTaskStart func() bool
}

var _ target.Target = (*Driver)(nil)

// New returns a driver talking to the agent through c; task results are
// kept in taskDir so a task runs at most once per id; specOf finds the
// manifest of a release.
func New(c *agentapi.Client, taskDir, proxyHTTP string, specOf func(context.Context, string) (*config.Service, error), log *slog.Logger) *Driver {
	return &Driver{agent: c, taskDir: taskDir, proxyHTTP: proxyHTTP, specOf: specOf, log: log}
}

// Secrets sets where the values of a release's pinned secrets come from.
// They reach instances through a call of their own to the agent (which
// keeps them in memory only) and tasks through their environment, and are
// redacted from the task output kept in records.
func (d *Driver) Secrets(of func(ctx context.Context, release string) (map[string]string, error)) {
	d.secretsOf = of
}

// ReleaseSecrets returns the values of a release's secrets (none without a
// source): for tasks, and for the container target's tasks.
func (d *Driver) ReleaseSecrets(ctx context.Context, release string) (map[string]string, error) {
	if d.secretsOf == nil {
		return nil, nil
	}
	v, err := d.secretsOf(ctx, release)
	if err != nil {
		return nil, fmt.Errorf("secrets of release %s: %w", release, err)
	}
	return v, nil
}

// Capabilities are the local target's, each read from the part of the data
// plane that enforces it: the proxy's weights and backends per route, the
// agent's statistics windows, the supervisor's group names. A preview route
// exists; tasks re-attach (tasks.go).
func Capabilities() target.Capabilities {
	return target.Capabilities{
		MaxWeight: agentapi.MaxWeight, MaxWeightedGroups: agentapi.MaxBackends,
		StatsWindowMin: agentapi.MinStatsWindow, StatsWindowMax: agentapi.MaxStatsWindow,
		Preview: true, TaskReattach: true, GroupNameMax: agentapi.MaxGroupName,
	}
}

// Capabilities implements target.Target.
func (d *Driver) Capabilities() target.Capabilities { return Capabilities() }

// Limits are what validation checks a manifest against on this target.
func Limits() config.TargetLimits { return Capabilities().Validation() }

// commandPath is a manifest command's program: relative to the manifest's
// directory (the agent looks a bare name up in its PATH).
func commandPath(spec *config.Service, argv0 string) string {
	return runenv.ProgramPath(argv0, spec.Dir)
}

func workDir(spec *config.Service) string {
	return filepath.Join(spec.Dir, spec.WorkingDir)
}

// Validate checks the command, secrets and port of a release, reporting every problem.
func (d *Driver) Validate(ctx context.Context, ref target.ServiceRef, spec *config.Service) error {
	var problems []string
	if len(spec.Command) == 0 {
		problems = append(problems, "the local target runs processes: the manifest needs a command")
	} else {
		if _, err := runenv.Program(spec.Command[0], spec.Dir); err != nil {
			problems = append(problems, "command "+err.Error())
		}
	}
	if st, err := os.Stat(workDir(spec)); err != nil || !st.IsDir() {
		problems = append(problems, fmt.Sprintf("working directory %s does not exist", workDir(spec)))
	}
	if len(spec.Hooks.PreDeploy) > 0 {
		if _, err := runenv.Program(spec.Hooks.PreDeploy[0], spec.Dir); err != nil {
			problems = append(problems, "pre_deploy command "+err.Error())
		}
	}
	return d.ValidateAgent(ctx, ref, problems)
}

// ValidateAgent ends a Validate that found problems (none: an empty list)
// with the agent's part: a store behind the agent is refused; an agent
// that does not answer is one more problem, or, alone, a transient error
// the engine retries rather than a bad release. The container target
// validates its own way and ends the same.
func (d *Driver) ValidateAgent(ctx context.Context, ref target.ServiceRef, problems []string) error {
	if msg, err := d.StoreBehind(ctx, ref); err != nil {
		if len(problems) == 0 {
			return fmt.Errorf("agent unreachable: %w", err)
		}
		problems = append(problems, fmt.Sprintf("agent unreachable: %v", err))
	} else if msg != "" {
		d.log.Error("refusing to act on a service: the store is behind the agent", "service", ref.String(), "problem", msg)
		return storeBehindError(msg)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (d *Driver) groupSpec(g target.GroupSpec) agentapi.GroupSpec {
	if d.specOfGroup != nil {
		return d.specOfGroup(g)
	}
	spec := BaseGroupSpec(g)
	s := g.Spec
	spec.Command = append([]string{commandPath(s, s.Command[0])}, s.Command[1:]...)
	spec.WorkDir = workDir(s)
	return spec
}

// WithGroupSpec makes the driver create groups from f's spec instead of a
// process group's: the container target runs images through the same
// agent protocol. It returns d.
func (d *Driver) WithGroupSpec(f func(target.GroupSpec) agentapi.GroupSpec) *Driver {
	d.specOfGroup = f
	return d
}

// BaseGroupSpec is the agent's spec of a release's group without what it
// runs (a command and its directory, or an image): names, env, count,
// health, stop timeout and limits from the manifest.
func BaseGroupSpec(g target.GroupSpec) agentapi.GroupSpec {
	s := g.Spec
	h := agentapi.HealthCheck{
		Type: s.Health.Kind, Path: s.Health.Path, Command: s.Health.Command,
		Interval: agentapi.Duration(s.Health.Interval.Duration), Timeout: agentapi.Duration(s.Health.Timeout.Duration),
		StartPeriod:      agentapi.Duration(s.Health.StartPeriod.Duration),
		HealthyThreshold: s.Health.HealthyThreshold, UnhealthyThreshold: s.Health.UnhealthyThreshold,
	}
	return agentapi.GroupSpec{
		Name: g.Group, Project: s.Project, Service: g.Ref.Service, Environment: g.Ref.Environment,
		ReleaseID: g.Release, Version: s.Version, Env: s.Env, Secrets: secretNames(s),
		Instances: g.Count, Health: h, StopTimeout: agentapi.Duration(s.Hooks.StopTimeout.Duration),
		Limits: agentapi.Limits{CPU: s.Resources.CPU, MemoryMB: int64(s.Resources.MemoryMB)},
	}
}

// EnsureGroup creates the group (idempotent by name) and sets its count.
func (d *Driver) EnsureGroup(ctx context.Context, g target.GroupSpec) error {
	fctx, err := d.fenced(ctx, g.Ref)
	if err != nil {
		return err
	}
	return d.refusal(ctx, g.Ref, d.ensureGroup(fctx, g))
}

// secretNames are the variables of spec's secrets, sorted.
func secretNames(spec *config.Service) []string {
	vars := spec.SecretVars()
	out := make([]string, 0, len(vars))
	for v := range vars {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// supplySecrets sends a group the values of its release's secrets.
func (d *Driver) supplySecrets(ctx context.Context, group, release string) error {
	values, err := d.ReleaseSecrets(ctx, release)
	if err != nil {
		return err
	}
	if err := d.agent.PutGroupSecrets(ctx, group, values); err != nil {
		return fmt.Errorf("give group %s its secrets: %w", group, err)
	}
	return nil
}

// SupplySecrets sends its secrets to every group of the agent that lacks
// them (the agent restarted: it keeps them in memory only). The server
// calls it periodically; instances that need to start wait until then,
// running ones are not touched.
func (d *Driver) SupplySecrets(ctx context.Context) error {
	groups, err := d.agent.Groups(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, g := range groups {
		if g.SecretsMissing && g.State != agentapi.GroupDeleting {
			if err := d.supplySecrets(ctx, g.Name, g.Spec.ReleaseID); err != nil {
				errs = append(errs, err)
			} else {
				d.log.Info("gave a group its secrets again (the agent had restarted)", "group", g.Name, "release", g.Spec.ReleaseID)
			}
		}
	}
	return errors.Join(errs...)
}

func (d *Driver) ensureGroup(ctx context.Context, g target.GroupSpec) error {
	cur, err := d.agent.Group(ctx, g.Group)
	if err == nil {
		if cur.SecretsMissing {
			if err := d.supplySecrets(ctx, g.Group, g.Release); err != nil {
				return err
			}
		}
		if len(cur.Instances) != g.Count || cur.Spec.Instances != g.Count {
			var drain time.Duration // the agent's default without a manifest
			if g.Spec != nil {
				drain = g.Spec.Deploy.DrainTimeout.Duration
			}
			_, err = d.agent.ScaleGroup(ctx, g.Group, g.Count, drain)
		}
		return err
	}
	if !agentapi.IsNotFound(err) {
		return err
	}
	if g.Spec == nil {
		return fmt.Errorf("group %s does not exist and release %s has no manifest to create it from", g.Group, g.Release)
	}
	spec := d.groupSpec(g)
	st, _, err := d.agent.CreateGroup(ctx, spec)
	if err != nil || !st.SecretsMissing {
		return err
	}
	// The instances wait for their secrets, sent on a call of their own.
	return d.supplySecrets(ctx, g.Group, g.Release)
}

// waitCtx lets a call about group that waits until the instances it stops
// have drained (at most drain, or the agent's own drain timeout) and exited
// (at most their stop timeout) take that much longer than the agent client's
// call timeout.
func (d *Driver) waitCtx(ctx context.Context, group string, drain time.Duration) context.Context {
	stop := agentapi.DefaultStopTimeout
	if g, err := d.agent.Group(ctx, group); err == nil && g.Spec.StopTimeout > 0 {
		stop = g.Spec.StopTimeout.D()
	}
	return agentapi.WithWait(ctx, max(drain, agentapi.DefaultDrainTimeout)+stop)
}

// ScaleGroup sets a group's count; the agent drains instances it removes.
func (d *Driver) ScaleGroup(ctx context.Context, ref target.ServiceRef, group string, count int, drain time.Duration) error {
	fctx, err := d.fenced(d.waitCtx(ctx, group, drain), ref)
	if err != nil {
		return err
	}
	_, err = d.agent.ScaleGroup(fctx, group, count, drain)
	if err != nil && count == 0 && agentapi.IsNotFound(err) {
		return nil
	}
	return d.refusal(ctx, ref, err)
}

// ObserveGroup counts a group's instances by state.
func (d *Driver) ObserveGroup(ctx context.Context, ref target.ServiceRef, group string) (target.GroupStatus, error) {
	g, err := d.agent.Group(ctx, group)
	if agentapi.IsNotFound(err) {
		return target.GroupStatus{}, nil
	}
	if err != nil {
		return target.GroupStatus{}, err
	}
	return observe(g), nil
}

func observe(g agentapi.GroupStatus) target.GroupStatus {
	st := target.GroupStatus{Exists: true, Desired: g.Spec.Instances}
	for _, in := range g.Instances {
		switch in.State {
		case agentapi.StateHealthy:
			st.Healthy++
		case agentapi.StateStarting:
			st.Starting++
		default:
			st.Unhealthy++
		}
		st.Terminated += in.Restarts
	}
	return st
}

// DeleteGroup takes the group out of the service's routes and deletes it
// once drained (the agent waits for requests in flight).
func (d *Driver) DeleteGroup(ctx context.Context, ref target.ServiceRef, group string, drain time.Duration) error {
	routes, err := d.Routes(ctx, ref)
	if err != nil {
		return err
	}
	if keep, had := strategy.Without(routes, group); had {
		if err := d.SetRoutes(ctx, ref, keep); err != nil {
			return err
		}
	}
	fctx, err := d.fenced(d.waitCtx(ctx, group, drain), ref)
	if err != nil {
		return err
	}
	err = d.agent.DeleteGroup(fctx, group, true, drain)
	if agentapi.IsNotFound(err) {
		return nil
	}
	return d.refusal(ctx, ref, err)
}

// crashLines is how many of a crashed instance's last log lines a crash
// report quotes.
const crashLines = 10

// CrashReport names the instance of group that crashed most often, how it
// last ended, and its last log lines.
func (d *Driver) CrashReport(ctx context.Context, ref target.ServiceRef, group string) (target.CrashReport, error) {
	g, err := d.agent.Group(ctx, group)
	if err != nil {
		return target.CrashReport{}, err
	}
	var worst *agentapi.InstanceStatus
	for i := range g.Instances {
		in := &g.Instances[i]
		if in.Restarts > 0 && (worst == nil || in.Restarts > worst.Restarts) {
			worst = in
		}
	}
	if worst == nil {
		return target.CrashReport{}, nil
	}
	rep := target.CrashReport{Instance: worst.ID, Exit: worst.LastExit}
	err = d.agent.Logs(ctx, group, worst.ID, agentapi.LogQuery{Tail: crashLines}, func(l agentapi.LogLine) error {
		rep.Lines = append(rep.Lines, l.Text)
		return nil
	})
	return rep, err
}

// ListGroups returns the service's groups.
func (d *Driver) ListGroups(ctx context.Context, ref target.ServiceRef) ([]target.GroupInfo, error) {
	all, err := d.groups(ctx)
	if err != nil {
		return nil, err
	}
	var out []target.GroupInfo
	for _, g := range all {
		if g.Spec.Project == ref.Project && g.Spec.Environment == ref.Environment && g.Spec.Service == ref.Service && g.State != agentapi.GroupDeleting {
			out = append(out, target.GroupInfo{Name: g.Name, Release: g.Spec.ReleaseID, Status: observe(g)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// routeKey is the agent's key of ref's route (or of its preview route).
func routeKey(ref target.ServiceRef, preview bool) agentapi.RouteKey {
	return agentapi.RouteKey{Project: ref.Project, Environment: ref.Environment, Service: ref.Service, Preview: preview}
}

// Routes returns the service's weighted groups.
func (d *Driver) Routes(ctx context.Context, ref target.ServiceRef) ([]strategy.Route, error) {
	key := routeKey(ref, false)
	r, err := d.route(ctx, key)
	if agentapi.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []strategy.Route
	for _, b := range r.Backends {
		out = append(out, strategy.Route{Group: b.Group, Weight: b.Weight})
	}
	return out, nil
}

// SetRoutes replaces the service's routes in one atomic proxy update. The
// host names come from the manifest of the release with the most weight.
// Removing the routes (an empty list) keeps the route's hosts and empties
// its backends (the proxy answers 503 "no healthy instance", maintenance
// stays); for a service that has no route it is a no-op, so the rollback of
// a first release whose route switch failed (a host conflict) ends at once.
func (d *Driver) SetRoutes(ctx context.Context, ref target.ServiceRef, routes []strategy.Route) error {
	key := routeKey(ref, false)
	if len(routes) == 0 {
		// No traffic: a service that never had a route has nothing to
		// remove; an existing route keeps its hosts with no backends.
		cur, err := d.agent.Route(ctx, key)
		if agentapi.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(cur.Backends) == 0 {
			return nil
		}
		cur.Backends, cur.UpdatedAt = nil, time.Time{}
		fctx, err := d.fenced(ctx, ref)
		if err != nil {
			return err
		}
		_, err = d.agent.PutRoute(fctx, cur)
		return d.refusal(ctx, ref, err)
	}
	r := agentapi.Route{Project: key.Project, Environment: key.Environment, Service: key.Service}
	lead := ""
	best := -1
	for _, x := range routes {
		r.Backends = append(r.Backends, agentapi.Backend{Group: x.Group, Weight: x.Weight})
		if x.Weight > best {
			lead, best = x.Group, x.Weight
		}
	}
	hosts, err := d.hosts(ctx, ref, lead, false)
	if err != nil {
		return err
	}
	r.Hosts = hosts
	fctx, err := d.fenced(ctx, ref)
	if err != nil {
		return err
	}
	_, err = d.agent.PutRoute(fctx, r)
	return d.refusal(ctx, ref, err)
}

// hosts returns the host names of a service (or of its preview) from the
// manifest of the release that runs group.
func (d *Driver) hosts(ctx context.Context, ref target.ServiceRef, group string, preview bool) ([]string, error) {
	var spec *config.Service
	if group != "" {
		g, err := d.agent.Group(ctx, group)
		if err != nil && !agentapi.IsNotFound(err) {
			return nil, err
		}
		if err == nil {
			if spec, err = d.specOf(ctx, g.Spec.ReleaseID); err != nil {
				return nil, fmt.Errorf("manifest of release %s: %w", g.Spec.ReleaseID, err)
			}
		}
	}
	domain := ""
	var extra []string
	if spec != nil {
		domain, extra = spec.Domain, spec.Hosts
	}
	if preview {
		return []string{naming.Preview(ref.Service, ref.Environment, domain)}, nil
	}
	return append([]string{naming.Service(ref.Service, ref.Environment, domain)}, extra...), nil
}

// SetPreview routes <service>-preview.<environment>... to group, through
// the service's preview route.
func (d *Driver) SetPreview(ctx context.Context, ref target.ServiceRef, group string) error {
	key := routeKey(ref, true)
	fctx, err := d.fenced(ctx, ref)
	if err != nil {
		return err
	}
	if group == "" {
		err := d.agent.DeleteRoute(fctx, key)
		if agentapi.IsNotFound(err) {
			return nil
		}
		return d.refusal(ctx, ref, err)
	}
	hosts, err := d.hosts(ctx, ref, group, true)
	if err != nil {
		return err
	}
	_, err = d.agent.PutRoute(fctx, agentapi.Route{Project: key.Project, Environment: key.Environment, Service: key.Service,
		Preview: true, Hosts: hosts, Backends: []agentapi.Backend{{Group: group, Weight: 100}}})
	return d.refusal(ctx, ref, err)
}

// WindowStats reads the proxy's statistics of a group over the window.
func (d *Driver) WindowStats(ctx context.Context, ref target.ServiceRef, group string, window time.Duration) (strategy.WindowStats, error) {
	key := routeKey(ref, false)
	all, err := d.agent.Stats(ctx, key, window)
	if err != nil {
		return strategy.WindowStats{}, err
	}
	s := all[group]
	return strategy.WindowStats{Requests: int64(s.Requests), Errors: int64(s.Errors), P50: s.P50, P99: s.P99}, nil
}

// Counters reads the proxy's served/failed totals of a service.
func (d *Driver) Counters(ctx context.Context, ref target.ServiceRef) (target.Counters, error) {
	key := routeKey(ref, false)
	c, err := d.agent.Counters(ctx, key)
	if err != nil {
		return target.Counters{}, err
	}
	return target.Counters{Served: int64(c.Served), Failed: int64(c.Failed)}, nil
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "8080"
	}
	return p
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

var _ target.InstanceReporter = (*Driver)(nil)

// Instances reports a group's instances as the agent's supervisor sees them.
func (d *Driver) Instances(ctx context.Context, ref target.ServiceRef, group string) ([]target.InstanceInfo, error) {
	g, err := d.group(ctx, group)
	if agentapi.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]target.InstanceInfo, 0, len(g.Instances))
	for _, in := range g.Instances {
		out = append(out, target.InstanceInfo{ID: in.ID, State: in.State, Restarts: in.Restarts, CrashLoop: in.CrashLoop,
			StartedAt: in.StartedAt, LastExit: in.LastExit, CPUPercent: in.CPUPercent, RSSBytes: in.RSSBytes})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// snapshot is one listing of the agent's groups and one of its routes,
// each made on first use, shared by the reads of one context.
type snapshot struct {
	groupsOnce sync.Once
	groups     []agentapi.GroupStatus
	groupsErr  error
	routesOnce sync.Once
	routes     []agentapi.Route
	routesErr  error
}

type snapshotKey struct{}

// WithGroupsSnapshot returns a context in which ListGroups, Instances and
// Routes, for any service, read one listing of the agent's groups and one
// of its routes (made on first use) instead of a call each: for a reader of
// many services at once (an environment's overview: 100 services were 100
// listings of 100 groups). Never for the engine, which must see what is
// there now.
func WithGroupsSnapshot(ctx context.Context) context.Context {
	return context.WithValue(ctx, snapshotKey{}, &snapshot{})
}

func snapshotOf(ctx context.Context) *snapshot {
	s, _ := ctx.Value(snapshotKey{}).(*snapshot)
	return s
}

func (d *Driver) groups(ctx context.Context) ([]agentapi.GroupStatus, error) {
	snap := snapshotOf(ctx)
	if snap == nil {
		return d.agent.Groups(ctx)
	}
	snap.groupsOnce.Do(func() { snap.groups, snap.groupsErr = d.agent.Groups(ctx) })
	return snap.groups, snap.groupsErr
}

// group is one group's status (agentapi.IsNotFound when it is missing).
func (d *Driver) group(ctx context.Context, name string) (agentapi.GroupStatus, error) {
	if snapshotOf(ctx) == nil {
		return d.agent.Group(ctx, name)
	}
	all, err := d.groups(ctx)
	if err != nil {
		return agentapi.GroupStatus{}, err
	}
	for _, g := range all {
		if g.Name == name {
			return g, nil
		}
	}
	return agentapi.GroupStatus{}, notInSnapshot("group " + name)
}

// route is one route (agentapi.IsNotFound when it is missing).
func (d *Driver) route(ctx context.Context, key agentapi.RouteKey) (agentapi.Route, error) {
	snap := snapshotOf(ctx)
	if snap == nil {
		return d.agent.Route(ctx, key)
	}
	snap.routesOnce.Do(func() { snap.routes, snap.routesErr = d.agent.Routes(ctx) })
	if snap.routesErr != nil {
		return agentapi.Route{}, snap.routesErr
	}
	for _, r := range snap.routes {
		if r.Key() == key {
			return r, nil
		}
	}
	return agentapi.Route{}, notInSnapshot("route " + key.String())
}

// notInSnapshot is the agent's 404 for what its listing did not hold.
func notInSnapshot(what string) error {
	return &agentapi.APIError{Problem: agentapi.Problem{Title: "Not Found", Status: http.StatusNotFound, Detail: "no " + what}}
}

var _ target.Maintainer = (*Driver)(nil)

// SetMaintenance turns the proxy's maintenance page of the service's route
// on (message, or the agent's default text) or off. The route keeps it
// across releases until it is turned off.
func (d *Driver) SetMaintenance(ctx context.Context, ref target.ServiceRef, on bool, message string) error {
	key := routeKey(ref, false)
	fctx, err := d.fenced(ctx, ref)
	if err != nil {
		return err
	}
	path := agentapi.KeyPath("/v1/maintenance/", key, nil)
	if on {
		_, err = d.agent.Do(fctx, http.MethodPut, path, map[string]string{"message": message}, nil)
	} else {
		_, err = d.agent.Do(fctx, http.MethodDelete, path, nil, nil)
	}
	if agentapi.IsNotFound(err) {
		return target.ErrNoRoute
	}
	return d.refusal(ctx, ref, err)
}

// Maintenance is the message of the service's maintenance page, "" when off
// (or without a route).
func (d *Driver) Maintenance(ctx context.Context, ref target.ServiceRef) (string, error) {
	r, err := d.route(ctx, routeKey(ref, false))
	if agentapi.IsNotFound(err) {
		return "", nil
	}
	return r.Maintenance, err
}
