// Package local is the engine's Driver for the local target: it runs groups
// through the agent API (supervisor + proxy on this machine) and one-off
// tasks (pre-deploy hooks, verify commands) as processes of the server.
package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/supervisor"
)

// Driver implements engine.Driver for the local target.
type Driver struct {
	agent   *agent.Client
	taskDir string
	log     *slog.Logger
	// proxyHTTP is the proxy's HTTP address, for PREVIEW_URL of verify tasks.
	proxyHTTP string
	// specOf returns the manifest of a release (host names of its routes).
	specOf func(ctx context.Context, release string) (*config.Service, error)

	taskMu sync.Mutex
}

var _ engine.Driver = (*Driver)(nil)

// New returns a driver talking to the agent through c; task results are
// kept in taskDir so a task runs at most once per id; specOf finds the
// manifest of a release.
func New(c *agent.Client, taskDir, proxyHTTP string, specOf func(context.Context, string) (*config.Service, error), log *slog.Logger) *Driver {
	return &Driver{agent: c, taskDir: taskDir, proxyHTTP: proxyHTTP, specOf: specOf, log: log}
}

// commandPath resolves a manifest command's program the way the agent will.
func commandPath(spec *config.Service, argv0 string) string {
	if filepath.IsAbs(argv0) || !strings.Contains(argv0, "/") {
		return argv0
	}
	return filepath.Join(spec.Dir, argv0)
}

func workDir(spec *config.Service) string {
	return filepath.Join(spec.Dir, spec.WorkingDir)
}

// Validate checks the command, secrets and port of a release, reporting every problem.
func (d *Driver) Validate(ctx context.Context, ref engine.ServiceRef, spec *config.Service) error {
	var problems []string
	if len(spec.Command) == 0 {
		problems = append(problems, "the local target runs processes: the manifest needs a command")
	} else {
		p := commandPath(spec, spec.Command[0])
		if !strings.Contains(p, "/") {
			if _, err := exec.LookPath(p); err != nil {
				problems = append(problems, fmt.Sprintf("command %q is not on the PATH", p))
			}
		} else if st, err := os.Stat(p); err != nil {
			problems = append(problems, fmt.Sprintf("command %s does not exist (build it first?)", p))
		} else if st.IsDir() || st.Mode()&0o111 == 0 {
			problems = append(problems, fmt.Sprintf("command %s is not an executable file", p))
		}
	}
	if st, err := os.Stat(workDir(spec)); err != nil || !st.IsDir() {
		problems = append(problems, fmt.Sprintf("working directory %s does not exist", workDir(spec)))
	}
	for _, s := range spec.Secrets {
		problems = append(problems, fmt.Sprintf("secret %s has no value on this server (secrets are not stored yet; remove it from secrets for the local target)", s))
	}
	if len(spec.Hooks.PreDeploy) > 0 {
		p := commandPath(spec, spec.Hooks.PreDeploy[0])
		if strings.Contains(p, "/") {
			if _, err := os.Stat(p); err != nil {
				problems = append(problems, fmt.Sprintf("pre_deploy command %s does not exist", p))
			}
		}
	}
	if _, err := d.agent.Health(ctx); err != nil {
		problems = append(problems, fmt.Sprintf("agent unreachable: %v", err))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

func (d *Driver) groupSpec(g engine.GroupSpec) supervisor.GroupSpec {
	s := g.Spec
	cmd := append([]string{commandPath(s, s.Command[0])}, s.Command[1:]...)
	h := supervisor.HealthCheck{
		Type: s.Health.Kind, Path: s.Health.Path, Command: s.Health.Command,
		Interval: supervisor.Duration(s.Health.Interval.Duration), Timeout: supervisor.Duration(s.Health.Timeout.Duration),
		StartPeriod:      supervisor.Duration(s.Health.StartPeriod.Duration),
		HealthyThreshold: s.Health.HealthyThreshold, UnhealthyThreshold: s.Health.UnhealthyThreshold,
	}
	return supervisor.GroupSpec{
		Name: g.Group, Project: s.Project, Service: g.Ref.Service, Environment: g.Ref.Environment,
		ReleaseID: g.Release, Version: s.Version, Command: cmd, WorkDir: workDir(s), Env: s.Env,
		Instances: g.Count, Health: h, StopTimeout: supervisor.Duration(s.Hooks.StopTimeout.Duration),
		Limits: supervisor.Limits{CPU: s.Resources.CPU, MemoryMB: int64(s.Resources.MemoryMB)},
	}
}

// EnsureGroup creates the group (idempotent by name) and sets its count.
func (d *Driver) EnsureGroup(ctx context.Context, g engine.GroupSpec) error {
	cur, err := d.agent.Group(ctx, g.Group)
	if err == nil {
		if len(cur.Instances) != g.Count || cur.Spec.Instances != g.Count {
			var drain time.Duration // the agent's default without a manifest
			if g.Spec != nil {
				drain = g.Spec.Deploy.DrainTimeout.Duration
			}
			_, err = d.agent.ScaleGroup(ctx, g.Group, g.Count, drain)
		}
		return err
	}
	if !agent.IsNotFound(err) {
		return err
	}
	if g.Spec == nil {
		return fmt.Errorf("group %s does not exist and release %s has no manifest to create it from", g.Group, g.Release)
	}
	_, _, err = d.agent.CreateGroup(ctx, d.groupSpec(g))
	return err
}

// ScaleGroup sets a group's count; the agent drains instances it removes.
func (d *Driver) ScaleGroup(ctx context.Context, ref engine.ServiceRef, group string, count int, drain time.Duration) error {
	_, err := d.agent.ScaleGroup(ctx, group, count, drain)
	if err != nil && count == 0 && agent.IsNotFound(err) {
		return nil
	}
	return err
}

// ObserveGroup counts a group's instances by state.
func (d *Driver) ObserveGroup(ctx context.Context, ref engine.ServiceRef, group string) (engine.GroupStatus, error) {
	g, err := d.agent.Group(ctx, group)
	if agent.IsNotFound(err) {
		return engine.GroupStatus{}, nil
	}
	if err != nil {
		return engine.GroupStatus{}, err
	}
	return observe(g), nil
}

func observe(g supervisor.GroupStatus) engine.GroupStatus {
	st := engine.GroupStatus{Exists: true, Desired: g.Spec.Instances}
	for _, in := range g.Instances {
		switch in.State {
		case supervisor.StateHealthy:
			st.Healthy++
		case supervisor.StateStarting:
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
func (d *Driver) DeleteGroup(ctx context.Context, ref engine.ServiceRef, group string, drain time.Duration) error {
	routes, err := d.Routes(ctx, ref)
	if err != nil {
		return err
	}
	var keep []strategy.Route
	for _, r := range routes {
		if r.Group != group {
			keep = append(keep, r)
		}
	}
	if len(keep) != len(routes) {
		if err := d.SetRoutes(ctx, ref, keep); err != nil {
			return err
		}
	}
	err = d.agent.DeleteGroup(ctx, group, true, drain)
	if agent.IsNotFound(err) {
		return nil
	}
	return err
}

// ListGroups returns the service's groups.
func (d *Driver) ListGroups(ctx context.Context, ref engine.ServiceRef) ([]engine.GroupInfo, error) {
	all, err := d.agent.Groups(ctx)
	if err != nil {
		return nil, err
	}
	var out []engine.GroupInfo
	for _, g := range all {
		if g.Spec.Environment == ref.Environment && g.Spec.Service == ref.Service && g.State != supervisor.GroupDeleting {
			out = append(out, engine.GroupInfo{Name: g.Name, Release: g.Spec.ReleaseID, Status: observe(g)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Routes returns the service's weighted groups.
func (d *Driver) Routes(ctx context.Context, ref engine.ServiceRef) ([]strategy.Route, error) {
	r, err := d.agent.Route(ctx, ref.Environment, ref.Service)
	if agent.IsNotFound(err) {
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
func (d *Driver) SetRoutes(ctx context.Context, ref engine.ServiceRef, routes []strategy.Route) error {
	if len(routes) == 0 {
		cur, err := d.agent.Route(ctx, ref.Environment, ref.Service)
		if agent.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(cur.Backends) == 0 {
			return nil
		}
		cur.Backends, cur.UpdatedAt = nil, time.Time{}
		_, err = d.agent.PutRoute(ctx, cur)
		return err
	}
	r := agent.Route{Environment: ref.Environment, Service: ref.Service}
	lead := ""
	best := -1
	for _, x := range routes {
		r.Backends = append(r.Backends, agent.Backend{Group: x.Group, Weight: x.Weight})
		if x.Weight > best {
			lead, best = x.Group, x.Weight
		}
	}
	hosts, err := d.hosts(ctx, ref, lead, false)
	if err != nil {
		return err
	}
	r.Hosts = hosts
	_, err = d.agent.PutRoute(ctx, r)
	return err
}

// hosts returns the host names of a service (or of its preview) from the
// manifest of the release that runs group.
func (d *Driver) hosts(ctx context.Context, ref engine.ServiceRef, group string, preview bool) ([]string, error) {
	var spec *config.Service
	if group != "" {
		g, err := d.agent.Group(ctx, group)
		if err != nil && !agent.IsNotFound(err) {
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

// SetPreview routes <service>-preview.<environment>... to group.
func (d *Driver) SetPreview(ctx context.Context, ref engine.ServiceRef, group string) error {
	name := ref.Service + naming.PreviewSuffix
	if group == "" {
		err := d.agent.DeleteRoute(ctx, ref.Environment, name)
		if agent.IsNotFound(err) {
			return nil
		}
		return err
	}
	hosts, err := d.hosts(ctx, ref, group, true)
	if err != nil {
		return err
	}
	_, err = d.agent.PutRoute(ctx, agent.Route{Environment: ref.Environment, Service: name, Hosts: hosts,
		Backends: []agent.Backend{{Group: group, Weight: 100}}})
	return err
}

// WindowStats reads the proxy's statistics of a group over the window.
func (d *Driver) WindowStats(ctx context.Context, ref engine.ServiceRef, group string, window time.Duration) (strategy.WindowStats, error) {
	all, err := d.agent.Stats(ctx, ref.Environment, ref.Service, window)
	if err != nil {
		return strategy.WindowStats{}, err
	}
	s := all[group]
	return strategy.WindowStats{Requests: int64(s.Requests), Errors: int64(s.Errors), P99: s.P99}, nil
}

// Counters reads the proxy's served/failed totals of a service.
func (d *Driver) Counters(ctx context.Context, ref engine.ServiceRef) (engine.Counters, error) {
	c, err := d.agent.Counters(ctx, ref.Environment, ref.Service)
	if err != nil {
		return engine.Counters{}, err
	}
	return engine.Counters{Served: int64(c.Served), Failed: int64(c.Failed)}, nil
}

// taskRecord is a finished task, kept so a task id runs at most once.
type taskRecord struct {
	ExitCode int    `json:"exit_code"`
	Output   string `json:"output"`
}

const maxTaskOutput = 4 << 10

// RunTask runs a one-off command with the release's environment, once per task id.
func (d *Driver) RunTask(ctx context.Context, t engine.Task) (engine.TaskResult, error) {
	d.taskMu.Lock()
	defer d.taskMu.Unlock()
	rec := filepath.Join(d.taskDir, safeName(t.ID)+".json")
	if b, err := os.ReadFile(rec); err == nil {
		var r taskRecord
		if json.Unmarshal(b, &r) == nil {
			return engine.TaskResult{ExitCode: r.ExitCode, Output: r.Output}, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return engine.TaskResult{}, err
	}
	if len(t.Command) == 0 {
		return engine.TaskResult{}, errors.New("task has no command")
	}
	vals := map[string]string{
		"RELEASE_ID": t.Release, "VERSION": t.Spec.Version, "SERVICE_NAME": t.Ref.Service,
		"ENVIRONMENT": t.Ref.Environment, "PROJECT": t.Spec.Project, "INSTANCE_ID": "task", "PORT": "",
	}
	argv := make([]string, len(t.Command))
	for i, a := range t.Command {
		argv[i] = expand(a, vals)
	}
	argv[0] = commandPath(t.Spec, argv[0])
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = workDir(t.Spec)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	env := os.Environ()
	for k, v := range t.Spec.Env {
		env = append(env, k+"="+expand(v, vals))
	}
	env = append(env, "RUNWAY_SERVICE="+t.Ref.Service, "RUNWAY_ENVIRONMENT="+t.Ref.Environment,
		"RUNWAY_RELEASE="+t.Release, "RUNWAY_VERSION="+t.Spec.Version, "RUNWAY_TASK="+t.Name)
	if t.PreviewGroup != "" {
		host := naming.Preview(t.Ref.Service, t.Ref.Environment, t.Spec.Domain)
		env = append(env, "PREVIEW_URL=http://"+host+":"+portOf(d.proxyHTTP), "PREVIEW_HOST="+host, "PREVIEW_ADDR="+d.proxyHTTP)
	}
	cmd.Env = env
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res := engine.TaskResult{Output: out.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		res.ExitCode = ee.ExitCode()
		if res.ExitCode < 0 {
			res.ExitCode = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
		}
	default:
		return engine.TaskResult{}, fmt.Errorf("run %s: %w", t.Name, err)
	}
	b, _ := json.Marshal(taskRecord{ExitCode: res.ExitCode, Output: res.Output})
	if err := os.MkdirAll(d.taskDir, fsutil.DirMode); err != nil {
		return res, err
	}
	return res, fsutil.WriteFileAtomic(rec, b, fsutil.FileMode)
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

func expand(s string, vals map[string]string) string {
	for k, v := range vals {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return s
}

// tailBuffer keeps the last maxTaskOutput bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if t.buf.Len() > 2*maxTaskOutput {
		b := t.buf.Bytes()[t.buf.Len()-maxTaskOutput:]
		t.buf = *bytes.NewBuffer(append([]byte(nil), b...))
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf.Bytes()
	if len(b) > maxTaskOutput {
		b = b[len(b)-maxTaskOutput:]
	}
	return string(b)
}
