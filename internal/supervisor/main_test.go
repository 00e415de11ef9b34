package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/podmantest"
	"github.com/runwayhq/runway/internal/procfs"
)

// Binaries built once by TestMain.
var (
	binDir       string
	helloBin     string
	misbehaveBin string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runway-supervisor-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	helloBin = filepath.Join(dir, "hello")
	misbehaveBin = filepath.Join(dir, "misbehave")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, b := range []struct{ out, pkg string }{
		{helloBin, "./examples/hello"},
		{misbehaveBin, "./internal/supervisor/testdata/misbehave"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := podmantest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

var markSeq atomic.Int64

// testEnv returns a marker put in the env of every process a test starts;
// cleanup asserts that no process carrying it is still alive.
func testMark(t testing.TB) string {
	mark := fmt.Sprintf("%d-%d", os.Getpid(), markSeq.Add(1))
	t.Cleanup(func() { assertNoLeaks(t, mark) })
	return mark
}

// markedProcesses lists live processes whose environment has the mark.
func markedProcesses(mark string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	needle := []byte("TEST_MARK=" + mark + "\x00")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procfs.ReadStat(pid)
		if err != nil || st.State == 'Z' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(b, needle) {
			out = append(out, pid)
		}
	}
	return out
}

func assertNoLeaks(t testing.TB, mark string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := markedProcesses(mark)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("processes started by the test still alive: %v", left)
			return
		}
		pollPause()
	}
}

// pollPause is the interval of polling loops (they all have a deadline).
func pollPause() { <-time.After(20 * time.Millisecond) }

// waitFor polls cond until it returns true or the timeout expires.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		pollPause()
	}
}

// Tests take port ranges from a random offset below the kernel's ephemeral
// range (32768+), so concurrent test processes rarely share ports.
var portSeq atomic.Int64

func init() { portSeq.Store(rand.Int64N(20)) }

func nextPortRange() (int, int) {
	lo := 10000 + int(portSeq.Add(1)%20)*200 // 10000-13999: this package only (see docs/testing.md)
	return lo, lo + 199
}

// testOptions are fast options for tests: a data dir of the test, a port
// range of its own, short backoff.
func testOptions(t testing.TB) Options {
	lo, hi := nextPortRange()
	return Options{
		DataDir: t.TempDir(),
		PortMin: lo, PortMax: hi,
		Backoff:   Backoff{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, ResetAfter: 2 * time.Second},
		AdoptPoll: 50 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func openSup(t testing.TB, opts Options) *Supervisor {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Shutdown(ctx, true)
	})
	return s
}

func helloSpec(name, mark string, n int) agentapi.GroupSpec {
	return agentapi.GroupSpec{
		Name: name, Project: "demo", Service: "web", Environment: "staging", ReleaseID: "r1", Version: "1.2.3",
		Command: []string{"./hello", "--port", "{{PORT}}"}, WorkDir: binDir,
		Env:       map[string]string{"GREETING": "{{SERVICE_NAME}}-{{ENVIRONMENT}}", "TEST_MARK": mark},
		Instances: n,
		Health: agentapi.HealthCheck{Type: agentapi.HealthHTTP, Path: "/healthz", Interval: agentapi.Duration(100 * time.Millisecond),
			Timeout: agentapi.Duration(time.Second), HealthyThreshold: 1, UnhealthyThreshold: 2, StartPeriod: agentapi.Duration(5 * time.Second)},
		StopTimeout: agentapi.Duration(5 * time.Second),
	}
}

func misbehaveSpec(name, mark string, n int, args ...string) agentapi.GroupSpec {
	s := helloSpec(name, mark, n)
	s.Command = append([]string{misbehaveBin}, args...)
	return s
}

func procAlive(pid int) bool {
	st, err := procfs.ReadStat(pid)
	return err == nil && st.State != 'Z'
}
