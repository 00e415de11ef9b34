package supervisor

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/procfs"
)

// setsidChildren starts a group of one misbehave instance that forks n
// children with setsid (their own session, out of the instance's process
// group) and returns the instance and the children's pids.
func setsidChildren(t *testing.T, s *Supervisor, name, mark string, n int, extra ...string) (agentapi.InstanceStatus, []int) {
	t.Helper()
	spec := misbehaveSpec(name, mark, 1, append([]string{"--fork", strconv.Itoa(n), "--setsid"}, extra...)...)
	spec.StopTimeout = agentapi.Duration(500 * time.Millisecond)
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "healthy", func() bool { return allHealthy(s, name, 1) })
	in := instanceByIndex(t, s, name, 0)
	var children []int
	waitFor(t, 30*time.Second, "children logged", func() bool {
		children = children[:0]
		s.ReadLogs(context.Background(), name, in.ID, agentapi.LogQuery{Filter: "child pid"}, func(l agentapi.LogLine) error {
			pid, _ := strconv.Atoi(strings.TrimPrefix(l.Text, "child pid "))
			children = append(children, pid)
			return nil
		})
		return len(children) == n
	})
	for _, c := range children {
		st, err := procfs.ReadStat(c)
		if err != nil || st.Session != c || st.PGID == in.PID {
			t.Fatalf("child %d: %+v %v; want it alive in its own session", c, st, err)
		}
	}
	return in, children
}

// A child that left the instance's process group with setsid (and ignores
// SIGTERM) stops with its instance: by scale down, by deletion, and when the
// instance's main process exits on its own.
func TestSetsidChildStopsWithInstance(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))

	in, children := setsidChildren(t, s, "scaled", mark, 2)
	if _, err := s.ScaleGroup(context.Background(), "scaled", 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(children, in.PID) {
		if procAlive(pid) {
			t.Errorf("process %d survived the scale down of its instance", pid)
		}
	}

	in, children = setsidChildren(t, s, "deleted", mark, 1)
	done, _ := s.DeleteGroup("deleted", 0)
	<-done
	for _, pid := range append(children, in.PID) {
		if procAlive(pid) {
			t.Errorf("process %d survived the deletion of its instance", pid)
		}
	}

	in, children = setsidChildren(t, s, "crashed", mark, 1)
	syscall.Kill(in.PID, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "the crashed instance restarted", func() bool {
		now := instanceByIndex(t, s, "crashed", 0)
		return now.Restarts == 1 && now.PID != in.PID && now.PID > 0
	})
	waitFor(t, 30*time.Second, "the setsid child of the crashed process stopped", func() bool { return !procAlive(children[0]) })
}

// An instance whose main process died while no agent ran, leaving a setsid
// child that carries the instance's marker: the next supervisor does not
// adopt the child as the instance; it stops it and starts a new process.
func TestSetsidChildNeverAdopted(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	s1, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	in, children := setsidChildren(t, s1, "web", mark, 1)
	if err := s1.Shutdown(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(in.PID, syscall.SIGKILL)
	waitFor(t, 30*time.Second, "the main process gone", func() bool { return !procAlive(in.PID) })
	if !procAlive(children[0]) {
		t.Fatal("the setsid child died with the main process")
	}

	s2 := openSup(t, opts)
	waitFor(t, 30*time.Second, "a new process healthy", func() bool { return allHealthy(s2, "web", 1) })
	now := instanceByIndex(t, s2, "web", 0)
	if now.PID == children[0] || now.Adopted || now.PID == in.PID {
		t.Errorf("instance after restart: %+v; want a new process, not the setsid child %d", now, children[0])
	}
	waitFor(t, 30*time.Second, "the setsid child stopped", func() bool { return !procAlive(children[0]) })
}

// A setsid child that also cleared its environment carries no marker: the
// instance's own cgroup (the v1 pids hierarchy or cgroup v2) still finds it,
// and it stops with its instance. The child is forked 300 ms after start:
// the agent moves a process into its cgroup just after starting it, and a
// child forked before that (and unmarked) escapes, as docs/agent-api.md says.
func TestUnmarkedSetsidChildStopsByCgroup(t *testing.T) {
	opts := testOptions(t)
	probe := cgroups{root: "/sys/fs/cgroup", agent: "runway-probe-" + randomHex(4)}
	d := probe.track("probe")
	if d == "" {
		t.Skip("no cgroup v1 pids hierarchy or cgroup v2 to give an instance its own cgroup: descendants are found by their marker only")
	}
	probe.remove([]string{d})
	probe.removeAgentDirs()
	mark := testMark(t)
	s := openSup(t, opts)
	in, children := setsidChildren(t, s, "unmarked", mark, 1, "--clear-env", "--fork-delay", "300ms")
	env, _ := os.ReadFile("/proc/" + strconv.Itoa(children[0]) + "/environ")
	if strings.Contains(string(env), "RUNWAY_INSTANCE") {
		t.Fatalf("the child carries the marker: %q", env)
	}
	done, _ := s.DeleteGroup("unmarked", 0)
	<-done
	for _, pid := range append(children, in.PID) {
		if procAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL) // it carries no TEST_MARK either
			t.Errorf("process %d survived the deletion of its instance", pid)
		}
	}
}
