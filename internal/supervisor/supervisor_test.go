package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/procfs"
)

func instanceByIndex(t *testing.T, s *Supervisor, group string, idx int) agentapi.InstanceStatus {
	t.Helper()
	g, err := s.Group(group)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range g.Instances {
		if in.Index == idx {
			return in
		}
	}
	t.Fatalf("no instance with index %d in %s", idx, group)
	return agentapi.InstanceStatus{}
}

func allHealthy(s *Supervisor, group string, n int) bool {
	g, err := s.Group(group)
	return err == nil && len(g.Instances) == n && g.Counts[agentapi.StateHealthy] == n
}

func TestStartHealthyInstances(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	sub, unsub := s.Subscribe()
	defer unsub()
	st, created, err := s.CreateGroup(helloSpec("web-r1", mark, 3))
	if err != nil || !created {
		t.Fatalf("CreateGroup: created=%v err=%v", created, err)
	}
	if len(st.Instances) != 3 {
		t.Fatalf("instances = %d, want 3", len(st.Instances))
	}
	waitFor(t, 30*time.Second, "3 healthy instances", func() bool { return allHealthy(s, "web-r1", 3) })
	g, _ := s.Group("web-r1")
	ports, pids, ids := map[int]bool{}, map[int]bool{}, map[string]bool{}
	for _, in := range g.Instances {
		if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(in.ID) {
			t.Errorf("instance id %q: want 8 hex characters", in.ID)
		}
		ports[in.Port], pids[in.PID], ids[in.ID] = true, true, true
		if in.Port < s.opts.PortMin || in.Port > s.opts.PortMax {
			t.Errorf("port %d outside range", in.Port)
		}
		// Templates and RUNWAY_* variables reached the process.
		resp, err := http.Get("http://" + in.Addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "hello web-staging from v1.2.3 (" + in.ID + ")\n"
		if string(body) != want {
			t.Errorf("GET / = %q, want %q", body, want)
		}
		// Own process group.
		ps, _ := procfs.ReadStat(in.PID)
		if ps.PGID != in.PID {
			t.Errorf("instance %s: pgid %d, want its own group %d", in.ID, ps.PGID, in.PID)
		}
		env := procEnv(in.PID)
		for k, v := range map[string]string{"PORT": strconv.Itoa(in.Port), "RUNWAY_SERVICE": "web", "RUNWAY_ENVIRONMENT": "staging",
			"RUNWAY_RELEASE": "r1", "RUNWAY_VERSION": "1.2.3", "RUNWAY_INSTANCE": in.ID} {
			if env[k] != v {
				t.Errorf("instance %s: %s=%q, want %q", in.ID, k, env[k], v)
			}
		}
	}
	if len(ports) != 3 || len(pids) != 3 || len(ids) != 3 {
		t.Errorf("ports/pids/ids not distinct: %v %v %v", ports, pids, ids)
	}
	select {
	case <-sub:
	default:
		t.Error("no change was published")
	}
	snap := s.Snapshot()
	if len(snap) != 1 || len(snap[0].Targets) != 3 || snap[0].Service != "web" {
		t.Errorf("Snapshot = %+v, want one group with 3 targets", snap)
	}
	// CPU and memory come from /proc.
	waitFor(t, 30*time.Second, "RSS sampled", func() bool {
		in := instanceByIndex(t, s, "web-r1", 0)
		return in.RSSBytes > 0
	})
	// The state file lists them.
	b, err := os.ReadFile(filepath.Join(s.DataDir(), StateFileName))
	if err != nil {
		t.Fatal(err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil || len(sf.Groups) != 1 || len(sf.Groups[0].Instances) != 3 {
		t.Fatalf("state file: %v %s", err, b)
	}
	for _, in := range sf.Groups[0].Instances {
		if !pids[in.PID] || in.StartTicks == 0 {
			t.Errorf("state instance %+v: pid/start time not recorded", in)
		}
	}
}

func TestHealthFailingThenRecovering(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	sick := filepath.Join(t.TempDir(), "sick")
	spec := misbehaveSpec("mb", mark, 1, "--health-file", sick)
	spec.Health.StartPeriod = 0
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "healthy", func() bool { return allHealthy(s, "mb", 1) })
	first := instanceByIndex(t, s, "mb", 0)
	if err := os.WriteFile(sick, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "unhealthy instance replaced", func() bool {
		in := instanceByIndex(t, s, "mb", 0)
		return in.Restarts >= 1 && strings.HasPrefix(in.LastExit, "unhealthy")
	})
	if n := len(s.Snapshot()[0].Targets); n != 0 {
		t.Errorf("unhealthy instance is routable: %d targets", n)
	}
	if procAlive(first.PID) {
		t.Errorf("unhealthy process %d still running after replacement", first.PID)
	}
	os.Remove(sick)
	waitFor(t, 30*time.Second, "healthy again", func() bool { return allHealthy(s, "mb", 1) })
	if n := len(s.Snapshot()[0].Targets); n != 1 {
		t.Errorf("recovered instance not routable: %d targets", n)
	}
}

func TestCrashRestartsWithBackoff(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	spec := misbehaveSpec("crash", mark, 1, "--crash-after", "50ms")
	spec.Health = agentapi.HealthCheck{Type: agentapi.HealthNone}
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "5 restarts", func() bool { return instanceByIndex(t, s, "crash", 0).Restarts >= 5 })
	in := instanceByIndex(t, s, "crash", 0)
	if !in.CrashLoop || in.ConsecutiveFailures < 3 {
		t.Errorf("crash loop not visible: %+v", in)
	}
	if !strings.Contains(in.LastExit, "exit status 3") {
		t.Errorf("last exit %q, want exit status 3", in.LastExit)
	}
	// Start times from the log: the gaps grow with the backoff (100, 200,
	// 400, 400 ms after a 50 ms run).
	var starts []time.Time
	err := s.ReadLogs(context.Background(), "crash", in.ID, agentapi.LogQuery{Filter: "listening"}, func(l agentapi.LogLine) error {
		starts = append(starts, l.Time)
		return nil
	})
	if err != nil || len(starts) < 5 {
		t.Fatalf("starts in log: %d, err %v", len(starts), err)
	}
	want := []time.Duration{100, 200, 400, 400}
	for i, d := range want {
		gap := starts[i+1].Sub(starts[i])
		if gap < d*time.Millisecond {
			t.Errorf("restart %d came %s after the previous start, want at least %dms of backoff", i+1, gap, d)
		}
	}
}

func TestStopTimeoutKillsProcessIgnoringSIGTERM(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	spec := misbehaveSpec("stubborn", mark, 1, "--ignore-term")
	spec.StopTimeout = agentapi.Duration(700 * time.Millisecond)
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "healthy", func() bool { return allHealthy(s, "stubborn", 1) })
	pid := instanceByIndex(t, s, "stubborn", 0).PID
	start := time.Now()
	done, err := s.DeleteGroup("stubborn", 0)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if el := time.Since(start); el < 700*time.Millisecond {
		t.Errorf("stopped after %s, before stop_timeout: SIGTERM must have been ignored", el)
	}
	if procAlive(pid) {
		t.Errorf("process %d still alive after delete", pid)
	}
	if _, err := s.Group("stubborn"); !errors.Is(err, ErrNotFound) {
		t.Errorf("group still present: %v", err)
	}
}

func TestForkedChildrenDieWithInstance(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	spec := misbehaveSpec("forker", mark, 1, "--fork", "3")
	spec.StopTimeout = agentapi.Duration(500 * time.Millisecond)
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "healthy", func() bool { return allHealthy(s, "forker", 1) })
	in := instanceByIndex(t, s, "forker", 0)
	var children []int
	waitFor(t, 30*time.Second, "3 children logged", func() bool {
		children = children[:0]
		s.ReadLogs(context.Background(), "forker", in.ID, agentapi.LogQuery{Filter: "child pid"}, func(l agentapi.LogLine) error {
			pid, _ := strconv.Atoi(strings.TrimPrefix(l.Text, "child pid "))
			children = append(children, pid)
			return nil
		})
		return len(children) == 3
	})
	for _, c := range children {
		if !procAlive(c) {
			t.Fatalf("child %d not running", c)
		}
	}
	done, _ := s.DeleteGroup("forker", 0)
	<-done
	for _, pid := range append(children, in.PID) {
		if procAlive(pid) {
			t.Errorf("process %d survived the stop of its instance", pid)
		}
	}
}

func TestBootDelayLongerThanStartPeriod(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	slow := helloSpec("slow", mark, 1)
	slow.Env["BOOT_DELAY"] = "1500ms"
	slow.Health.StartPeriod = agentapi.Duration(300 * time.Millisecond)
	patient := helloSpec("patient", mark, 1)
	patient.Env["BOOT_DELAY"] = "1500ms"
	patient.Health.StartPeriod = agentapi.Duration(5 * time.Second)
	for _, sp := range []agentapi.GroupSpec{slow, patient} {
		if _, _, err := s.CreateGroup(sp); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "slow instance replaced as unhealthy", func() bool {
		return instanceByIndex(t, s, "slow", 0).Restarts >= 1
	})
	waitFor(t, 30*time.Second, "patient instance healthy", func() bool { return allHealthy(s, "patient", 1) })
	if in := instanceByIndex(t, s, "patient", 0); in.Restarts != 0 {
		t.Errorf("patient instance restarted %d times; the start period should have covered the boot delay", in.Restarts)
	}
	if in := instanceByIndex(t, s, "slow", 0); in.State == agentapi.StateHealthy {
		t.Errorf("slow instance healthy: %+v", in)
	}
}

func TestReadoptAfterRestart(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	s1, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s1.CreateGroup(helloSpec("web", mark, 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "healthy", func() bool { return allHealthy(s1, "web", 2) })
	before := s1.Groups()[0].Instances
	if err := s1.Shutdown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	for _, in := range before {
		if !procAlive(in.PID) {
			t.Fatalf("instance %s stopped with the supervisor", in.ID)
		}
	}
	s2 := openSup(t, opts)
	// Last known health: both are routable as soon as Open returns, before
	// any check of the new supervisor (an agent restart is no outage).
	if snap := s2.Snapshot(); len(snap) != 1 || snap[0].Group != "web" || len(snap[0].Targets) != 2 {
		t.Errorf("targets right after Open: %+v, want the 2 adopted instances of web", snap)
	}
	waitFor(t, 30*time.Second, "adopted instances healthy", func() bool { return allHealthy(s2, "web", 2) })
	after := s2.Groups()[0].Instances
	for i := range before {
		if after[i].ID != before[i].ID || after[i].PID != before[i].PID || !after[i].Adopted || after[i].Restarts != 0 {
			t.Errorf("instance %d: before %+v, after %+v: want the same process adopted", i, before[i], after[i])
		}
	}
	// Adopted processes are still watched: kill one, it is replaced.
	syscall.Kill(after[0].PID, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "killed adopted instance replaced", func() bool {
		in := instanceByIndex(t, s2, "web", after[0].Index)
		return in.State == agentapi.StateHealthy && in.PID != after[0].PID && in.Restarts == 1
	})
}

func TestRecycledPidNotAdopted(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	s1, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s1.CreateGroup(helloSpec("web", mark, 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "healthy", func() bool { return allHealthy(s1, "web", 1) })
	old := s1.Groups()[0].Instances[0]
	s1.Shutdown(context.Background(), false)
	syscall.Kill(-old.PID, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "old instance gone", func() bool { return !procAlive(old.PID) })

	// Another process now holds a pid the state file claims for the
	// instance (a recycled pid): same pid, other start time.
	other := exec.Command("sleep", "60")
	other.Env = append(os.Environ(), "TEST_MARK="+mark)
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		other.Process.Kill()
		other.Wait()
	}()
	ticks, err := procfs.ProcessStartTicks(other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(opts.DataDir, StateFileName)
	var sf stateFile
	b, _ := os.ReadFile(path)
	json.Unmarshal(b, &sf)
	sf.Groups[0].Instances[0].PID = other.Process.Pid
	sf.Groups[0].Instances[0].StartTicks = ticks + 1
	b, _ = json.Marshal(sf)
	os.WriteFile(path, b, 0o600)

	s2 := openSup(t, opts)
	waitFor(t, 30*time.Second, "a new instance process", func() bool { return allHealthy(s2, "web", 1) })
	in := s2.Groups()[0].Instances[0]
	if in.PID == other.Process.Pid || in.Adopted {
		t.Errorf("recycled pid %d adopted: %+v", other.Process.Pid, in)
	}
	if !procAlive(other.Process.Pid) {
		t.Errorf("the unrelated process holding the recycled pid was killed")
	}
	if in.Restarts != 1 || !strings.Contains(in.LastExit, "while no agent was running") {
		t.Errorf("replacement not reported: restarts %d, last exit %q", in.Restarts, in.LastExit)
	}
}

func TestScaleDownStopsTheRightInstances(t *testing.T) {
	mark := testMark(t)
	var mu sync.Mutex
	var drained []string
	var routableAtDrain []string
	opts := testOptions(t)
	var s *Supervisor
	opts.BeforeStop = func(ctx context.Context, group string, ids []string, _ time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		drained = append(drained, ids...)
		for _, g := range s.Snapshot() {
			for _, tg := range g.Targets {
				routableAtDrain = append(routableAtDrain, tg.InstanceID)
			}
		}
		return nil
	}
	s = openSup(t, opts)
	dir := t.TempDir()
	spec := misbehaveSpec("web", mark, 4, "--health-file", filepath.Join(dir, "{{INSTANCE_ID}}"))
	spec.Health.StartPeriod = 0
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "4 healthy", func() bool { return allHealthy(s, "web", 4) })
	sick := instanceByIndex(t, s, "web", 1)
	os.WriteFile(filepath.Join(dir, sick.ID), nil, 0o644)
	waitFor(t, 30*time.Second, "instance 1 not healthy", func() bool {
		return instanceByIndex(t, s, "web", 1).State != agentapi.StateHealthy
	})
	keep := []agentapi.InstanceStatus{instanceByIndex(t, s, "web", 0), instanceByIndex(t, s, "web", 2)}
	newest := instanceByIndex(t, s, "web", 3)
	st, err := s.ScaleGroup(context.Background(), "web", 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, in := range st.Instances {
		left = append(left, in.ID)
	}
	slices.Sort(left)
	want := []string{keep[0].ID, keep[1].ID}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("instances left %v, want %v (indexes 0 and 2)", left, want)
	}
	for _, in := range keep {
		if now := instanceByIndex(t, s, "web", in.Index); now.PID != in.PID || !procAlive(in.PID) {
			t.Errorf("kept instance %s was disturbed: pid %d -> %d", in.ID, in.PID, now.PID)
		}
	}
	if procAlive(newest.PID) {
		t.Errorf("stopped instance %s (pid %d) still running", newest.ID, newest.PID)
	}
	mu.Lock()
	slices.Sort(drained)
	wantDrained := []string{sick.ID, newest.ID}
	slices.Sort(wantDrained)
	if !slices.Equal(drained, wantDrained) {
		t.Errorf("drained %v, want %v", drained, wantDrained)
	}
	for _, id := range routableAtDrain {
		if id == newest.ID {
			t.Errorf("instance %s was still routable while being drained", id)
		}
	}
	mu.Unlock()
	// Scale up again: new indexes, new ports.
	st, err = s.ScaleGroup(context.Background(), "web", 3, 0)
	if err != nil || len(st.Instances) != 3 {
		t.Fatalf("scale up: %v %d", err, len(st.Instances))
	}
	if st.Instances[2].Index != 4 {
		t.Errorf("new instance index %d, want 4", st.Instances[2].Index)
	}
}

func TestLogRotationAndRead(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	opts.LogMaxBytes = 16 << 10
	opts.LogFiles = 3
	s := openSup(t, opts)
	if _, _, err := s.CreateGroup(misbehaveSpec("spam", mark, 1, "--spam", "3000")); err != nil {
		t.Fatal(err)
	}
	in := instanceByIndex(t, s, "spam", 0)
	path := s.logPath("spam", in.ID)
	waitFor(t, 30*time.Second, "last spam lines logged", func() bool {
		found := 0
		s.ReadLogs(context.Background(), "spam", in.ID, agentapi.LogQuery{}, func(l agentapi.LogLine) error {
			if strings.HasPrefix(l.Text, "spam line 002999") {
				found++
			}
			return nil
		})
		return found == 1
	})
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("log file %s: %v", p, err)
		}
		if st.Size() > opts.LogMaxBytes {
			t.Errorf("%s is %d bytes, over the %d cap", p, st.Size(), opts.LogMaxBytes)
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Errorf("%s.3 exists: only 3 files are kept", path)
	}
	var lines []agentapi.LogLine
	s.ReadLogs(context.Background(), "spam", in.ID, agentapi.LogQuery{}, func(l agentapi.LogLine) error {
		lines = append(lines, l)
		return nil
	})
	if len(lines) < 100 {
		t.Fatalf("read %d lines", len(lines))
	}
	for i := 1; i < len(lines); i++ {
		if lines[i].Time.Before(lines[i-1].Time) {
			t.Fatalf("lines out of order at %d", i)
		}
	}
	// Stream and substring filters (stdout and stderr are separate pipes,
	// so only lines of one stream keep their order).
	if _, _, err := s.CreateGroup(misbehaveSpec("few", mark, 1, "--spam", "25")); err != nil {
		t.Fatal(err)
	}
	few := instanceByIndex(t, s, "few", 0)
	var errs []string
	waitFor(t, 30*time.Second, "3 stderr lines", func() bool {
		errs = errs[:0]
		s.ReadLogs(context.Background(), "few", few.ID, agentapi.LogQuery{Stream: "stderr", Filter: "spam"}, func(l agentapi.LogLine) error {
			errs = append(errs, l.Text)
			return nil
		})
		return len(errs) >= 3
	})
	if !slices.Equal(errs, []string{"spam error 000000", "spam error 000010", "spam error 000020"}) {
		t.Errorf("stderr lines: %q", errs)
	}
	var recent int
	s.ReadLogs(context.Background(), "spam", in.ID, agentapi.LogQuery{Since: time.Now().Add(time.Hour)}, func(agentapi.LogLine) error {
		recent++
		return nil
	})
	if recent != 0 {
		t.Errorf("since in the future returned %d lines", recent)
	}
}

func TestLogFollow(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	spec := misbehaveSpec("crashy", mark, 1, "--crash-after", "100ms")
	spec.Health = agentapi.HealthCheck{Type: agentapi.HealthNone}
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	in := instanceByIndex(t, s, "crashy", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	got := 0
	err := s.ReadLogs(ctx, "crashy", in.ID, agentapi.LogQuery{Filter: "listening", Tail: 1, Follow: true}, func(agentapi.LogLine) error {
		got++
		if got == 3 {
			cancel()
		}
		return nil
	})
	if err != nil || got < 3 {
		t.Fatalf("follow: got %d lines, err %v", got, err)
	}
	// Following ends when the instance is removed.
	ended := make(chan error, 1)
	go func() {
		ended <- s.ReadLogs(context.Background(), "crashy", in.ID, agentapi.LogQuery{Follow: true}, func(agentapi.LogLine) error { return nil })
	}()
	done, _ := s.DeleteGroup("crashy", 0)
	<-done
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("follow ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("follow did not end when the instance was removed")
	}
}

func TestBadInput(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	opts.PortMax = opts.PortMin + 1
	s := openSup(t, opts)
	notExec := filepath.Join(t.TempDir(), "script")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	cases := []struct {
		name  string
		edit  func(*agentapi.GroupSpec)
		field string
		msg   string
	}{
		{"unknown path", func(g *agentapi.GroupSpec) { g.Command = []string{"./nope"} }, "command[0]", "does not exist"},
		{"not in PATH", func(g *agentapi.GroupSpec) { g.Command = []string{"no-such-program-xyz"} }, "command[0]", "not found in PATH"},
		{"not executable", func(g *agentapi.GroupSpec) { g.Command = []string{notExec} }, "command[0]", "not executable"},
		{"bad template", func(g *agentapi.GroupSpec) { g.Env["X"] = "{{NOPE}}" }, "env.X", "is not a template value"},
		{"reserved env", func(g *agentapi.GroupSpec) { g.Env["PORT"] = "1" }, "env.PORT", "set by the agent"},
		{"bad health", func(g *agentapi.GroupSpec) { g.Health.Type = "grpc" }, "health.type", "want http"},
		{"bad name", func(g *agentapi.GroupSpec) { g.Name = "Bad Name" }, "name", "not a valid group name"},
		{"no service", func(g *agentapi.GroupSpec) { g.Service = "" }, "service", "required"},
		{"work dir", func(g *agentapi.GroupSpec) { g.WorkDir = "/nonexistent" }, "work_dir", "not a directory"},
		{"reserved secret", func(g *agentapi.GroupSpec) { g.Secrets = []string{"RUNWAY_X"} }, "secrets[0]", "cannot hold a secret"},
		{"secret also in env", func(g *agentapi.GroupSpec) { g.Secrets = []string{"GREETING"} }, "secrets[0]", "also in env"},
		{"secret twice", func(g *agentapi.GroupSpec) { g.Secrets = []string{"A", "A"} }, "secrets[1]", "listed twice"},
	}
	for _, c := range cases {
		sp := helloSpec("bad", mark, 1)
		c.edit(&sp)
		_, _, err := s.CreateGroup(sp)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("%s: err %v, want field %s with %q", c.name, err, c.field, c.msg)
		}
	}
	// Port range exhausted: nothing half-created.
	if _, _, err := s.CreateGroup(helloSpec("big", mark, 3)); !errors.Is(err, ErrPortsExhausted) || !strings.Contains(err.Error(), "--port-range") {
		t.Errorf("3 instances in 2 ports: err %v", err)
	}
	if len(s.Groups()) != 0 {
		t.Errorf("groups after failures: %+v", s.Groups())
	}
	// Idempotent create; other spec is a conflict naming the field.
	if _, created, err := s.CreateGroup(helloSpec("web", mark, 1)); err != nil || !created {
		t.Fatal(err)
	}
	if st, created, err := s.CreateGroup(helloSpec("web", mark, 1)); err != nil || created || st.Name != "web" {
		t.Errorf("same spec again: created %v err %v", created, err)
	}
	other := helloSpec("web", mark, 1)
	other.Env["GREETING"] = "other"
	var ce *ConflictError
	if _, _, err := s.CreateGroup(other); !errors.As(err, &ce) || ce.Field != "env.GREETING" {
		t.Errorf("other spec: err %v, want conflict on env.GREETING", err)
	}
	if g := s.Groups(); len(g) != 1 || len(g[0].Instances) != 1 {
		t.Errorf("groups: %+v", g)
	}
}

func TestOpenErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	opts := testOptions(t)
	opts.DataDir = filepath.Join(f, "data")
	if _, err := Open(opts); err == nil || !strings.Contains(err.Error(), "data dir") {
		t.Errorf("data dir under a file: %v", err)
	}
	opts = testOptions(t)
	os.WriteFile(filepath.Join(opts.DataDir, StateFileName), []byte(`{"format": "runway-agent-state/1", "groups": [`), 0o600)
	_, err := Open(opts)
	var se *StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), filepath.Join(opts.DataDir, StateFileName)) || !strings.Contains(err.Error(), "mv ") {
		t.Errorf("corrupt state: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(opts.DataDir, StateFileName)); !strings.HasSuffix(string(b), "[") {
		t.Errorf("corrupt state file was modified")
	}
}

func TestResourceLimitsReported(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	sp := helloSpec("limited", mark, 1)
	sp.Limits = agentapi.Limits{MemoryMB: 128, CPU: 0.5}
	st, _, err := s.CreateGroup(sp)
	if err != nil {
		t.Fatal(err)
	}
	if st.Limits == "" || st.Limits == "none requested" {
		t.Fatalf("limits state %q", st.Limits)
	}
	waitFor(t, 30*time.Second, "healthy", func() bool { return allHealthy(s, "limited", 1) })
	st, _ = s.Group("limited")
	t.Logf("limits: %s", st.Limits)
	if !strings.HasPrefix(st.Limits, "enforced") {
		if !strings.HasPrefix(st.Limits, "limits not enforced: ") {
			t.Errorf("limits %q: want enforced or 'limits not enforced: <why>'", st.Limits)
		}
		return
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(st.Instances[0].PID) + "/cgroup")
	if !strings.Contains(string(b), "runway-"+s.AgentID()+"/"+st.Instances[0].ID) {
		t.Errorf("instance not in its cgroup: %s", b)
	}
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && parts[1] == "memory" {
			lim, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes"))
			if strings.TrimSpace(string(lim)) != strconv.Itoa(128<<20) {
				t.Errorf("memory limit %q, want %d", lim, 128<<20)
			}
		}
	}
	if plain, _, _ := s.CreateGroup(helloSpec("plain", mark, 0)); plain.Limits != "none requested" {
		t.Errorf("no limits: %q", plain.Limits)
	}
}

func TestOrphansOfDeletedGroupsStopped(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	s1, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"keep", "gone", "deleting"} {
		if _, _, err := s1.CreateGroup(helloSpec(name, mark, 1)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "healthy", func() bool {
		return allHealthy(s1, "keep", 1) && allHealthy(s1, "gone", 1) && allHealthy(s1, "deleting", 1)
	})
	pids := map[string]int{}
	for _, g := range s1.Groups() {
		pids[g.Name] = g.Instances[0].PID
	}
	s1.Shutdown(context.Background(), false)
	// The state no longer lists "gone" (its process is an orphan of this
	// agent) and "deleting" was being deleted when the agent died.
	path := filepath.Join(opts.DataDir, StateFileName)
	var sf stateFile
	b, _ := os.ReadFile(path)
	json.Unmarshal(b, &sf)
	var groups []groupState
	for _, g := range sf.Groups {
		switch g.Spec.Name {
		case "gone":
			continue
		case "deleting":
			g.State = agentapi.GroupDeleting
		}
		groups = append(groups, g)
	}
	sf.Groups = groups
	b, _ = json.Marshal(sf)
	os.WriteFile(path, b, 0o600)

	s2 := openSup(t, opts)
	waitFor(t, 30*time.Second, "orphan and deleted group stopped", func() bool {
		return !procAlive(pids["gone"]) && !procAlive(pids["deleting"])
	})
	waitFor(t, 30*time.Second, "deletion finished", func() bool {
		_, err := s2.Group("deleting")
		return errors.Is(err, ErrNotFound)
	})
	if in := s2.Groups()[0].Instances[0]; in.PID != pids["keep"] || !procAlive(in.PID) {
		t.Errorf("kept group's instance: %+v (was pid %d)", in, pids["keep"])
	}
}

func TestTCPAndExecHealthChecks(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	tcp := helloSpec("tcp", mark, 1)
	tcp.Health = agentapi.HealthCheck{Type: agentapi.HealthTCP, Interval: agentapi.Duration(100 * time.Millisecond)}
	okExec := helloSpec("exec-ok", mark, 1)
	okExec.Health = agentapi.HealthCheck{Type: agentapi.HealthExec, Command: []string{"sh", "-c", "test \"$RUNWAY_INSTANCE\" = {{INSTANCE_ID}}"},
		Interval: agentapi.Duration(100 * time.Millisecond)}
	badExec := helloSpec("exec-bad", mark, 1)
	badExec.Health = agentapi.HealthCheck{Type: agentapi.HealthExec, Command: []string{"false"}, Interval: agentapi.Duration(100 * time.Millisecond),
		UnhealthyThreshold: 1}
	for _, sp := range []agentapi.GroupSpec{tcp, okExec, badExec} {
		if _, _, err := s.CreateGroup(sp); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "tcp and exec healthy", func() bool { return allHealthy(s, "tcp", 1) && allHealthy(s, "exec-ok", 1) })
	waitFor(t, 30*time.Second, "failing exec check replaces the instance", func() bool {
		in := instanceByIndex(t, s, "exec-bad", 0)
		return in.Restarts >= 1 && in.LastHealth != nil && !in.LastHealth.OK
	})
}

func TestResourceLimitsNotEnforcedSaysWhy(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	opts.CgroupRoot = t.TempDir() // no cgroup file system there
	s := openSup(t, opts)
	sp := helloSpec("limited", mark, 1)
	sp.Limits = agentapi.Limits{MemoryMB: 64}
	st, _, err := s.CreateGroup(sp)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.Limits, "limits not enforced: ") || !strings.Contains(st.Limits, opts.CgroupRoot) {
		t.Errorf("limits %q: want 'limits not enforced: <why>'", st.Limits)
	}
	waitFor(t, 30*time.Second, "healthy without limits", func() bool { return allHealthy(s, "limited", 1) })
}

func TestInterruptedScaleDownFinishedAtStart(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	s1, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s1.CreateGroup(helloSpec("web", mark, 3)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "healthy", func() bool { return allHealthy(s1, "web", 3) })
	before := s1.Groups()[0].Instances
	s1.Shutdown(context.Background(), false)
	// The previous agent recorded "scale to 1" and died before stopping.
	path := filepath.Join(opts.DataDir, StateFileName)
	var sf stateFile
	b, _ := os.ReadFile(path)
	json.Unmarshal(b, &sf)
	sf.Groups[0].Spec.Instances = 1
	b, _ = json.Marshal(sf)
	os.WriteFile(path, b, 0o600)

	s2 := openSup(t, opts)
	waitFor(t, 30*time.Second, "scaled down to 1", func() bool {
		g, err := s2.Group("web")
		return err == nil && len(g.Instances) == 1 && g.Counts[agentapi.StateHealthy] == 1
	})
	if in := s2.Groups()[0].Instances[0]; in.ID != before[0].ID || in.PID != before[0].PID {
		t.Errorf("kept %+v, want the oldest instance %s (pid %d)", in, before[0].ID, before[0].PID)
	}
	for _, in := range before[1:] {
		if procAlive(in.PID) {
			t.Errorf("instance %s (pid %d) not stopped", in.ID, in.PID)
		}
	}
}

func TestBackoffResetsAfterHealthyPeriod(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	opts.Backoff = Backoff{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, ResetAfter: 300 * time.Millisecond}
	s := openSup(t, opts)
	// Healthy for about 700 ms each time, longer than ResetAfter: every crash
	// counts as the first, so the delay stays at Initial.
	spec := misbehaveSpec("flaky", mark, 1, "--crash-after", "700ms")
	spec.Health = agentapi.HealthCheck{Type: agentapi.HealthTCP, Interval: agentapi.Duration(50 * time.Millisecond)}
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "3 restarts", func() bool { return instanceByIndex(t, s, "flaky", 0).Restarts >= 3 })
	in := instanceByIndex(t, s, "flaky", 0)
	if in.ConsecutiveFailures > 1 || in.CrashLoop {
		t.Errorf("failures after healthy periods counted as consecutive: %+v", in)
	}
}

// TestForeignListenerIsNotHealthy: another program takes an instance's port
// while the instance is still booting and answers its health check. The
// instance must not count as healthy (it would receive traffic meant for it)
// until it listens itself.
func TestForeignListenerIsNotHealthy(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	sp := helloSpec("booting", mark, 1)
	sp.Env["BOOT_DELAY"] = "2s"
	if _, _, err := s.CreateGroup(sp); err != nil {
		t.Fatal(err)
	}
	in := instanceByIndex(t, s, "booting", 0)
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(in.Port)))
	if err != nil {
		t.Fatalf("take the instance's port %d: %v", in.Port, err)
	}
	foreign := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })}
	go foreign.Serve(ln)
	waitFor(t, 30*time.Second, "the foreign listener detected", func() bool {
		cur := instanceByIndex(t, s, "booting", 0)
		return cur.LastHealth != nil && strings.Contains(cur.LastHealth.Detail, "another program holds the port")
	})
	if cur := instanceByIndex(t, s, "booting", 0); cur.State == agentapi.StateHealthy {
		t.Fatalf("instance healthy while another program answers on its port: %+v", cur)
	}
	foreign.Close()
	// Once the port is free the instance binds it after its boot delay and turns healthy.
	waitFor(t, 30*time.Second, "instance healthy on its own port", func() bool { return allHealthy(s, "booting", 1) })
}

// The last known health is only a starting point: an adopted instance that
// was healthy but fails its checks now leaves routing after
// unhealthy_threshold checks of the new supervisor and is replaced.
func TestAdoptedHealthyInstanceRechecked(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	failFile := filepath.Join(t.TempDir(), "fail")
	spec := helloSpec("web", mark, 1)
	spec.Health = agentapi.HealthCheck{Type: agentapi.HealthExec, Command: []string{"sh", "-c", "test ! -e " + failFile},
		Interval: agentapi.Duration(100 * time.Millisecond), UnhealthyThreshold: 2}
	s1, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s1.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "healthy", func() bool { return allHealthy(s1, "web", 1) })
	pid := s1.Groups()[0].Instances[0].PID
	if err := s1.Shutdown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(failFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := openSup(t, opts)
	waitFor(t, 30*time.Second, "the adopted instance out of routing", func() bool {
		snap := s2.Snapshot()
		return len(snap) == 1 && len(snap[0].Targets) == 0
	})
	waitFor(t, 30*time.Second, "the failing adopted instance replaced", func() bool {
		in := s2.Groups()[0].Instances[0]
		return in.PID != pid && in.Restarts >= 1
	})
}

// TestSecretsWaitAndStayInMemory: instances of a group that names secrets
// start only once the values come (SetSecrets, which takes all of them and
// no other); the values reach the process but never the state file, the
// group's status or the instance's log.
func TestSecretsWaitAndStayInMemory(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	s := openSup(t, opts)
	spec := helloSpec("sec-r1", mark, 2)
	spec.Secrets = []string{"DB"}
	spec.Env["LOG_ENV"] = "DB"
	st, _, err := s.CreateGroup(spec)
	if err != nil {
		t.Fatal(err)
	}
	if !st.SecretsMissing {
		t.Fatal("a group without its secrets does not say so")
	}
	for _, in := range st.Instances {
		if in.PID != 0 {
			t.Fatalf("instance %s started without its secrets", in.ID)
		}
	}
	var fe *FieldError
	if err := s.SetSecrets("sec-r1", map[string]string{}); !errors.As(err, &fe) || !strings.Contains(err.Error(), "lacks DB") {
		t.Fatalf("secrets without DB: %v", err)
	}
	if err := s.SetSecrets("sec-r1", map[string]string{"DB": "x", "OTHER": "y"}); !errors.As(err, &fe) || !strings.Contains(err.Error(), "OTHER is not one of the group's secrets") {
		t.Fatalf("an extra secret: %v", err)
	}
	if err := s.SetSecrets("nosuch", map[string]string{"DB": "x"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("secrets of no group: %v", err)
	}
	const value = "zz-in-memory-only-zz"
	if err := s.SetSecrets("sec-r1", map[string]string{"DB": value}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "2 healthy instances", func() bool { return allHealthy(s, "sec-r1", 2) })
	g, _ := s.Group("sec-r1")
	if g.SecretsMissing {
		t.Fatal("secrets_missing after they were set")
	}
	resp, err := http.Get("http://" + g.Instances[0].Addr + "/env-digest/DB")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != fmt.Sprintf("%x", sha256.Sum256([]byte(value))) {
		t.Fatalf("the instance's DB has digest %s, not the value's", body)
	}
	status, _ := json.Marshal(g)
	state, err := os.ReadFile(filepath.Join(opts.DataDir, StateFileName))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	waitFor(t, 30*time.Second, "the instance's log of its start", func() bool {
		logs.Reset()
		_ = s.ReadLogs(context.Background(), "sec-r1", g.Instances[0].ID, agentapi.LogQuery{}, func(l agentapi.LogLine) error {
			logs.WriteString(l.Text + "\n")
			return nil
		})
		return strings.Contains(logs.String(), "DB=")
	})
	if !strings.Contains(logs.String(), "DB=[redacted]") {
		t.Errorf("the instance's log does not show the secret redacted")
	}
	for what, b := range map[string]string{"status": string(status), "state file": string(state), "log": logs.String()} {
		if strings.Contains(b, value) {
			t.Errorf("the %s holds the secret's value", what)
		}
	}
}

// TestEarlyProbeFailuresDoNotCount: a new instance is probed from 5 ms on,
// before its first regular check; the failed probes of a program still
// starting count for nothing, so with no start period and an unhealthy
// threshold of 1 a program that listens after 60 ms is healthy, never
// replaced. (Counted, the 5 ms probe alone would have replaced it.)
func TestEarlyProbeFailuresDoNotCount(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	spec := helloSpec("early", mark, 1)
	spec.Env["BOOT_DELAY"] = "60ms"
	spec.Health.Interval = agentapi.Duration(time.Second)
	spec.Health.StartPeriod = 0
	spec.Health.UnhealthyThreshold = 1
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "instance healthy", func() bool { return allHealthy(s, "early", 1) })
	if in := instanceByIndex(t, s, "early", 0); in.Restarts != 0 {
		t.Fatalf("instance restarted %d times: failed early probes counted", in.Restarts)
	}
}
