package local

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// helloBin is examples/hello, built once for the tests that run instances.
var helloBin string

// Instance ports of this package (docs/testing.md): 32000-32767, below the
// kernel's ephemeral range. Tests that start instances run one agent at a
// time.
const portMin, portMax = 32000, 32767

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runway-local-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helloBin = filepath.Join(dir, "hello")
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", helloBin, "./examples/hello")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build examples/hello: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var markSeq atomic.Int64

// testMark returns a value for TEST_MARK in the environment of every process
// a test starts; the test fails if one of them is still alive after it.
func testMark(t testing.TB) string {
	mark := fmt.Sprintf("local-%d-%d", os.Getpid(), markSeq.Add(1))
	t.Cleanup(func() {
		deadline := time.Now().Add(15 * time.Second)
		for {
			left := marked(mark)
			if len(left) == 0 {
				return
			}
			if time.Now().After(deadline) {
				for _, pid := range left {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				t.Errorf("processes started by the test still alive: %v", left)
				return
			}
			<-time.After(20 * time.Millisecond)
		}
	})
	return mark
}

// marked lists the live (not zombie) processes whose environment holds mark.
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
		if b, err := os.ReadFile("/proc/" + e.Name() + "/environ"); err == nil && bytes.Contains(b, needle) {
			out = append(out, pid)
		}
	}
	return out
}
