package proxy

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// helloBin is examples/hello built once, for tests that need a real process
// to kill; empty (with helloErr) when it could not be built.
var helloBin, helloErr string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runway-proxy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "hello")
	out, err := exec.Command("go", "build", "-o", bin, "../../examples/hello").CombinedOutput()
	if err != nil {
		helloErr = fmt.Sprintf("go build examples/hello: %v\n%s", err, out)
	} else {
		helloBin = bin
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var listeningRE = regexp.MustCompile(`listening on (\S+)`)

// startHello runs examples/hello on a free port and returns the process and
// its address. The process is killed at the end of the test.
func startHello(t *testing.T, instance string) (*exec.Cmd, string) {
	t.Helper()
	if helloBin == "" {
		t.Fatal(helloErr)
	}
	cmd := exec.Command(helloBin, "--port", "0")
	cmd.Env = append(os.Environ(), "RUNWAY_INSTANCE="+instance)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		cmd.Wait()
		close(exited)
	}()
	select {
	case a := <-addr:
		return cmd, a
	case <-exited:
		t.Fatalf("hello %s exited before listening", instance)
	case <-time.After(10 * time.Second):
		t.Fatalf("hello %s did not listen within 10s", instance)
	}
	return nil, ""
}
