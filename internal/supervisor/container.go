package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/runenv"
)

// Labels of the containers the supervisor runs: an agent finds its own
// (LabelAgent), and an operator reads what each one is with `docker ps`.
const (
	LabelAgent       = "dev.runway.agent"
	LabelProject     = "dev.runway.project"
	LabelEnvironment = "dev.runway.environment"
	LabelService     = "dev.runway.service"
	LabelRelease     = "dev.runway.release"
	LabelGroup       = "dev.runway.group"
	LabelInstance    = "dev.runway.instance"
)

// containerWorkload runs an instance as a container on the agent's engine,
// published on 127.0.0.1:<the instance's port>. Its output is copied from
// the engine's log API into the instance's log file; it outlives the agent
// and is re-adopted by name.
type containerWorkload struct{ e *container.Engine }

// containerName is deterministic, so a restarted agent finds an instance's
// container, and unique per agent on a shared engine.
func containerName(in *instance) string { return "runway-" + in.s.agentID + "-" + in.id }

// containerProcess describes the instance inside its container: PORT and
// {{PORT}} are the port the service listens on there.
func (in *instance) containerProcess() runenv.Process {
	p := in.process()
	p.Port = strconv.Itoa(in.spec.ContainerPort)
	return p
}

func (w containerWorkload) start(in *instance) (*process, error) {
	ctx := in.stopCtx
	name := containerName(in)
	// A container of this name is an earlier run of the instance (it
	// crashed, or the agent died before removing it): it goes first.
	if err := w.e.Remove(ctx, name); err != nil {
		return nil, err
	}
	proc := in.containerProcess()
	secrets, _ := in.s.secretsOf(in.g)
	var cmd []string
	if len(in.spec.Command) > 0 {
		cmd = runenv.ExpandAll(in.spec.Command, proc.Values())
	}
	spec := container.Spec{
		Name:  name,
		Image: in.spec.Image,
		Cmd:   cmd,
		Env: runenv.ContainerEnviron(proc, in.spec.Env, secrets,
			"RUNWAY_INSTANCE="+in.id, "RUNWAY_GROUP="+in.group, "RUNWAY_AGENT_ID="+in.s.agentID),
		Labels: map[string]string{
			LabelAgent: in.s.agentID, LabelProject: in.spec.Project, LabelEnvironment: in.spec.Environment,
			LabelService: in.spec.Service, LabelRelease: in.spec.ReleaseID, LabelGroup: in.group, LabelInstance: in.id,
		},
		Port:        in.spec.ContainerPort,
		HostPort:    in.port,
		CPUs:        in.spec.Limits.CPU,
		MemoryBytes: in.spec.Limits.MemoryMB << 20,
		StopTimeout: in.spec.StopTimeout.D(),
		Init:        !in.spec.NoInit,
	}
	c, err := w.e.Run(ctx, spec)
	if err != nil {
		return nil, err
	}
	p := w.watch(in, c, time.Time{})
	in.mu.Lock()
	in.pid, in.startTicks, in.startedAt, in.adopted, in.container = 0, 0, time.Now(), false, c.ID
	in.state = agentapi.StateStarting
	in.lastHealth, in.healthySince, in.nextRestart = nil, time.Time{}, time.Time{}
	in.cpu, in.rss = 0, 0
	in.mu.Unlock()
	in.s.persistLogged()
	in.s.log.Info("instance started", "group", in.group, "instance", in.id, "container", c.ID, "port", in.port)
	return p, nil
}

// watch follows a running container: its logs (from since; zero: all) into
// the instance's log file, and its end into the process's exited channel.
// Both goroutines end with the supervisor, leaving the container running.
func (w containerWorkload) watch(in *instance, c container.Container, since time.Time) *process {
	p := &process{container: c.ID, exited: make(chan struct{}), logsDone: make(chan struct{})}
	ctx := in.s.ctx
	in.s.wg.Add(2)
	go func() {
		defer in.s.wg.Done()
		defer close(p.logsDone)
		err := w.e.Logs(ctx, c.ID, container.LogOptions{Follow: true, Since: since}, func(l container.LogLine) error {
			t := l.Time
			if t.IsZero() {
				t = time.Now()
			}
			in.logs.writeAt(t, l.Stream, l.Text)
			return nil
		})
		if err != nil && ctx.Err() == nil && !errors.Is(err, container.ErrNotFound) {
			in.s.log.Warn("container logs", "instance", in.id, "container", c.ID, "err", err)
		}
	}()
	go func() {
		defer in.s.wg.Done()
		for ctx.Err() == nil {
			end, err := w.e.WaitStopped(ctx, c.ID)
			switch {
			case err == nil:
				p.exitMsg = fmt.Sprintf("exit status %d", end.ExitCode)
				if end.OOMKilled {
					p.exitMsg += " (killed: out of memory)"
				}
			case errors.Is(err, container.ErrNotFound):
				p.exitMsg = "container removed by someone else"
			case ctx.Err() != nil:
				return // the agent stops: the container keeps running
			default:
				// The engine went away for a moment: wait and ask again.
				in.s.log.Warn("waiting for container", "instance", in.id, "container", c.ID, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(in.s.opts.AdoptPoll):
				}
				continue
			}
			close(p.exited)
			return
		}
	}()
	return p
}

func (w containerWorkload) stop(in *instance, p *process) {
	// Not the agent's context: a stop finishes even while the agent shuts
	// down (Shutdown with stopInstances stops instances first).
	timeout := in.spec.StopTimeout.D()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	if err := w.e.Stop(ctx, p.container, timeout); err != nil {
		in.s.log.Warn("stop container", "instance", in.id, "container", p.container, "err", err)
	}
	if _, err := w.e.WaitStopped(ctx, p.container); err != nil && !errors.Is(err, container.ErrNotFound) {
		in.s.log.Warn("wait for stopped container", "instance", in.id, "container", p.container, "err", err)
	}
	w.remove(ctx, in, p)
}

func (w containerWorkload) exited(in *instance, p *process) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w.remove(ctx, in, p)
}

// remove deletes the stopped container once its last lines are in the log
// file (its logs die with it).
func (w containerWorkload) remove(ctx context.Context, in *instance, p *process) {
	select {
	case <-p.logsDone:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
	if err := w.e.Remove(ctx, p.container); err != nil {
		in.s.log.Warn("remove container", "instance", in.id, "container", p.container, "err", err)
	}
}

func (w containerWorkload) sample(in *instance, p *process) {
	u, err := w.e.Usage(in.stopCtx, p.container)
	if err != nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if !p.cpuAt.IsZero() {
		if dt := u.Time.Sub(p.cpuAt); dt > 0 && u.CPU >= p.cpuUsed {
			in.cpu = float64(u.CPU-p.cpuUsed) / float64(dt) * 100
		}
	}
	p.cpuAt, p.cpuUsed = u.Time, u.CPU
	in.rss = u.MemoryBytes
}

// owns: the container runs and is published on the instance's port, so
// what answers there is its service (the engine holds the port).
func (w containerWorkload) owns(in *instance, p *process) (bool, error) {
	c, err := w.e.Inspect(in.stopCtx, p.container)
	if err != nil {
		return false, err
	}
	return c.Running && c.HostPort == in.port, nil
}

// readopt re-attaches an instance of the state file to its container if it
// still runs; nil (a new start) otherwise. One that the previous agent last
// saw healthy starts healthy, and monitor re-checks it at once.
func (s *Supervisor) readopt(in *instance, is instanceState) *process {
	w, ok := in.rt.(containerWorkload)
	if !ok {
		s.log.Warn("instance recorded with a container, but its group has no image or the agent no engine: starting it again", "instance", is.ID)
		return nil
	}
	c, err := w.e.Inspect(s.ctx, is.Container)
	if err != nil || !c.Running || c.HostPort != is.Port {
		why := "it is gone"
		if err == nil {
			why = fmt.Sprintf("it is %s (exit status %d)", c.State, c.ExitCode)
		} else if !errors.Is(err, container.ErrNotFound) {
			why = err.Error()
		}
		s.log.Warn("instance container not running: starting a new one", "instance", is.ID, "container", is.Container, "why", why)
		in.restarts++
		in.lastExit = "container ended while no agent was running: " + why
		return nil
	}
	// Lines written while no agent ran are copied now; the log file's
	// lines stop where the previous agent stopped, so take from then on.
	p := w.watch(in, c, in.logs.lastWrite())
	p.adopted = true
	in.mu.Lock()
	in.adopted, in.container = true, c.ID
	in.state = agentapi.StateStarting
	if is.Healthy {
		in.state, in.healthySince = agentapi.StateHealthy, time.Now()
	}
	if in.startedAt.IsZero() {
		in.startedAt = c.StartedAt
	}
	in.mu.Unlock()
	s.log.Info("instance adopted", "group", in.group, "instance", in.id, "container", c.ID, "port", in.port, "last_known_healthy", is.Healthy)
	return p
}

// removeOrphanContainers removes, in the background, the containers of
// this agent whose instance no group has (a group deleted while its
// containers could not be, or created as the previous agent died).
func (s *Supervisor) removeOrphanContainers(known map[string]bool) {
	e := s.opts.Engine
	if e == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		cs, err := e.List(s.ctx, map[string]string{LabelAgent: s.agentID})
		if err != nil {
			s.log.Warn("list this agent's containers", "err", err)
			return
		}
		for _, c := range cs {
			if known[c.Labels[LabelInstance]] {
				continue
			}
			s.log.Warn("removing the container of an instance no group has", "container", c.Name, "instance", c.Labels[LabelInstance])
			if err := e.Stop(s.ctx, c.ID, agentapi.DefaultStopTimeout); err == nil {
				_ = e.Remove(s.ctx, c.ID)
			}
		}
	}()
}
