package agent

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
	"github.com/runwayhq/runway/internal/supervisor"
)

var (
	binDir    string
	runwayBin string
	helloBin  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runway-agent-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	runwayBin = filepath.Join(dir, "runway")
	helloBin = filepath.Join(dir, "hello")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, b := range []struct{ out, pkg string }{{runwayBin, "./cmd/runway"}, {helloBin, "./examples/hello"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var markSeq atomic.Int64

// testMark returns a value put in TEST_MARK of every process a test starts;
// cleanup asserts none of them is still alive.
func testMark(t testing.TB) string {
	mark := fmt.Sprintf("agent-%d-%d", os.Getpid(), markSeq.Add(1))
	t.Cleanup(func() {
		deadline := time.Now().Add(15 * time.Second)
		for {
			left := marked(mark)
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
			<-time.After(20 * time.Millisecond)
		}
	})
	return mark
}

func marked(mark string) []int {
	ents, _ := os.ReadDir("/proc")
	needle := []byte("TEST_MARK=" + mark + "\x00")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(b, needle) {
			out = append(out, pid)
		}
	}
	return out
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// Tests take port ranges from a random offset below the kernel's ephemeral
// range (32768+), so concurrent test processes rarely share ports.
var portSeq atomic.Int64

func init() { portSeq.Store(rand.Int64N(40)) }

func portRange() (int, int) {
	lo := 14000 + int(portSeq.Add(1)%40)*100 // 14000-17999: this package only (see docs/testing.md)
	return lo, lo + 99
}

func helloSpec(name, mark string, n int) agentapi.GroupSpec {
	return agentapi.GroupSpec{
		Name: name, Service: "hello", Environment: "development", ReleaseID: name, Version: "1.0.0",
		Command: []string{"./hello", "--port", "{{PORT}}"}, WorkDir: binDir,
		Env:       map[string]string{"GREETING": "hi", "TEST_MARK": mark},
		Instances: n,
		Health: agentapi.HealthCheck{Type: "http", Path: "/healthz", Interval: agentapi.Duration(100 * time.Millisecond),
			StartPeriod: agentapi.Duration(5 * time.Second)},
		StopTimeout: agentapi.Duration(5 * time.Second),
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// startAgent runs an in-process agent until the test ends (stopping its
// instances).
func startAgent(t *testing.T, opts Options) (*Agent, *agentapi.Client) {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	opts.Listen = "127.0.0.1:0"
	opts.PortMin, opts.PortMax = portRange()
	opts.StopInstances = true
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	opts.Supervisor.Backoff = supervisor.Backoff{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, ResetAfter: 2 * time.Second}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	})
	return a, agentapi.NewClient(a.URL(), a.Token())
}
