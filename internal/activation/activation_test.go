package activation

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the child: with ACTIVATION_CHILD set it takes
// over the passed sockets and answers one HTTP request on each with the
// socket's name.
func TestMain(m *testing.M) {
	if os.Getenv("ACTIVATION_CHILD") != "" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

func child() int {
	ls, err := Listeners()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if os.Getenv(EnvFDs) != "" || os.Getenv(EnvParent) != "" {
		fmt.Fprintln(os.Stderr, "the variables were not unset")
		return 1
	}
	for _, l := range ls {
		c, err := l.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(l.Name), l.Name)
		c.Close()
		l.Close()
	}
	return 0
}

func startChild(t *testing.T, fs *Files) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ACTIVATION_CHILD=1")
	if err := fs.Pass(cmd); err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("child stderr: %s", out)
		}
	})
	return cmd
}

// TestHandOver: connections made while no process serves the sockets wait
// in the backlog (never refused) and are answered by the next child; each
// child gets every socket under its name.
func TestHandOver(t *testing.T) {
	var ls []Listener
	for _, name := range []string{"http", "https"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, Listener{Name: name, Listener: ln})
	}
	fs, err := NewFiles(ls)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	addrs := []string{ls[0].Addr().String(), ls[1].Addr().String()}
	// The parent's own listeners go: the passed descriptors hold the sockets.
	for _, l := range ls {
		l.Close()
	}
	for round := range 2 {
		// Connect and send before any child runs.
		var conns []net.Conn
		for _, a := range addrs {
			c, err := net.DialTimeout("tcp", a, 5*time.Second)
			if err != nil {
				t.Fatalf("round %d: dial %s with no child running: %v", round, a, err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			conns = append(conns, c)
		}
		cmd := startChild(t, fs)
		for i, c := range conns {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("round %d: read the answer on %s: %v", round, addrs[i], err)
			}
			body := make([]byte, 16)
			n, _ := resp.Body.Read(body)
			if want := ls[i].Name; string(body[:n]) != want {
				t.Errorf("round %d: socket %s answered %q, want %q", round, addrs[i], body[:n], want)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("round %d: child: %v", round, err)
		}
	}
}

func TestListenersNotForThisProcess(t *testing.T) {
	t.Setenv(EnvFDs, "1")
	t.Setenv(EnvPID, "1")
	ls, err := Listeners()
	if err != nil || ls != nil {
		t.Fatalf("Listeners with another process's LISTEN_PID: %v, %v; want none", ls, err)
	}
	if _, ok := os.LookupEnv(EnvFDs); ok {
		t.Error("LISTEN_FDS was not unset")
	}
}

func TestListenersBadVariables(t *testing.T) {
	for _, tc := range []struct{ fds, pid, names, want string }{
		{"1", "", "", "without LISTEN_PID"},
		{"x", "self", "", "want a number of sockets"},
		{"0", "self", "", "want a number of sockets"},
		{"2", "self", "http", "names 1 sockets, but LISTEN_FDS=2"},
	} {
		t.Setenv(EnvFDs, tc.fds)
		pid := tc.pid
		if pid == "self" {
			pid = fmt.Sprint(os.Getpid())
		}
		t.Setenv(EnvPID, pid)
		t.Setenv(EnvNames, tc.names)
		_, err := Listeners()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LISTEN_FDS=%s LISTEN_PID=%s LISTEN_FDNAMES=%s: %v, want an error with %q", tc.fds, tc.pid, tc.names, err, tc.want)
		}
	}
}
