package supervisor

import "github.com/runwayhq/runway/internal/agentapi"

// workload runs what an instance is: a process group or a container. The
// instance owns everything else — its port, health checks, restarts with
// backoff, crash loops, the state file, logs and whether it is routed to —
// so that a process and a container are supervised by one copy of that
// code (docs/design.md, "The container runtime").
type workload interface {
	// start launches the workload; the process's exited channel closes
	// when it ends, with exitMsg saying how.
	start(in *instance) (*process, error)
	// stop stops the workload gracefully (SIGTERM, the spec's stop
	// timeout, SIGKILL) and returns once it is gone.
	stop(in *instance, p *process)
	// exited cleans up after a workload that ended on its own.
	exited(in *instance, p *process)
	// sample updates the instance's CPU and memory figures.
	sample(in *instance, p *process)
	// owns reports whether what listens on the instance's port is this
	// workload (and not another program that took the port).
	owns(in *instance, p *process) (bool, error)
}

// runtimeFor chooses the workload of a group's instances.
func (s *Supervisor) runtimeFor(spec *agentapi.GroupSpec) workload {
	if spec.Image != "" && s.opts.Engine != nil {
		return containerWorkload{e: s.opts.Engine}
	}
	return procRuntime{}
}

// procRuntime runs an instance as a process group of this machine.
type procRuntime struct{}

func (procRuntime) start(in *instance) (*process, error) { return in.startProcess() }

func (procRuntime) stop(in *instance, p *process) { in.stopProcess(p) }

func (procRuntime) exited(in *instance, p *process) {
	// Children the leader left behind (in its group, or out of it with its
	// marker) go with it.
	if len(groupMembers(p.pid)) > 0 || len(in.descendants(p)) > 0 {
		stopTree(p, in.spec.StopTimeout.D(), func() []int { return in.descendants(p) })
	}
}

func (procRuntime) sample(in *instance, p *process) { in.sample(p.pid) }

func (procRuntime) owns(in *instance, p *process) (bool, error) {
	return portHeldByGroup(in.port, p.pid)
}
