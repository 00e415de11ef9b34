package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/procfs"
)

// Backoff configures restarts: the delay starts at Initial and doubles up
// to Max; it goes back to Initial once an instance has been healthy for
// ResetAfter.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	ResetAfter time.Duration
}

// DefaultBackoff is 1 s doubling to 30 s, reset after 60 s healthy.
var DefaultBackoff = Backoff{Initial: time.Second, Max: 30 * time.Second, ResetAfter: time.Minute}

// Options configure a Supervisor.
type Options struct {
	// DataDir holds the state file, logs and log pipes.
	DataDir string
	// PortMin and PortMax bound the ports given to instances (inclusive).
	PortMin, PortMax int
	Backoff          Backoff
	// LogMaxBytes and LogFiles cap each instance's logs (default 10 MiB x 3).
	LogMaxBytes int64
	LogFiles    int
	// CrashLoopThreshold is the number of consecutive failures after which an
	// instance is reported as crash looping (default 3).
	CrashLoopThreshold int
	// AdoptPoll is how often adopted processes are checked for exit.
	AdoptPoll time.Duration
	// CgroupRoot is where cgroup file systems are mounted (/sys/fs/cgroup).
	CgroupRoot string
	// BeforeStop is called before instances are stopped by a scale down or a
	// group deletion (not on restarts), after they left the routable
	// snapshot: the agent drains them in the proxy there, for at most drain
	// (the drain timeout of that scale or delete call; 0 means the agent's
	// default). An error is logged and the stop goes on.
	BeforeStop func(ctx context.Context, group string, instanceIDs []string, drain time.Duration) error
	// Engine runs the instances of groups with an image as containers; nil
	// refuses such groups.
	Engine *container.Engine
	Logger *slog.Logger
}

// Errors a caller decides on.
var (
	ErrNotFound       = errors.New("not found")
	ErrPortsExhausted = errors.New("port range exhausted")
	ErrDeleting       = errors.New("group is being deleted")
)

// ConflictError means a group of that name exists with another spec.
type ConflictError struct {
	Group string
	Field string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("group %q already exists with a different %s: a group is immutable apart from its instance count; create a group with another name (one per release)", e.Group, e.Field)
}

type group struct {
	spec      agentapi.GroupSpec
	state     string
	createdAt time.Time
	limits    string
	nextIndex int
	instances []*instance
	opMu      sync.Mutex    // serialises scale and delete
	deleted   chan struct{} // closed once deleted
	// secrets are the values of spec.Secrets, in memory only (never in the
	// state file); nil until the server sends them (SetSecrets), after
	// which secretsSet (under Supervisor.mu) is closed. An atomic pointer:
	// every log line of the group's instances reads it (redaction).
	secrets    atomic.Pointer[map[string]string]
	secretsSet chan struct{}
}

// SetSecrets gives a group the values of the secrets its spec names (all of
// them, no other); instances waiting for them start. The values stay in
// memory: an agent that restarts reports the group SecretsMissing until the
// server sends them again.
func (s *Supervisor) SetSecrets(name string, values map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[name]
	if !ok {
		return fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	for _, k := range g.spec.Secrets {
		if _, ok := values[k]; !ok {
			return fieldErr("values", "lacks %s, which the group's spec names in secrets", k)
		}
	}
	for k, v := range values {
		if !slices.Contains(g.spec.Secrets, k) {
			return fieldErr("values", "%s is not one of the group's secrets (%s)", k, strings.Join(g.spec.Secrets, ", "))
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fieldErr("values."+k, "contains a NUL byte")
		}
	}
	v := copyMap(values)
	g.secrets.Store(&v)
	if g.secretsSet == nil {
		g.secretsSet = make(chan struct{})
	}
	select {
	case <-g.secretsSet:
	default:
		close(g.secretsSet)
	}
	return nil
}

// secretsOf returns the values of g's secrets, or nil and a channel closed
// once they are set; nil and nil when g names none.
func (s *Supervisor) secretsOf(g *group) (map[string]string, <-chan struct{}) {
	if len(g.spec.Secrets) == 0 {
		return nil, nil
	}
	if v := g.secrets.Load(); v != nil {
		return *v, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := g.secrets.Load(); v != nil {
		return *v, nil
	}
	if g.secretsSet == nil {
		g.secretsSet = make(chan struct{})
	}
	return nil, g.secretsSet
}

// Supervisor runs groups of instances. Create it with Open.
type Supervisor struct {
	opts      Options
	log       *slog.Logger
	agentID   string
	statePath string
	cg        cgroups

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	groups   map[string]*group
	ports    map[int]bool
	nextPort int
	closed   bool

	persistMu sync.Mutex
	logMu     sync.Mutex // the group.json files of DATA_DIR/logs (retain.go)
	subMu     sync.Mutex
	subs      map[chan struct{}]struct{}
}

func (o *Options) defaults() {
	if o.PortMin == 0 && o.PortMax == 0 {
		o.PortMin, o.PortMax = 20000, 29999
	}
	if o.Backoff == (Backoff{}) {
		o.Backoff = DefaultBackoff
	}
	if o.LogMaxBytes <= 0 {
		o.LogMaxBytes = DefaultLogMaxBytes
	}
	if o.LogFiles <= 0 {
		o.LogFiles = DefaultLogFiles
	}
	if o.CrashLoopThreshold <= 0 {
		o.CrashLoopThreshold = 3
	}
	if o.AdoptPoll <= 0 {
		o.AdoptPoll = 250 * time.Millisecond
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Open loads the state in opts.DataDir, re-adopts the instances still
// running (same pid and start time), restarts the others, stops processes
// of this agent that no longer belong to any group, and resumes unfinished
// deletions. A corrupt state file is a *StateError.
func Open(opts Options) (*Supervisor, error) {
	opts.defaults()
	if opts.PortMin < 1 || opts.PortMax > 65535 || opts.PortMin > opts.PortMax {
		return nil, fmt.Errorf("port range %d-%d: want 1 <= min <= max <= 65535", opts.PortMin, opts.PortMax)
	}
	if opts.DataDir == "" {
		return nil, errors.New("data dir is required")
	}
	abs, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	opts.DataDir = abs
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s cannot be created: %w", opts.DataDir, err)
	}
	probe, err := os.CreateTemp(opts.DataDir, ".write-test-*")
	if err != nil {
		return nil, fmt.Errorf("data dir %s is not writable: %w (choose another --data-dir or fix its permissions)", opts.DataDir, err)
	}
	probe.Close()
	os.Remove(probe.Name())

	statePath := filepath.Join(opts.DataDir, StateFileName)
	st, err := loadState(statePath)
	if err != nil {
		return nil, err
	}
	s := &Supervisor{opts: opts, log: opts.Logger, statePath: statePath, groups: map[string]*group{},
		ports: map[int]bool{}, nextPort: opts.PortMin, subs: map[chan struct{}]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if st == nil {
		st = &stateFile{Format: StateFormat, AgentID: randomHex(8)}
	}
	s.agentID = st.AgentID
	s.cg = cgroups{root: opts.CgroupRoot, agent: "runway-" + s.agentID}

	running := findAgentProcesses(s.agentID)
	type launch struct {
		in *instance
		p  *process
	}
	var launches []launch
	var deleting []*group
	known := map[string]bool{}
	for _, gs := range st.Groups {
		g := &group{spec: gs.Spec, state: gs.State, createdAt: gs.CreatedAt, limits: gs.Limits,
			nextIndex: gs.NextIndex, deleted: make(chan struct{})}
		if g.state != agentapi.GroupDeleting {
			g.state = agentapi.GroupActive
		}
		s.groups[g.spec.Name] = g
		for _, is := range gs.Instances {
			known[is.ID] = true
			in, err := s.newInstance(g, is.ID, is.Index, is.Port)
			if err != nil {
				s.shutdownInstances()
				return nil, err
			}
			in.restarts, in.startedAt, in.cgroups = is.Restarts, is.StartedAt, is.Cgroups
			s.ports[is.Port] = true
			g.instances = append(g.instances, in)
			var p *process
			switch {
			case is.Container != "":
				p = s.readopt(in, is)
			case is.PID > 0 && procfs.ProcessAlive(is.PID, is.StartTicks) && isGroupLeader(is.PID):
				p = in.adopt(is.PID, is.StartTicks, is.Healthy)
			case running[is.ID] > 0:
				// Started but not yet recorded when the previous agent died.
				pid := running[is.ID]
				if ticks, err := procfs.ProcessStartTicks(pid); err == nil {
					in.startedAt = time.Time{}
					p = in.adopt(pid, ticks, false)
				}
			default:
				if is.PID > 0 {
					s.log.Warn("instance process gone or pid reused: starting a new one", "instance", is.ID, "old_pid", is.PID)
					in.restarts++
					in.lastExit = fmt.Sprintf("process %d ended while no agent was running", is.PID)
				}
				in.pid = 0
			}
			launches = append(launches, launch{in, p})
		}
		if g.state == agentapi.GroupDeleting {
			deleting = append(deleting, g)
		}
	}
	if err := s.persist(); err != nil {
		s.shutdownInstances()
		return nil, fmt.Errorf("write state file %s: %w", statePath, err)
	}
	for _, g := range s.groups {
		s.syncLogMeta(g, false)
	}
	s.pruneLogs(time.Now())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case now := <-t.C:
				s.pruneLogs(now)
			}
		}
	}()
	// Processes of instances that no longer exist (a deleted group, or the
	// descendants of one) are stopped, all of them.
	for id, pids := range markedByInstance(s.agentID) {
		if known[id] {
			continue
		}
		p := &process{exited: make(chan struct{})}
		if pid := running[id]; pid > 0 {
			if ticks, err := procfs.ProcessStartTicks(pid); err == nil {
				p.pid, p.startTicks = pid, ticks
			}
		}
		s.log.Warn("stopping orphan processes of an instance of a deleted group", "instance", id, "pids", pids)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			go func() {
				for p.pid > 0 && procfs.ProcessAlive(p.pid, p.startTicks) {
					select {
					case <-s.ctx.Done():
						return
					case <-time.After(opts.AdoptPoll):
					}
				}
				close(p.exited)
			}()
			agentID := s.agentID
			trackDir := s.cg.trackDir(id)
			stopTree(p, agentapi.DefaultStopTimeout, func() []int {
				return append(instanceProcesses(agentID, id), cgroupProcs([]string{trackDir})...)
			})
			s.cg.remove([]string{trackDir})
		}()
	}
	s.removeOrphanContainers(known)
	for _, l := range launches {
		s.launch(l.in, l.p)
	}
	for _, g := range deleting {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.finishDelete(g, 0)
		}()
	}
	// Finish a scale interrupted by the previous agent's death.
	for _, gs := range st.Groups {
		if gs.State != agentapi.GroupDeleting && len(gs.Instances) != gs.Spec.Instances {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.log.Info("finishing an interrupted scale", "group", gs.Spec.Name, "instances", len(gs.Instances), "want", gs.Spec.Instances)
				if _, err := s.ScaleGroup(s.ctx, gs.Spec.Name, gs.Spec.Instances, 0); err != nil {
					s.log.Error("finish interrupted scale", "group", gs.Spec.Name, "err", err)
				}
			}()
		}
	}
	return s, nil
}

func isGroupLeader(pid int) bool {
	st, err := procfs.ReadStat(pid)
	return err == nil && st.PGID == pid
}

func (s *Supervisor) launch(in *instance, p *process) {
	in.launched.Store(true)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		in.run(p)
	}()
}

// AgentID identifies this agent's processes (RUNWAY_AGENT_ID); it is kept
// in the state file.
func (s *Supervisor) AgentID() string { return s.agentID }

// DataDir is the absolute data directory.
func (s *Supervisor) DataDir() string { return s.opts.DataDir }

func (s *Supervisor) allocPorts(n int) ([]int, error) {
	var out []int
	size := s.opts.PortMax - s.opts.PortMin + 1
	p := s.nextPort
	for tried := 0; tried < size && len(out) < n; tried++ {
		if p > s.opts.PortMax {
			p = s.opts.PortMin
		}
		cand := p
		p++
		if s.ports[cand] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cand)))
		if err != nil {
			continue
		}
		ln.Close()
		s.ports[cand] = true
		out = append(out, cand)
	}
	s.nextPort = p
	if len(out) < n {
		for _, q := range out {
			delete(s.ports, q)
		}
		return nil, fmt.Errorf("%w: %d free port(s) needed, none left in %d-%d (%d in use by instances); widen --port-range or stop groups",
			ErrPortsExhausted, n, s.opts.PortMin, s.opts.PortMax, len(s.ports))
	}
	return out, nil
}

// newID returns an instance id unused on the agent and by the kept logs of
// the group.
func (s *Supervisor) newID(group string) string {
	for {
		id := randomHex(4)
		if !s.hasInstance(id) && !s.retainedLog(group, id) {
			return id
		}
	}
}

func (s *Supervisor) hasInstance(id string) bool {
	for _, g := range s.groups {
		for _, in := range g.instances {
			if in.id == id {
				return true
			}
		}
	}
	return false
}

// addInstances creates n instances in g (s.mu held); all or none.
func (s *Supervisor) addInstances(g *group, n int) ([]*instance, error) {
	ports, err := s.allocPorts(n)
	if err != nil {
		return nil, err
	}
	var out []*instance
	for i := 0; i < n; i++ {
		in, err := s.newInstance(g, s.newID(g.spec.Name), g.nextIndex, ports[i])
		if err != nil {
			for _, in := range out {
				in.stopCancel()
				in.closeLogs()
				s.removeFiles(in)
			}
			for _, p := range ports {
				delete(s.ports, p)
			}
			return nil, err
		}
		g.nextIndex++
		out = append(out, in)
		g.instances = append(g.instances, in)
	}
	return out, nil
}

// CreateGroup creates a group and starts its instances. It is idempotent by
// name: the same spec returns the existing group (created false; the
// instance count is ignored, use ScaleGroup); another spec is a
// *ConflictError naming the first differing field. Invalid specs are
// *FieldError; nothing is created on error.
func (s *Supervisor) CreateGroup(spec agentapi.GroupSpec) (agentapi.GroupStatus, bool, error) {
	if err := NormalizeSpec(&spec); err != nil {
		return agentapi.GroupStatus{}, false, err
	}
	if spec.Image != "" && s.opts.Engine == nil {
		return agentapi.GroupStatus{}, false, fieldErr("image", "this agent runs no container engine: start it with --docker-host (or DOCKER_HOST) naming Docker's or podman's socket")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return agentapi.GroupStatus{}, false, errStopped
	}
	if g, ok := s.groups[spec.Name]; ok {
		s.mu.Unlock()
		if g.state == agentapi.GroupDeleting {
			return agentapi.GroupStatus{}, false, fmt.Errorf("group %q: %w; wait until it is gone", spec.Name, ErrDeleting)
		}
		if f := DiffField(g.spec, spec); f != "" {
			return agentapi.GroupStatus{}, false, &ConflictError{Group: spec.Name, Field: f}
		}
		st, err := s.Group(spec.Name)
		return st, false, err
	}
	g := &group{spec: spec, state: agentapi.GroupActive, createdAt: time.Now().UTC(), deleted: make(chan struct{})}
	g.limits = s.probeLimits(spec)
	ins, err := s.addInstances(g, spec.Instances)
	if err != nil {
		s.mu.Unlock()
		return agentapi.GroupStatus{}, false, err
	}
	s.groups[spec.Name] = g
	s.mu.Unlock()
	if err := s.persist(); err != nil {
		s.mu.Lock()
		delete(s.groups, spec.Name)
		for _, in := range ins {
			delete(s.ports, in.port)
		}
		s.mu.Unlock()
		for _, in := range ins {
			in.stopCancel()
			in.closeLogs()
			s.removeFiles(in)
		}
		return agentapi.GroupStatus{}, false, fmt.Errorf("write state file: %w", err)
	}
	s.syncLogMeta(g, false)
	s.log.Info("group created", "group", spec.Name, "instances", spec.Instances, "limits", g.limits)
	for _, in := range ins {
		s.launch(in, nil)
	}
	s.notify()
	st, err := s.Group(spec.Name)
	return st, true, err
}

func (s *Supervisor) probeLimits(spec agentapi.GroupSpec) string {
	if spec.Limits == (agentapi.Limits{}) {
		return "none requested"
	}
	dirs, desc, err := s.cg.create("probe-"+randomHex(4), spec.Limits)
	if err != nil {
		return "limits not enforced: " + err.Error()
	}
	s.cg.remove(dirs)
	return desc
}

func (s *Supervisor) limitsEnforced(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[name]
	return g != nil && strings.HasPrefix(g.limits, "enforced")
}

func (s *Supervisor) limitsFailed(name string, err error) {
	s.log.Warn("resource limits not enforced", "group", name, "err", err)
	s.mu.Lock()
	if g := s.groups[name]; g != nil {
		g.limits = "limits not enforced: " + err.Error()
	}
	s.mu.Unlock()
}

// ScaleGroup changes the number of instances of a group. Scaling down
// stops, in this order, instances that are not healthy, then the newest;
// they leave the routable snapshot and go through BeforeStop first, which
// drains them for at most drain (0: the default). It returns once the
// stopped instances are gone.
func (s *Supervisor) ScaleGroup(ctx context.Context, name string, n int, drain time.Duration) (agentapi.GroupStatus, error) {
	if n < 0 || n > MaxInstances {
		return agentapi.GroupStatus{}, &FieldError{Field: "instances", Msg: fmt.Sprintf("%d: want 0 to %d", n, MaxInstances)}
	}
	s.mu.Lock()
	g, ok := s.groups[name]
	s.mu.Unlock()
	if !ok {
		return agentapi.GroupStatus{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	g.opMu.Lock()
	defer g.opMu.Unlock()
	s.mu.Lock()
	if g.state == agentapi.GroupDeleting || s.closed {
		s.mu.Unlock()
		return agentapi.GroupStatus{}, fmt.Errorf("group %q: %w", name, ErrDeleting)
	}
	cur := len(g.instances)
	switch {
	case n > cur:
		ins, err := s.addInstances(g, n-cur)
		if err != nil {
			s.mu.Unlock()
			return agentapi.GroupStatus{}, err
		}
		g.spec.Instances = n
		s.mu.Unlock()
		if err := s.persist(); err != nil {
			s.log.Error("write state file", "err", err)
		}
		s.syncLogMeta(g, false)
		for _, in := range ins {
			s.launch(in, nil)
		}
	case n < cur:
		victims := pickVictims(g.instances, cur-n)
		g.spec.Instances = n
		s.mu.Unlock()
		// Write-ahead: an agent killed while stopping them finishes the
		// scale down when it starts again.
		s.persistLogged()
		s.stopAndRemove(ctx, g, victims, drain)
	default:
		s.mu.Unlock()
	}
	return s.Group(name)
}

// pickVictims chooses k instances to stop: not healthy first, then newest.
func pickVictims(ins []*instance, k int) []*instance {
	c := append([]*instance(nil), ins...)
	sort.SliceStable(c, func(i, j int) bool {
		hi, hj := c[i].routable(), c[j].routable()
		if hi != hj {
			return !hi
		}
		return c[i].index > c[j].index
	})
	return c[:k]
}

// stopAndRemove takes instances out of routing, calls BeforeStop, stops them
// and removes them from the group and the state.
func (s *Supervisor) stopAndRemove(ctx context.Context, g *group, victims []*instance, drain time.Duration) {
	if len(victims) == 0 {
		return
	}
	ids := make([]string, len(victims))
	for i, in := range victims {
		ids[i] = in.id
		in.mu.Lock()
		in.draining = true
		in.mu.Unlock()
	}
	s.notify()
	if s.opts.BeforeStop != nil {
		if err := s.opts.BeforeStop(ctx, g.spec.Name, ids, drain); err != nil {
			s.log.Warn("drain before stop failed; stopping anyway", "group", g.spec.Name, "instances", ids, "err", err)
		}
	}
	var wg sync.WaitGroup
	for _, in := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.stop()
		}()
	}
	wg.Wait()
	s.mu.Lock()
	keep := g.instances[:0:0]
	for _, in := range g.instances {
		if !contains(victims, in) {
			keep = append(keep, in)
		}
	}
	g.instances = keep
	for _, in := range victims {
		delete(s.ports, in.port)
	}
	s.mu.Unlock()
	for _, in := range victims {
		in.closeLogs()
		s.removePipes(in) // the logs stay (retain.go)
		close(in.removed)
	}
	if err := s.persist(); err != nil {
		s.log.Error("write state file", "err", err)
	}
	s.mu.Lock()
	deleting := g.state == agentapi.GroupDeleting
	s.mu.Unlock()
	if !deleting {
		s.syncLogMeta(g, false) // a deletion records all its instances at once
	}
	s.notify()
}

func contains(list []*instance, in *instance) bool {
	for _, x := range list {
		if x == in {
			return true
		}
	}
	return false
}

// DeleteGroup starts deleting a group (persisted first, so a restarted
// agent finishes it): its instances leave routing, go through BeforeStop,
// and are stopped; drain bounds the drain (0: the default; a deletion
// finished by a restarted agent uses the default, its proxy has nothing in
// flight). The returned channel is closed once the group is gone.
// Deleting a group that is already being deleted returns the same channel.
func (s *Supervisor) DeleteGroup(name string, drain time.Duration) (<-chan struct{}, error) {
	s.mu.Lock()
	g, ok := s.groups[name]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	if g.state == agentapi.GroupDeleting {
		s.mu.Unlock()
		return g.deleted, nil
	}
	if s.closed {
		s.mu.Unlock()
		return nil, errStopped
	}
	g.state = agentapi.GroupDeleting
	s.mu.Unlock()
	if err := s.persist(); err != nil {
		s.log.Error("write state file", "err", err)
	}
	s.notify()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.finishDelete(g, drain)
	}()
	return g.deleted, nil
}

func (s *Supervisor) finishDelete(g *group, drain time.Duration) {
	g.opMu.Lock()
	defer g.opMu.Unlock()
	s.mu.Lock()
	victims := append([]*instance(nil), g.instances...)
	s.mu.Unlock()
	s.stopAndRemove(s.ctx, g, victims, drain)
	if s.ctx.Err() != nil {
		return // detached: the next agent finishes the deletion
	}
	// The logs stay, readable by group and instance (retain.go).
	s.syncLogMeta(g, true)
	s.mu.Lock()
	delete(s.groups, g.spec.Name)
	s.mu.Unlock()
	s.pruneLogs(time.Now())
	if err := s.persist(); err != nil {
		s.log.Error("write state file", "err", err)
	}
	s.log.Info("group deleted", "group", g.spec.Name)
	s.notify()
	close(g.deleted)
}

// Group returns the state of one group.
func (s *Supervisor) Group(name string) (agentapi.GroupStatus, error) {
	s.mu.Lock()
	g, ok := s.groups[name]
	s.mu.Unlock()
	if !ok {
		return agentapi.GroupStatus{}, fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	return s.groupStatus(g), nil
}

func (s *Supervisor) groupStatus(g *group) agentapi.GroupStatus {
	s.mu.Lock()
	st := agentapi.GroupStatus{Name: g.spec.Name, Spec: g.spec, State: g.state, CreatedAt: g.createdAt, Limits: g.limits,
		Counts: map[string]int{}}
	st.Spec.Env = copyMap(g.spec.Env)
	st.Spec.Secrets = slices.Clone(g.spec.Secrets)
	st.SecretsMissing = len(g.spec.Secrets) > 0 && g.secrets.Load() == nil
	ins := append([]*instance(nil), g.instances...)
	s.mu.Unlock()
	st.Instances = make([]agentapi.InstanceStatus, 0, len(ins))
	for _, in := range ins {
		is := in.status()
		st.Instances = append(st.Instances, is)
		st.Counts[is.State]++
	}
	return st
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Groups returns every group, sorted by name.
func (s *Supervisor) Groups() []agentapi.GroupStatus {
	s.mu.Lock()
	gs := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		gs = append(gs, g)
	}
	s.mu.Unlock()
	sort.Slice(gs, func(i, j int) bool { return gs[i].spec.Name < gs[j].spec.Name })
	out := make([]agentapi.GroupStatus, 0, len(gs))
	for _, g := range gs {
		out = append(out, s.groupStatus(g))
	}
	return out
}

// HasLogs reports whether ReadLogs has logs of the instance: live, or kept
// after its removal.
func (s *Supervisor) HasLogs(group, id string) bool {
	if _, err := s.instance(group, id); err == nil {
		return true
	}
	return s.retainedLog(group, id)
}

// Instance returns the state of one instance of a group.
func (s *Supervisor) Instance(group, id string) (agentapi.InstanceStatus, error) {
	in, err := s.instance(group, id)
	if err != nil {
		return agentapi.InstanceStatus{}, err
	}
	return in.status(), nil
}

func (s *Supervisor) instance(group, id string) (*instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[group]
	if !ok {
		return nil, fmt.Errorf("group %q: %w", group, ErrNotFound)
	}
	for _, in := range g.instances {
		if in.id == id {
			return in, nil
		}
	}
	return nil, fmt.Errorf("instance %q of group %q: %w", id, group, ErrNotFound)
}

// ReadLogs emits the log lines of an instance that match q (see LogQuery).
// Following ends when ctx ends or when the instance is removed (after its
// last lines).
//
// The logs of a removed instance or a deleted group are read the same way
// while they are kept (see retain.go); following them ends after their
// last line.
func (s *Supervisor) ReadLogs(ctx context.Context, group, id string, q agentapi.LogQuery, emit func(agentapi.LogLine) error) error {
	in, err := s.instance(group, id)
	if errors.Is(err, ErrNotFound) && s.retainedLog(group, id) {
		q.Follow = false
		return readLog(ctx, s.logPath(group, id), s.opts.LogFiles, q, emit)
	}
	if err != nil {
		return err
	}
	if q.Follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()
		go func() {
			select {
			case <-in.removed:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return readLog(ctx, s.logPath(group, id), s.opts.LogFiles, q, emit)
}

// Snapshot returns the routable (healthy, not draining) instances of every
// active group: what the proxy may send traffic to.
func (s *Supervisor) Snapshot() []agentapi.GroupTargets {
	s.mu.Lock()
	gs := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		if g.state == agentapi.GroupActive {
			gs = append(gs, g)
		}
	}
	s.mu.Unlock()
	sort.Slice(gs, func(i, j int) bool { return gs[i].spec.Name < gs[j].spec.Name })
	out := make([]agentapi.GroupTargets, 0, len(gs))
	for _, g := range gs {
		s.mu.Lock()
		gt := agentapi.GroupTargets{Group: g.spec.Name, Service: g.spec.Service, Environment: g.spec.Environment,
			ReleaseID: g.spec.ReleaseID, Targets: []agentapi.Target{}}
		ins := append([]*instance(nil), g.instances...)
		s.mu.Unlock()
		for _, in := range ins {
			if in.routable() {
				gt.Targets = append(gt.Targets, agentapi.Target{InstanceID: in.id, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(in.port))})
			}
		}
		out = append(out, gt)
	}
	return out
}

// Subscribe returns a channel that receives a value (coalesced) whenever
// the routable set or the groups may have changed; call Snapshot then.
// The returned function unsubscribes.
func (s *Supervisor) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.subMu.Lock()
	s.subs[ch] = struct{}{}
	s.subMu.Unlock()
	return ch, func() {
		s.subMu.Lock()
		delete(s.subs, ch)
		s.subMu.Unlock()
	}
}

func (s *Supervisor) notify() {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Supervisor) persistLogged() {
	if err := s.persist(); err != nil {
		s.log.Error("write state file", "path", s.statePath, "err", err)
	}
}

func (s *Supervisor) persist() error {
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	st := stateFile{Format: StateFormat, AgentID: s.agentID, Groups: []groupState{}}
	s.mu.Lock()
	gs := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].spec.Name < gs[j].spec.Name })
	for _, g := range gs {
		gst := groupState{Spec: g.spec, State: g.state, CreatedAt: g.createdAt, Limits: g.limits,
			NextIndex: g.nextIndex, Instances: []instanceState{}}
		for _, in := range g.instances {
			gst.Instances = append(gst.Instances, in.persistent())
		}
		st.Groups = append(st.Groups, gst)
	}
	s.mu.Unlock()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(s.statePath, append(b, '\n'), fsutil.FileMode)
}

// Shutdown stops supervising. With stopInstances every instance is stopped
// gracefully (the groups stay in the state and start again with the next
// agent); without, instances keep running to be re-adopted by the next
// agent. It waits for the supervisor's goroutines until ctx ends.
func (s *Supervisor) Shutdown(ctx context.Context, stopInstances bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var all []*instance
	for _, g := range s.groups {
		all = append(all, g.instances...)
	}
	s.mu.Unlock()
	if stopInstances {
		var wg sync.WaitGroup
		for _, in := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in.stop()
			}()
		}
		wg.Wait()
	}
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.shutdownInstances()
	s.cg.removeAgentDirs()
	if perr := s.persist(); perr != nil && err == nil {
		err = perr
	}
	return err
}

func (s *Supervisor) shutdownInstances() {
	s.cancel()
	s.mu.Lock()
	var all []*instance
	for _, g := range s.groups {
		all = append(all, g.instances...)
	}
	s.mu.Unlock()
	for _, in := range all {
		in.closeLogs()
	}
}
