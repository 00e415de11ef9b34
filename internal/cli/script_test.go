package cli

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/runwayhq/runway/internal/podmantest"
)

func TestMain(m *testing.M) {
	testscript.Main(withEngine{m}, map[string]func(){
		"runway": func() { os.Exit(Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// withEngine runs the tests, then stops the podman the tests that build
// images started (internal/podmantest).
type withEngine struct{ m *testing.M }

func (w withEngine) Run() int { return podmantest.Main(w.m) }

// TestScripts runs the CLI end-to-end scenarios in testdata/script/*.txtar.
//
// Besides testscript's own commands, scripts can use:
//
//	hello-app DIR               copy examples/hello (manifests and a built binary) to DIR
//	exits CODE PROG ARGS...     run PROG, expect exit code CODE; stdout/stderr as for exec
//	capture VAR REGEXP          set $VAR to REGEXP's first group in the last stdout
//	waithttp URL                wait (30 s at most) until URL answers 200
//	waitfile PATH               wait (30 s at most) until PATH exists
//	httpget HOST URL REGEXP     GET URL with Host HOST; expect 200 and a body matching REGEXP
//	noprocs PATH                no process runs the executable PATH (absolute)
//
// and the variables SERVER_ADDR, AGENT_ADDR, HTTP_ADDR and HTTPS_ADDR are
// free loopback addresses for `runway up`.
func TestScripts(t *testing.T) {
	hello := filepath.Join(t.TempDir(), "hello")
	build := exec.Command("go", "build", "-o", hello, "../../examples/hello")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/hello: %v\n%s", err, out)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("NO_COLOR", "1")
			// Contexts go to the script's own config dir, never the user's.
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			for _, v := range []string{"SERVER_ADDR", "AGENT_ADDR", "HTTP_ADDR", "HTTPS_ADDR"} {
				addr, err := freeAddr()
				if err != nil {
					return err
				}
				env.Setenv(v, addr)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"hello-app": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: hello-app DIR")
				}
				ts.Check(copyHelloApp(hello, ts.MkAbs(args[0])))
			},
			"exits":    cmdExits,
			"capture":  cmdCapture,
			"waithttp": cmdWaitHTTP,
			"waitfile": cmdWaitFile,
			"httpget":  cmdHTTPGet,
			"noprocs":  cmdNoProcs,
		},
	})
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// copyHelloApp puts examples/hello's manifests and the built binary (as
// bin/hello, the manifest's command) in dir.
func copyHelloApp(bin, dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return err
	}
	for _, f := range []string{"runway.hcl", "hello.service.hcl"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	// A copy (not a link), so noprocs can tell this script's instances
	// from any other's by their executable path.
	return copyFile(bin, filepath.Join(dir, "bin", "hello"), 0o755)
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		got = ee.ExitCode()
	default:
		ts.Fatalf("%s: %v", args[1], err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("capture: no match for %q in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waithttp URL")
	}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(args[0])
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not answer 200 within 30s (last error: %v)", args[0], err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: httpget HOST URL REGEXP")
	}
	req, err := http.NewRequest(http.MethodGet, args[1], nil)
	ts.Check(err)
	req.Host = args[0]
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	ts.Check(err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	ts.Check(err)
	if resp.StatusCode != http.StatusOK {
		ts.Fatalf("GET %s (Host %s): %s: %s", args[1], args[0], resp.Status, body)
	}
	if ok, _ := regexp.Match(args[2], body); !ok {
		ts.Fatalf("GET %s (Host %s): body %q does not match %q", args[1], args[0], body, args[2])
	}
}

func cmdNoProcs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: noprocs PATH")
	}
	exe := ts.MkAbs(args[0])
	ents, err := os.ReadDir("/proc")
	if err != nil {
		ts.Logf("noprocs: no /proc (%v); not checked", err)
		return
	}
	var pids []string
	for _, e := range ents {
		p, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.TrimSuffix(p, " (deleted)") == exe {
			pids = append(pids, e.Name())
		}
	}
	if len(pids) > 0 {
		ts.Fatalf("%s still runs: pids %s", exe, strings.Join(pids, ", "))
	}
}

// cmdWaitFile waits until a file exists (such as the config.toml a
// background `runway up` writes once it is up).
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile PATH")
	}
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear within 30 s", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
