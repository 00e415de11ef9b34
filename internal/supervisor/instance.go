package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/procfs"
	"github.com/runwayhq/runway/internal/runenv"
)

// process is a running instance process: a child of this agent, or one
// adopted from a previous agent (not our child: watched through /proc).
type process struct {
	pid        int
	startTicks uint64
	adopted    bool
	exited     chan struct{}
	exitMsg    string

	// A container: its id, and the end of the copy of its logs.
	container string
	logsDone  chan struct{}
	cpuAt     time.Time
	cpuUsed   time.Duration
}

type outcome int

const (
	outExited outcome = iota
	outUnhealthy
	outStop
	outDetach
)

type instance struct {
	s     *Supervisor
	g     *group
	spec  *agentapi.GroupSpec
	group string
	id    string
	index int
	port  int
	rt    workload

	logs     *logFile
	out, err *logPipe

	stopCtx    context.Context
	stopCancel context.CancelFunc
	stopping   atomic.Bool
	launched   atomic.Bool
	done       chan struct{}
	removed    chan struct{} // closed once the instance left its group

	mu           sync.Mutex
	state        string
	draining     bool
	pid          int
	startTicks   uint64
	startedAt    time.Time
	adopted      bool
	restarts     int
	consec       int
	lastExit     string
	lastHealth   *agentapi.HealthResult
	nextRestart  time.Time
	healthySince time.Time
	cpu          float64
	rss          int64
	lastUsage    usage
	cgroups      []string
	container    string // id of the instance's container, "" for a process
}

func (in *instance) status() agentapi.InstanceStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := agentapi.InstanceStatus{
		ID: in.id, Group: in.group, Index: in.index, State: in.state, PID: in.pid, Port: in.port,
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port)), Adopted: in.adopted,
		Restarts: in.restarts, ConsecutiveFailures: in.consec,
		CrashLoop: in.consec >= in.s.opts.CrashLoopThreshold, StartedAt: in.startedAt,
		LastExit: in.lastExit, NextRestartAt: in.nextRestart, CPUPercent: in.cpu, RSSBytes: in.rss,
	}
	if in.lastHealth != nil {
		h := *in.lastHealth
		st.LastHealth = &h
	}
	return st
}

func (in *instance) persistent() instanceState {
	in.mu.Lock()
	defer in.mu.Unlock()
	return instanceState{ID: in.id, Index: in.index, Port: in.port, PID: in.pid, StartTicks: in.startTicks,
		StartedAt: in.startedAt, Restarts: in.restarts, Cgroups: in.cgroups, Healthy: in.state == agentapi.StateHealthy,
		Container: in.container}
}

func (in *instance) currentState() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state
}

func (in *instance) routable() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state == agentapi.StateHealthy && !in.draining
}

// process describes the instance for its template values and environment.
func (in *instance) process() runenv.Process {
	return runenv.Process{Project: in.spec.Project, Service: in.spec.Service, Environment: in.spec.Environment,
		Release: in.spec.ReleaseID, Version: in.spec.Version, Instance: in.id, Port: strconv.Itoa(in.port)}
}

// values are the template values of this instance.
func (in *instance) values() map[string]string { return in.process().Values() }

// env is the environment of the instance (runenv.Environ: the allow-list of
// the agent's own environment, the spec's env with templates substituted,
// PORT and the RUNWAY_* metadata) plus the instance's own identifiers.
func (in *instance) env() []string {
	values, _ := in.s.secretsOf(in.g)
	return runenv.Environ(in.process(), in.spec.Env, values,
		"RUNWAY_INSTANCE="+in.id,
		"RUNWAY_GROUP="+in.group,
		"RUNWAY_AGENT_ID="+in.s.agentID,
	)
}

func (in *instance) setState(st string) {
	in.mu.Lock()
	changed := in.state != st
	in.state = st
	in.mu.Unlock()
	if changed {
		in.s.notify()
	}
}

// startProcess launches the instance's process in its own process group.
func (in *instance) startProcess() (*process, error) {
	in.stopLeftovers()
	vals := in.values()
	args := runenv.ExpandAll(in.spec.Command, vals)
	prog, err := runenv.Program(args[0], in.spec.WorkDir)
	if err != nil {
		return nil, err
	}
	outW, err := in.out.writer()
	if err != nil {
		return nil, err
	}
	defer outW.Close()
	errW, err := in.err.writer()
	if err != nil {
		return nil, err
	}
	defer errW.Close()
	cmd := exec.Command(prog, args[1:]...)
	cmd.Args[0] = args[0]
	cmd.Dir = in.spec.WorkDir
	cmd.Env = in.env()
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var cgs []string
	if lim := in.spec.Limits; lim != (agentapi.Limits{}) && in.s.limitsEnforced(in.group) {
		dirs, _, err := in.s.cg.create(in.id, lim)
		if err != nil {
			in.s.limitsFailed(in.group, err)
		} else {
			cgs = dirs
		}
	}
	// Its own cgroup, to find all its processes at stop (cgroup v2 limits
	// already give it one).
	track := in.s.cg.track(in.id)
	if slices.Contains(cgs, track) {
		track = ""
	}
	if err := cmd.Start(); err != nil {
		in.s.cg.remove(append(cgs, track))
		return nil, err
	}
	pid := cmd.Process.Pid
	if len(cgs) > 0 {
		if err := in.s.cg.attach(cgs, pid); err != nil {
			in.s.limitsFailed(in.group, err)
		}
	}
	if track != "" {
		// A child forked before this write stays out; the marker scan still
		// finds it.
		if err := in.s.cg.attach([]string{track}, pid); err != nil {
			in.s.log.Debug("instance cgroup not usable", "instance", in.id, "err", err)
			in.s.cg.remove([]string{track})
		} else {
			cgs = append(cgs, track)
		}
	}
	ticks, _ := procfs.ProcessStartTicks(pid)
	p := &process{pid: pid, startTicks: ticks, exited: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if err == nil {
			p.exitMsg = "exit status 0"
		} else {
			p.exitMsg = err.Error()
		}
		close(p.exited)
	}()
	in.mu.Lock()
	in.pid, in.startTicks, in.startedAt, in.adopted = pid, ticks, time.Now(), false
	in.cgroups = cgs
	in.state = agentapi.StateStarting
	in.lastHealth, in.healthySince, in.nextRestart = nil, time.Time{}, time.Time{}
	in.cpu, in.rss, in.lastUsage = 0, 0, usage{}
	in.mu.Unlock()
	in.s.persistLogged()
	in.s.log.Info("instance started", "group", in.group, "instance", in.id, "pid", pid, "port", in.port)
	return p, nil
}

// adopt watches a process started by a previous agent. One that agent last
// saw healthy starts healthy (routable at once); monitor re-checks it at
// once and the usual unhealthy_threshold applies.
func (in *instance) adopt(pid int, ticks uint64, healthy bool) *process {
	p := &process{pid: pid, startTicks: ticks, adopted: true, exited: make(chan struct{})}
	in.s.wg.Add(1)
	go func() {
		defer in.s.wg.Done()
		t := time.NewTicker(in.s.opts.AdoptPoll)
		defer t.Stop()
		for {
			select {
			case <-in.s.ctx.Done():
				return
			case <-t.C:
			}
			if !procfs.ProcessAlive(pid, ticks) {
				p.exitMsg = "exited (adopted process: exit status unknown)"
				close(p.exited)
				return
			}
		}
	}()
	in.mu.Lock()
	in.pid, in.startTicks, in.adopted = pid, ticks, true
	in.state = agentapi.StateStarting
	if healthy {
		in.state, in.healthySince = agentapi.StateHealthy, time.Now()
	}
	if in.startedAt.IsZero() && !bootTime.IsZero() {
		in.startedAt = bootTime.Add(time.Duration(ticks) * time.Second / procfs.ClockTicks)
	}
	in.mu.Unlock()
	in.s.log.Info("instance adopted", "group", in.group, "instance", in.id, "pid", pid, "port", in.port, "last_known_healthy", healthy)
	return p
}

// run owns the instance's process: it starts it, checks it, restarts it
// with backoff, and stops it when asked. It returns without touching the
// process when the supervisor detaches.
func (in *instance) run(p *process) {
	defer close(in.done)
	for {
		if p == nil && in.stopCtx.Err() != nil {
			if in.stopping.Load() {
				in.setState(agentapi.StateStopped)
			}
			return
		}
		if p == nil {
			if d := in.restartDelay(); d > 0 {
				in.mu.Lock()
				in.nextRestart = time.Now().Add(d)
				in.mu.Unlock()
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-in.stopCtx.Done():
					t.Stop()
					if in.stopping.Load() {
						in.setState(agentapi.StateStopped)
					}
					return
				}
			}
			if !in.awaitSecrets() {
				if in.stopping.Load() {
					in.setState(agentapi.StateStopped)
				}
				return
			}
			var err error
			if p, err = in.rt.start(in); err != nil {
				in.failed("start: " + err.Error())
				continue
			}
		}
		switch in.monitor(p) {
		case outDetach:
			return
		case outStop:
			in.setState(agentapi.StateStopping)
			in.rt.stop(in, p)
			in.setState(agentapi.StateStopped)
			return
		case outUnhealthy:
			in.setState(agentapi.StateStopping)
			in.rt.stop(in, p)
			in.failed("unhealthy: " + in.lastHealthDetail())
		case outExited:
			in.rt.exited(in, p)
			in.failed(p.exitMsg)
		}
		p = nil
	}
}

// awaitSecrets waits until the group's secrets are set (an agent that
// restarted has none until the server sends them again); false when the
// instance is stopped meanwhile.
func (in *instance) awaitSecrets() bool {
	values, set := in.s.secretsOf(in.g)
	if values != nil || set == nil {
		return true
	}
	in.s.log.Info("instance waits for its group's secrets from the server", "group", in.group, "instance", in.id)
	select {
	case <-set:
		return true
	case <-in.stopCtx.Done():
		return false
	}
}

func (in *instance) lastHealthDetail() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.lastHealth == nil {
		return ""
	}
	return in.lastHealth.Detail
}

func (in *instance) restartDelay() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.consec == 0 {
		return 0
	}
	b := in.s.opts.Backoff
	d := b.Initial
	for i := 1; i < in.consec && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// failed records an exit or an unhealthy replacement.
func (in *instance) failed(why string) {
	in.mu.Lock()
	if !in.healthySince.IsZero() && time.Since(in.healthySince) >= in.s.opts.Backoff.ResetAfter {
		in.consec = 0
	}
	in.consec++
	in.restarts++
	in.lastExit = why
	in.state = agentapi.StateExited
	in.pid, in.startTicks, in.adopted, in.container = 0, 0, false, ""
	in.healthySince = time.Time{}
	cgs := in.cgroups
	in.cgroups = nil
	in.mu.Unlock()
	in.s.cg.remove(cgs)
	in.s.log.Warn("instance exited", "group", in.group, "instance", in.id, "reason", why)
	in.s.notify()
	in.s.persistLogged()
}

// firstProbe is when an http or tcp check first probes a new instance; the
// probes double until the first regular check (min(interval, 100 ms)).
const firstProbe = 5 * time.Millisecond

func (in *instance) monitor(p *process) outcome {
	h := in.spec.Health
	first := min(h.Interval.D(), 100*time.Millisecond)
	if h.Type == agentapi.HealthNone || p.adopted {
		first = 0
	}
	// Early probes: before the first regular check, a new instance is probed
	// at 5 ms, 10 ms, ... A success among them counts as a check; a failure
	// does not (the program is still starting), so the regular checks count
	// failures as before, and a program that listens within milliseconds
	// serves within milliseconds. Exec checks start processes: not probed.
	start := time.Now()
	probe := time.Duration(0)
	if (h.Type == agentapi.HealthHTTP || h.Type == agentapi.HealthTCP) && firstProbe < first {
		probe = firstProbe
	}
	timer := time.NewTimer(cmp.Or(probe, first))
	defer timer.Stop()
	succ, fail := 0, 0
	env := in.env()
	vals := in.values()
	for {
		select {
		case <-p.exited:
			return outExited
		case <-in.stopCtx.Done():
			if in.stopping.Load() {
				return outStop
			}
			return outDetach
		case <-timer.C:
		}
		in.rt.sample(in, p)
		res := check(in.stopCtx, h, in.port, in.spec.WorkDir, env, vals)
		if in.stopCtx.Err() != nil {
			continue
		}
		if res.OK && (h.Type == agentapi.HealthHTTP || h.Type == agentapi.HealthTCP) && in.currentState() != agentapi.StateHealthy {
			// Something answers on the port: make sure it is this instance
			// before it may receive traffic.
			if held, err := in.rt.owns(in, p); err == nil && !held {
				res.OK = false
				res.Detail = fmt.Sprintf("port %d answers, but no process of this instance listens on it (another program holds the port)", in.port)
			}
		}
		select {
		case <-p.exited:
			return outExited
		default:
		}
		now := time.Now()
		if probe > 0 {
			if !res.OK {
				if since := now.Sub(start); since < first {
					probe *= 2
					timer.Reset(min(probe, first-since))
					continue
				}
				// The regular first check's time has come: this one counts.
			}
			probe = 0
		}
		in.mu.Lock()
		prev := in.state
		in.lastHealth = &res
		if res.OK {
			succ, fail = succ+1, 0
			if in.state != agentapi.StateHealthy && succ >= h.HealthyThreshold {
				in.state, in.healthySince = agentapi.StateHealthy, now
			}
		} else {
			succ, fail = 0, fail+1
			inStart := now.Before(in.startedAt.Add(h.StartPeriod.D()))
			if (in.state == agentapi.StateHealthy || !inStart) && fail >= h.UnhealthyThreshold {
				in.state = agentapi.StateUnhealthy
			}
		}
		if in.state == agentapi.StateHealthy && in.consec > 0 && now.Sub(in.healthySince) >= in.s.opts.Backoff.ResetAfter {
			in.consec = 0
		}
		st := in.state
		in.mu.Unlock()
		if st != prev {
			in.s.log.Info("instance health changed", "group", in.group, "instance", in.id, "state", st, "detail", res.Detail)
			in.s.notify()
			// The last known health is what the next agent starts from.
			in.s.persistLogged()
		}
		if st == agentapi.StateUnhealthy {
			return outUnhealthy
		}
		timer.Reset(h.Interval.D())
	}
}

// sample updates CPU % and RSS from /proc.
func (in *instance) sample(pid int) {
	ticks, rss, err := sampleUsage(pid)
	if err != nil {
		return
	}
	now := time.Now()
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.lastUsage.at.IsZero() {
		if dt := now.Sub(in.lastUsage.at).Seconds(); dt > 0 && ticks >= in.lastUsage.ticks {
			in.cpu = float64(ticks-in.lastUsage.ticks) / procfs.ClockTicks / dt * 100
		}
	}
	in.lastUsage = usage{at: now, ticks: ticks}
	in.rss = rss
}

// stopProcess stops the process group gracefully: SIGTERM, stop_timeout,
// SIGKILL; it returns once the leader and every other member are gone.
func (in *instance) stopProcess(p *process) {
	stopTree(p, in.spec.StopTimeout.D(), func() []int { return in.descendants(p) })
	in.mu.Lock()
	in.pid, in.startTicks = 0, 0
	cgs := in.cgroups
	in.cgroups = nil
	in.mu.Unlock()
	in.s.cg.remove(cgs)
}

// stopTree stops a process tree: the process group led by p, and the
// processes members returns (those that left the group: by the instance's
// marker in /proc and its cgroups). SIGTERM to all, timeout, SIGKILL; it
// returns once the leader and all of them are gone. members scans /proc, so
// it is called at most every memberScan (and once more after the group is
// empty, to be sure), not at every 50 ms tick: a group of 100 instances
// stopping at once must not spend a core scanning.
func stopTree(p *process, timeout time.Duration, members func() []int) {
	var others []int
	var scannedAt time.Time
	scan := func() []int {
		others, scannedAt = members(), time.Now()
		return others
	}
	signalAll := func(sig syscall.Signal, fresh bool) {
		// A process that exited on its own may have left its group behind.
		signalGroup(p.pid, sig)
		if fresh || time.Since(scannedAt) >= memberScan {
			scan()
		}
		for _, pid := range others {
			if pid > 1 {
				syscall.Kill(pid, sig)
			}
		}
	}
	signalAll(syscall.SIGTERM, true)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	killed := false
	var goneAt time.Time // when the leader and its group were first seen gone
	var giveUp <-chan time.Time
	for {
		leaderGone := false
		select {
		case <-p.exited:
			leaderGone = true
		default:
		}
		if leaderGone && len(groupMembers(p.pid)) == 0 {
			// Done once a scan made since finds nobody left.
			if goneAt.IsZero() {
				goneAt = time.Now()
				scan()
			} else if time.Since(scannedAt) >= memberScan {
				scan()
			}
			if len(others) == 0 {
				return
			}
		}
		select {
		case <-deadline.C:
			signalAll(syscall.SIGKILL, true)
			killed = true
			giveUp = time.After(10 * time.Second)
		case <-giveUp:
			// Unkillable (uninterruptible sleep): nothing more to do.
			return
		case <-tick.C:
			if killed {
				// Late members (forked during the kill) get SIGKILL too.
				signalAll(syscall.SIGKILL, false)
			} else if leaderGone {
				// Descendants found after the leader went get the SIGTERM
				// they would have got with the group.
				signalAll(syscall.SIGTERM, false)
			}
		}
	}
}

// memberScan is how often stopTree looks for an instance's processes
// outside its process group.
const memberScan = 250 * time.Millisecond

// descendants lists the processes of the instance outside its process
// group: those carrying its marker (RUNWAY_AGENT_ID, RUNWAY_INSTANCE) and
// those in its cgroups, such as a child that called setsid.
func (in *instance) descendants(p *process) []int {
	in.mu.Lock()
	cgs := append([]string(nil), in.cgroups...)
	in.mu.Unlock()
	var out []int
	seen := map[int]bool{}
	for _, pid := range append(instanceProcesses(in.s.agentID, in.id), cgroupProcs(cgs)...) {
		if pid == p.pid || seen[pid] {
			continue
		}
		if st, err := procfs.ReadStat(pid); err != nil || st.PGID == p.pid || st.State == 'Z' {
			continue // gone, or reached through the group already
		}
		seen[pid] = true
		out = append(out, pid)
	}
	return out
}

// stopLeftovers stops processes of the instance that outlived its last
// process (a setsid child of a process that exited while no agent ran), so
// that a new process does not start next to them and none of them is ever
// taken for the instance.
func (in *instance) stopLeftovers() {
	left := instanceProcesses(in.s.agentID, in.id)
	if len(left) == 0 {
		return
	}
	in.s.log.Warn("stopping processes left by the instance's previous process", "group", in.group, "instance", in.id, "pids", left)
	gone := &process{exited: make(chan struct{})}
	close(gone.exited)
	stopTree(gone, in.spec.StopTimeout.D(), func() []int { return instanceProcesses(in.s.agentID, in.id) })
}

// Stop asks the instance to stop and waits until its processes are gone.
func (in *instance) stop() {
	in.stopping.Store(true)
	in.stopCancel()
	if in.launched.Load() {
		<-in.done
	}
}

func (in *instance) closeLogs() {
	if in.out != nil {
		in.out.close()
	}
	if in.err != nil {
		in.err.close()
	}
	if in.logs != nil {
		in.logs.close()
	}
}

func (s *Supervisor) logPath(group, id string) string {
	return filepath.Join(s.opts.DataDir, "logs", group, id+".log")
}

func (s *Supervisor) newInstance(g *group, id string, index, port int) (*instance, error) {
	in := &instance{s: s, g: g, spec: &g.spec, group: g.spec.Name, id: id, index: index, port: port,
		rt: s.runtimeFor(&g.spec), done: make(chan struct{}), removed: make(chan struct{}), state: agentapi.StateStarting}
	in.stopCtx, in.stopCancel = context.WithCancel(s.ctx)
	var err error
	if in.logs, err = openLogFile(s.logPath(g.spec.Name, id), s.opts.LogMaxBytes, s.opts.LogFiles); err != nil {
		return nil, fmt.Errorf("open log of instance %s: %w", id, err)
	}
	if len(g.spec.Secrets) > 0 {
		in.logs.secrets = func() map[string]string { v, _ := s.secretsOf(g); return v }
	}
	runDir := filepath.Join(s.opts.DataDir, "run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		in.logs.close()
		return nil, err
	}
	if in.out, err = openLogPipe(filepath.Join(runDir, id+".stdout"), "stdout", in.logs); err != nil {
		in.logs.close()
		return nil, err
	}
	if in.err, err = openLogPipe(filepath.Join(runDir, id+".stderr"), "stderr", in.logs); err != nil {
		in.out.close()
		in.logs.close()
		return nil, err
	}
	return in, nil
}

// removeFiles deletes the log files and pipes of an instance that never
// ran (its creation failed).
func (s *Supervisor) removeFiles(in *instance) {
	for _, p := range logFiles(s.logPath(in.group, in.id), s.opts.LogFiles) {
		os.Remove(p)
	}
	s.removePipes(in)
}

// removePipes deletes the log pipes of a removed instance; its logs stay.
func (s *Supervisor) removePipes(in *instance) {
	runDir := filepath.Join(s.opts.DataDir, "run")
	os.Remove(filepath.Join(runDir, in.id+".stdout"))
	os.Remove(filepath.Join(runDir, in.id+".stderr"))
}

var errStopped = errors.New("supervisor is shut down")
