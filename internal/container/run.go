package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Spec is one container to run.
type Spec struct {
	// Name is the container's name, chosen by the caller and unique on the
	// engine, so that running the same Spec twice finds the first container.
	Name  string
	Image string
	// Cmd replaces the image's command when set (exec form).
	Cmd []string
	// Env is the container's whole environment, "KEY=value".
	Env    []string
	Labels map[string]string
	// Port is the container port published on 127.0.0.1; 0 publishes
	// nothing.
	Port int
	// HostPort is the 127.0.0.1 port Port is published on; 0 lets the
	// engine pick one (read it back from Container.HostPort).
	HostPort int
	// CPUs and MemoryBytes limit the container; 0 means no limit.
	CPUs        float64
	MemoryBytes int64
	// StopTimeout is the grace between SIGTERM and SIGKILL when stopped.
	StopTimeout time.Duration
	// Init runs a minimal init as PID 1 (signals forwarded, zombies reaped).
	Init bool
}

// Container is what Runway reads of a container.
type Container struct {
	ID     string
	Name   string
	Image  string
	Labels map[string]string
	// State is the engine's: created, running, exited, dead, ...
	State    string
	Running  bool
	ExitCode int
	// HostPort is the 127.0.0.1 port published for Spec.Port, 0 if none.
	HostPort   int
	StartedAt  time.Time
	FinishedAt time.Time
	OOMKilled  bool
}

// Run creates and starts s, and returns the container as inspected. A
// container of the same name that exists already is returned as it is
// (started if it was only created), and an image pinned by digest that the
// engine lacks is pulled first: a repeated call, after a crash of the
// caller, never makes a second container.
func (e *Engine) Run(ctx context.Context, s Spec) (Container, error) {
	c, err := e.Inspect(ctx, s.Name)
	if errors.Is(err, ErrNotFound) {
		err = e.create(ctx, s)
		if errors.Is(err, ErrNotFound) && strings.Contains(s.Image, "@sha256:") {
			// A pinned digest not (or no longer) on this engine.
			if err = e.Pull(ctx, s.Image); err == nil {
				err = e.create(ctx, s)
			}
		}
		if err == nil || cerrdefs.IsConflict(err) {
			c, err = e.Inspect(ctx, s.Name)
		}
	}
	if err != nil {
		return Container{}, err
	}
	if c.State == string(container.StateCreated) {
		if _, err := e.api.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			return Container{}, fmt.Errorf("start container %s: %w", s.Name, err)
		}
		return e.Inspect(ctx, c.ID)
	}
	return c, nil
}

func (e *Engine) create(ctx context.Context, s Spec) error {
	cfg := &container.Config{
		Image:  s.Image,
		Cmd:    s.Cmd,
		Env:    s.Env,
		Labels: s.Labels,
	}
	if s.StopTimeout > 0 {
		secs := int((s.StopTimeout + time.Second - 1) / time.Second)
		cfg.StopTimeout = &secs
	}
	init := s.Init
	hc := &container.HostConfig{Init: &init}
	hc.Resources.NanoCPUs = int64(s.CPUs * 1e9)
	hc.Resources.Memory = s.MemoryBytes
	if s.Port > 0 {
		p, err := network.ParsePort(strconv.Itoa(s.Port) + "/tcp")
		if err != nil {
			return fmt.Errorf("container %s: port %d: %w", s.Name, s.Port, err)
		}
		cfg.ExposedPorts = network.PortSet{p: {}}
		b := network.PortBinding{HostIP: netip.MustParseAddr("127.0.0.1")}
		if s.HostPort > 0 {
			b.HostPort = strconv.Itoa(s.HostPort)
		}
		hc.PortBindings = network.PortMap{p: {b}}
	}
	_, err := e.api.ContainerCreate(ctx, client.ContainerCreateOptions{Name: s.Name, Config: cfg, HostConfig: hc})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("create container %s: image %s: %w", s.Name, s.Image, ErrNotFound)
		}
		if cerrdefs.IsConflict(err) {
			return err
		}
		return fmt.Errorf("create container %s: %w", s.Name, err)
	}
	return nil
}

// Inspect returns the container named or identified by ref, ErrNotFound
// when there is none.
func (e *Engine) Inspect(ctx context.Context, ref string) (Container, error) {
	res, err := e.api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Container{}, fmt.Errorf("container %s: %w", ref, ErrNotFound)
		}
		return Container{}, fmt.Errorf("inspect container %s: %w", ref, err)
	}
	r := res.Container
	c := Container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/"), Image: r.Image}
	if r.Config != nil {
		c.Labels = r.Config.Labels
		c.Image = r.Config.Image
	}
	if st := r.State; st != nil {
		c.State, c.Running, c.ExitCode, c.OOMKilled = string(st.Status), st.Running, st.ExitCode, st.OOMKilled
		c.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
		c.FinishedAt, _ = time.Parse(time.RFC3339Nano, st.FinishedAt)
	}
	if r.NetworkSettings != nil {
		for _, bs := range r.NetworkSettings.Ports {
			for _, b := range bs {
				if n, err := strconv.Atoi(b.HostPort); err == nil && n > 0 {
					c.HostPort = n
				}
			}
		}
	}
	return c, nil
}

// List returns the containers, in any state, that carry every label of
// labels.
func (e *Engine) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	f := client.Filters{}
	for k, v := range labels {
		f = f.Add("label", k+"="+v)
	}
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var out []Container
	for _, s := range res.Items {
		// The summary lacks exit codes and times: inspect each one.
		c, err := e.Inspect(ctx, s.ID)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Stop sends SIGTERM and, after timeout, SIGKILL; a container that is not
// running, or gone, is not an error.
func (e *Engine) Stop(ctx context.Context, ref string, timeout time.Duration) error {
	secs := int((timeout + time.Second - 1) / time.Second)
	_, err := e.api.ContainerStop(ctx, ref, client.ContainerStopOptions{Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsNotModified(err) {
		return fmt.Errorf("stop container %s: %w", ref, err)
	}
	return nil
}

// Remove removes the container (killing it if it still runs); a container
// that is gone is not an error.
func (e *Engine) Remove(ctx context.Context, ref string) error {
	_, err := e.api.ContainerRemove(ctx, ref, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", ref, err)
	}
	return nil
}

// Usage is a container's resource use at one time.
type Usage struct {
	Time time.Time
	// CPU is the CPU time used since the container started.
	CPU time.Duration
	// MemoryBytes is the memory in use.
	MemoryBytes int64
}

// Usage samples the container's CPU time and memory (one sample, no
// stream); two samples give a CPU rate.
func (e *Engine) Usage(ctx context.Context, ref string) (Usage, error) {
	res, err := e.api.ContainerStats(ctx, ref, client.ContainerStatsOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Usage{}, fmt.Errorf("stats of %s: %w", ref, ErrNotFound)
		}
		return Usage{}, fmt.Errorf("stats of %s: %w", ref, err)
	}
	defer res.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return Usage{}, fmt.Errorf("stats of %s: %w", ref, err)
	}
	t := st.Read
	if t.IsZero() {
		t = time.Now()
	}
	return Usage{Time: t, CPU: time.Duration(st.CPUStats.CPUUsage.TotalUsage), MemoryBytes: int64(st.MemoryStats.Usage)}, nil
}

// WaitStopped blocks until the container is not running (at once if it
// is not) and returns it as inspected: state, exit code, finish time.
func (e *Engine) WaitStopped(ctx context.Context, ref string) (Container, error) {
	w := e.api.ContainerWait(ctx, ref, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case <-w.Result:
	case err := <-w.Error:
		if cerrdefs.IsNotFound(err) {
			return Container{}, fmt.Errorf("container %s: %w", ref, ErrNotFound)
		}
		if ctx.Err() != nil {
			return Container{}, ctx.Err()
		}
		return Container{}, fmt.Errorf("wait for %s: %w", ref, err)
	}
	// The wait's own status code is not used: inspect is the one answer
	// both engines give the same way, also for a container that ended
	// before the wait.
	c, err := e.Inspect(ctx, ref)
	if err != nil {
		return Container{}, err
	}
	if c.Running {
		return Container{}, fmt.Errorf("wait for %s: still running after the engine's wait returned", ref)
	}
	return c, nil
}

// LogLine is one line a container wrote.
type LogLine struct {
	Time   time.Time
	Stream string // "stdout" or "stderr"
	Text   string
}

// LogOptions choose which lines Logs reads.
type LogOptions struct {
	// Since keeps lines written at or after it (zero: from the start).
	Since time.Time
	// Tail keeps the last Tail lines (0: all).
	Tail int
	// Follow keeps reading until ctx ends or the container stops.
	Follow bool
}

// Logs calls emit for each line of the container's output, in order per
// stream; it stops at the first error emit returns.
func (e *Engine) Logs(ctx context.Context, ref string, o LogOptions, emit func(LogLine) error) error {
	opts := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: o.Follow}
	if !o.Since.IsZero() {
		opts.Since = strconv.FormatFloat(float64(o.Since.UnixNano())/1e9, 'f', 9, 64)
	}
	if o.Tail > 0 {
		opts.Tail = strconv.Itoa(o.Tail)
	}
	rc, err := e.api.ContainerLogs(ctx, ref, opts)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("logs of %s: %w", ref, ErrNotFound)
		}
		return fmt.Errorf("logs of %s: %w", ref, err)
	}
	defer rc.Close()
	// Demultiplex into two line readers; emit is called from one goroutine
	// at a time.
	var mu sync.Mutex
	var emitErr error
	lines := func(stream string, r io.Reader, done chan<- struct{}) {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := parseLogLine(stream, sc.Text())
			mu.Lock()
			if emitErr == nil {
				emitErr = emit(l)
			}
			mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r)
	}
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	outDone, errDone := make(chan struct{}), make(chan struct{})
	go lines("stdout", outR, outDone)
	go lines("stderr", errR, errDone)
	_, err = stdcopy.StdCopy(outW, errW, rc)
	outW.Close()
	errW.Close()
	<-outDone
	<-errDone
	if emitErr != nil {
		return emitErr
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of %s: %w", ref, err)
	}
	return nil
}

func parseLogLine(stream, s string) LogLine {
	l := LogLine{Stream: stream, Text: s}
	if ts, rest, ok := strings.Cut(s, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			l.Time, l.Text = t, rest
		}
	}
	return l
}

// Starts counts the times a container named name started between since and
// now, from the engine's events (containers removed since included).
func (e *Engine) Starts(ctx context.Context, name string, since time.Time) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := client.Filters{}.Add("type", "container").Add("event", "start").Add("container", name)
	res := e.api.Events(ctx, client.EventsListOptions{
		Since:   strconv.FormatInt(since.Unix(), 10),
		Until:   strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10),
		Filters: f,
	})
	n := 0
	for {
		select {
		case m, ok := <-res.Messages:
			if !ok {
				return n, nil
			}
			if string(m.Action) == "start" && m.Actor.Attributes["name"] == name {
				n++
			}
		case err := <-res.Err:
			if err == nil || errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, fmt.Errorf("events of %s: %w", name, err)
		}
	}
}
