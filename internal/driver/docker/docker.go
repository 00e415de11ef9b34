// Package docker is the container target (target.Target): the instances of
// a release are containers of its image that the agent on the engine's
// host supervises (health checks, restarts, adoption, logs, the proxy's
// routes: the local target's agent protocol, with an image in the group's
// spec), and its one-off tasks (pre_deploy hooks, verify commands) are
// containers the driver runs on the engine itself, named from the task id,
// so that a task outlives the server that started it and the next server
// re-attaches to it instead of running it again (tasks.go;
// docs/design.md, "The container runtime").
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/driver/local"
	"github.com/runwayhq/runway/internal/runenv"
	"github.com/runwayhq/runway/internal/target"
)

// Driver implements target.Target for target docker. Workloads, traffic,
// metrics and logs are the local driver's calls to the agent.
type Driver struct {
	*local.Driver
	tasks *Tasks
	e     *container.Engine
	log   *slog.Logger
}

var _ target.Target = (*Driver)(nil)

// New returns the container target: groups through the agent's client a
// (whose agent runs containers on e), tasks on e recorded in taskDir.
func New(a *local.Driver, e *container.Engine, taskDir, proxyHTTP string, log *slog.Logger) *Driver {
	d := &Driver{Driver: a, tasks: NewTasks(e, taskDir, proxyHTTP), e: e, log: log}
	d.tasks.secrets = a.ReleaseSecrets
	a.WithGroupSpec(GroupSpec)
	return d
}

// Capabilities are the local target's: the same agent and proxy carry the
// weights, statistics, preview and group names; tasks re-attach by their
// container's name.
func Capabilities() target.Capabilities { return local.Capabilities() }

// Capabilities implements target.Target.
func (d *Driver) Capabilities() target.Capabilities { return Capabilities() }

// Image is the image a release runs: the manifest's, its template values
// (the version) expanded.
func Image(spec *config.Service) string {
	p := runenv.Process{Project: spec.Project, Service: spec.Name, Environment: spec.Environment, Version: spec.Version}
	return runenv.Expand(spec.Image, p.Values())
}

// GroupSpec is the agent's spec of a container group: the manifest's
// names, env, health, stop timeout and limits, its image, port, and
// command (replacing the image's, when given).
func GroupSpec(g target.GroupSpec) agentapi.GroupSpec {
	spec := local.BaseGroupSpec(g)
	spec.Image = Image(g.Spec)
	spec.ContainerPort = g.Spec.Port
	spec.Command = slices.Clone(g.Spec.Command)
	spec.NoInit = !g.Spec.Init
	return spec
}

// Validate checks that the release's image is on the engine (or pinned by
// digest, pulled at the first start) and warns, in the server's log, when
// the image does not expose the service's port.
func (d *Driver) Validate(ctx context.Context, ref target.ServiceRef, spec *config.Service) error {
	var problems []string
	image := Image(spec)
	switch {
	case spec.Image == "":
		problems = append(problems, "target docker runs containers: the manifest needs an image (or a build block)")
	default:
		img, err := d.e.InspectImage(ctx, image)
		switch {
		case errors.Is(err, container.ErrNotFound):
			_, _, digest := config.SplitImage(image)
			if digest == "" {
				problems = append(problems, fmt.Sprintf("image %s is not on the engine: build it (runway build %s --env %s --version %s) or push it and pin its digest", image, ref.Service, ref.Environment, spec.Version))
			}
		case err != nil:
			problems = append(problems, fmt.Sprintf("image %s: %v", image, err))
		case len(img.Ports) > 0 && !slices.Contains(img.Ports, strconv.Itoa(spec.Port)+"/tcp"):
			d.log.Warn("the image does not expose the service's port", "service", ref.String(), "image", image, "port", spec.Port, "exposed", img.Ports)
		}
	}
	// Secrets were resolved and pinned by the server at submit; the values
	// reach containers as they reach processes (the agent's secrets call).
	return d.ValidateAgent(ctx, ref, problems)
}

// StartTask runs the task in a container of the release's image.
func (d *Driver) StartTask(ctx context.Context, t target.Task) error {
	if t.Spec != nil {
		spec := *t.Spec
		spec.Image = Image(t.Spec)
		t.Spec = &spec
	}
	return d.tasks.StartTask(ctx, t)
}

// ObserveTask reports a task, re-attaching by its container's name.
func (d *Driver) ObserveTask(ctx context.Context, ref target.ServiceRef, id string) (target.TaskStatus, error) {
	return d.tasks.ObserveTask(ctx, ref, id)
}

// StopTask kills a running task's container and forgets it.
func (d *Driver) StopTask(ctx context.Context, ref target.ServiceRef, id string) error {
	return d.tasks.StopTask(ctx, ref, id)
}
