package server_test

// The end-to-end suite of issue 5: real `runway agent` and `runway server`
// processes, real hello instances behind the agent's proxy, and steady
// traffic through the proxy during every release. This file holds the
// harness; e2e_test.go the tests.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/loadtest"
	"github.com/runwayhq/runway/internal/pgtest"
	"github.com/runwayhq/runway/internal/podmantest"
)

var (
	runwayBin string
	helloBin  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runway-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runwayBin = filepath.Join(dir, "runway")
	helloBin = filepath.Join(dir, "hello")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, b := range []struct{ out, pkg string }{{runwayBin, "./cmd/runway"}, {helloBin, "./examples/hello"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := podmantest.Main(m)
	pgtest.Cleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	projectName = "e2e"
	env         = "dev"
	service     = "hello"
)

// Port ranges of instances start at a random offset below the kernel's
// ephemeral range (32768+), so parallel tests and test binaries rarely share.
var portSeq atomic.Int64

func init() { portSeq.Store(rand.Int64N(100)) }

func portRange() string {
	lo := 20000 + int(portSeq.Add(1)%120)*100 // 20000-31999: this package only (see docs/testing.md)
	return fmt.Sprintf("%d-%d", lo, lo+99)
}

// freeAddrs returns n distinct free loopback addresses: all are held open
// until every one is chosen, so none is returned twice.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-time.After(20 * time.Millisecond)
	}
}

// proc is a runway process (agent or server) started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProc(t *testing.T, name string, extraEnv []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(runwayBin, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	p := &proc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits for the process to end (SIGKILL after 30 s).
func (p *proc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop on %s within 30s", p.name, sig)
	}
}

// cluster is one machine's worth of Runway: an agent with its proxy, a
// server, and a project directory with the hello manifest.
type cluster struct {
	t          *testing.T
	dir        string
	mark       string
	agentDir   string
	agentAddr  string
	proxyHTTP  string
	serverDir  string
	serverAddr string
	agent      *proc
	server     *proc
	api        *client.Client
	agentAPI   *agentapi.Client
	serverEnv  []string
	// serverArgs are extra flags of the server.
	serverArgs []string
}

var markSeq atomic.Int64

// startCluster starts an agent (with agentArgs added to its flags) and a
// server for one test; cleanup stops both (instances too) and asserts that
// no process of the test is left.
func startCluster(t *testing.T, agentArgs ...string) *cluster {
	t.Helper()
	return startClusterWith(t, nil, agentArgs...)
}

// startClusterWith is startCluster with setup called on the cluster before
// its server starts (to set serverArgs and serverEnv).
func startClusterWith(t *testing.T, setup func(*cluster), agentArgs ...string) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir, mark: fmt.Sprintf("e2e-%d-%d", os.Getpid(), markSeq.Add(1)),
		agentDir: filepath.Join(dir, "agent"), serverDir: filepath.Join(dir, "server")}
	addrs := freeAddrs(t, 4)
	c.agentAddr, c.proxyHTTP, c.serverAddr = addrs[0], addrs[1], addrs[2]
	if err := os.MkdirAll(filepath.Join(dir, "project"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.agent = startProc(t, "agent", []string{"TEST_MARK=" + c.mark}, append([]string{"agent", "--data-dir", c.agentDir, "--listen", c.agentAddr,
		"--port-range", portRange(), "--http", c.proxyHTTP, "--https", addrs[3], "--stop-instances", "--drain-timeout", "5s"}, agentArgs...)...)
	t.Cleanup(func() { c.shutdown() })
	tokenFile := filepath.Join(c.agentDir, agent.TokenFileName)
	waitFor(t, 30*time.Second, "the agent's token", func() bool {
		if c.agent.exited() {
			t.Fatalf("agent exited: %v\n%s", c.agent.err, c.agent.out)
		}
		b, err := os.ReadFile(tokenFile)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return false
		}
		c.agentAPI = agentapi.NewClient("http://"+c.agentAddr, strings.TrimSpace(string(b)))
		_, err = c.agentAPI.Health(context.Background())
		return err == nil
	})
	if setup != nil {
		setup(c)
	}
	c.startServer()
	return c
}

// startServer starts (or restarts) the server on the cluster's data dir and
// address, with c.serverEnv added to its environment. A restart whose
// address was taken meanwhile (by another test) moves to a new one.
func (c *cluster) startServer() {
	t := c.t
	t.Helper()
	for attempt := 0; ; attempt++ {
		err := c.tryStartServer()
		if err == nil {
			return
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		c.serverAddr = freeAddrs(t, 1)[0]
	}
}

func (c *cluster) tryStartServer() error {
	t := c.t
	t.Helper()
	c.server = startProc(t, "server", append([]string{"TEST_MARK=" + c.mark}, c.serverEnv...), append([]string{"server", "--data-dir", c.serverDir,
		"--listen", c.serverAddr, "--agent-url", "http://" + c.agentAddr,
		"--agent-token-file", filepath.Join(c.agentDir, agent.TokenFileName), "--proxy-http", c.proxyHTTP}, c.serverArgs...)...)
	srv := c.server
	var exitErr error
	waitFor(t, 30*time.Second, "the server", func() bool {
		if srv.exited() {
			exitErr = fmt.Errorf("server exited: %v\n%s", srv.err, srv.out)
			return true
		}
		b, err := os.ReadFile(filepath.Join(c.serverDir, "admin.token"))
		if err != nil {
			return false
		}
		cl, err := client.New("http://"+c.serverAddr, strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if cl.Health(context.Background()) != nil {
			return false
		}
		c.api = cl
		return true
	})
	return exitErr
}

// killServer ends the server with SIGKILL, as a crash would.
func (c *cluster) killServer() {
	c.t.Helper()
	_ = c.server.cmd.Process.Kill()
	<-c.server.done
}

func (c *cluster) shutdown() {
	t := c.t
	if c.server != nil {
		c.server.stop(t, syscall.SIGTERM)
	}
	c.agent.stop(t, syscall.SIGTERM)
	if t.Failed() {
		if c.server != nil {
			t.Logf("server output:\n%s", c.server.out)
		}
		t.Logf("agent output:\n%s", c.agent.out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := marked(c.mark)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Errorf("processes of the test still alive after cleanup: %v", left)
			return
		}
		<-time.After(20 * time.Millisecond)
	}
}

// marked lists live processes whose environment holds TEST_MARK=mark.
func marked(mark string) []int {
	ents, _ := os.ReadDir("/proc")
	needle := []byte("TEST_MARK=" + mark + "\x00")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(b, needle) {
			out = append(out, pid)
		}
	}
	return out
}

// alive reports whether pid runs (zombies do not count).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// manifest is what a test varies in the hello manifest.
type manifest struct {
	Service        string // default hello
	Strategy       string // default blue_green
	Desired        int    // default 2
	Spread         float64
	Timeout        string // deploy.timeout, default 60s
	ScaleDownDelay string // default 1s
	HealthPath     string // default /healthz
	Env            map[string]string
	// Canary holds the deploy.canary block's body.
	Canary   string
	MaxTerms int
	// Protected makes the dev environment protected.
	Protected bool
	// PreDeploy adds hooks.pre_deploy = hello migrate (MIGRATE_FAIL in Env
	// makes it fail).
	PreDeploy bool
	// DefaultHealth keeps the manifest's health defaults (interval 5s,
	// healthy_threshold 2, ...) instead of the fast test settings.
	DefaultHealth bool
	// Hosts are extra host names of the service; DrainTimeout is
	// deploy.drain_timeout (default 5s).
	Hosts        []string
	DrainTimeout string
	// Extra are lines added to the service block (such as secrets = [...]).
	Extra string
	// Hook is the pre_deploy command (instead of PreDeploy's).
	Hook []string
	// ProjectExtra is appended to runway.hcl (notify channels);
	// ServiceExtra inside the service block (alarms).
	ProjectExtra, ServiceExtra string
}

// writeManifest writes the project and the service manifest; deploys read
// them from c.dir/project.
func (c *cluster) writeManifest(m manifest) {
	c.t.Helper()
	if m.Service == "" {
		m.Service = service
	}
	if m.Strategy == "" {
		m.Strategy = "blue_green"
	}
	if m.Desired == 0 {
		m.Desired = 2
	}
	if m.Timeout == "" {
		m.Timeout = "60s"
	}
	if m.ScaleDownDelay == "" {
		m.ScaleDownDelay = "1s"
	}
	if m.HealthPath == "" {
		m.HealthPath = "/healthz"
	}
	if m.DrainTimeout == "" {
		m.DrainTimeout = "5s"
	}
	hosts, _ := json.Marshal(m.Hosts)
	if m.Hosts == nil {
		hosts = []byte("[]")
	}
	envs := map[string]string{"GREETING": "e2e", "TEST_MARK": c.mark}
	for k, v := range m.Env {
		envs[k] = v
	}
	var envHCL strings.Builder
	for k, v := range envs {
		fmt.Fprintf(&envHCL, "    %s = %q\n", k, v)
	}
	preDeploy := ""
	if m.PreDeploy {
		preDeploy = fmt.Sprintf("pre_deploy   = [%q, \"migrate\"]", helloBin)
	}
	if m.Hook != nil {
		hook, _ := json.Marshal(m.Hook)
		preDeploy = "pre_deploy   = " + string(hook)
	}
	health := `    interval            = "200ms"
    timeout             = "200ms"
    healthy_threshold   = 1
    unhealthy_threshold = 3
    start_period        = "5s"
`
	if m.DefaultHealth {
		health = ""
	}
	project := fmt.Sprintf(`project %q {}
environment "dev" {
  target    = "local"
  protected = %t
}
%s`, projectName, m.Protected, m.ProjectExtra)
	svc := fmt.Sprintf(`service %q {
  command = [%q, "--port", "{{PORT}}"]
  version = "1.0.0"
  hosts   = %s
  env = {
%s  }
  health {
    path                = %q
%s  }
  scale {
    min     = 1
    desired = %d
    max     = 10
    spread  = %g
    max_terms = %d
  }
  deploy {
    strategy         = %q
    timeout          = %q
    scale_down_delay = %q
    drain_timeout    = %q
    rolling {
      max_surge       = 1
      max_unavailable = 0
    }
    canary {
%s
    }
  }
  hooks {
    stop_timeout = "5s"
    %s
  }
%s
%s}
`, m.Service, helloBin, hosts, envHCL.String(), m.HealthPath, health, m.Desired, m.Spread, m.MaxTerms, m.Strategy, m.Timeout, m.ScaleDownDelay, m.DrainTimeout, m.Canary, preDeploy, m.Extra, m.ServiceExtra)
	dir := filepath.Join(c.dir, "project")
	if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte(project), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, m.Service+".service.hcl"), []byte(svc), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.applyProject()
}

// cli runs the runway CLI against the cluster's server, in the project directory.
func (c *cluster) cli(args ...string) (string, error) {
	c.t.Helper()
	return c.cliIn(filepath.Join(c.dir, "project"), args...)
}

// cliIn runs the runway CLI against the cluster's server in dir and returns
// its stdout and stderr together.
func (c *cluster) cliIn(dir string, args ...string) (string, error) {
	c.t.Helper()
	cmd := c.cliCommand(dir, args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cliStdout runs the runway CLI like cli and returns its stdout alone (a
// command's notes go to stderr, which is added to the error).
func (c *cluster) cliStdout(args ...string) (string, error) {
	c.t.Helper()
	cmd := c.cliCommand(filepath.Join(c.dir, "project"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w\n%s", err, stderr.String())
	}
	return string(out), err
}

// cliCommand is the runway CLI with the admin's token, run in dir against the
// cluster's server, never with the user's own config dir (contexts).
func (c *cluster) cliCommand(dir string, args ...string) *exec.Cmd {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.serverDir, "admin.token"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(runwayBin, append([]string{"--server", "http://" + c.serverAddr, "--token", strings.TrimSpace(string(b))}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "XDG_CONFIG_HOME="+filepath.Join(c.dir, "config"))
	return cmd
}

// submit submits a release of svc at version through `runway deploy` and
// returns it without waiting.
func (c *cluster) submit(svc, version string) *apiwire.Release {
	c.t.Helper()
	out, err := c.cliStdout("deploy", svc, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", version, "--yes", "--output", "json")
	if err != nil {
		c.t.Fatalf("runway deploy %s %s: %v\n%s", svc, version, err, out)
	}
	var rel apiwire.Release
	if err := json.Unmarshal([]byte(out), &rel); err != nil {
		c.t.Fatalf("runway deploy output: %v\n%s", err, out)
	}
	return &rel
}

// deployRequest makes the API request runway deploy makes for a release
// of svc at version: the manifest file as written, the project's runway.hcl
// and the directory commands live in.
func (c *cluster) deployRequest(svc, version string) apiwire.DeployRequest {
	c.t.Helper()
	dir := filepath.Join(c.dir, "project")
	src, err := os.ReadFile(filepath.Join(dir, svc+".service.hcl"))
	if err != nil {
		c.t.Fatal(err)
	}
	project, err := os.ReadFile(filepath.Join(dir, "runway.hcl"))
	if err != nil {
		c.t.Fatal(err)
	}
	return apiwire.DeployRequest{Project: projectName, Environment: env, Service: svc, Version: version,
		Sources:       []apiwire.SourceFile{{Name: svc + ".service.hcl", Content: string(src)}},
		ProjectSource: string(project), Dir: dir,
		RequestID: ulid.Make().String(), RequestedAt: time.Now().UTC()}
}

// applyProject registers (or updates) the project's runway.hcl on the server.
func (c *cluster) applyProject() {
	c.t.Helper()
	if out, err := c.cli("project", "apply", "--dir", filepath.Join(c.dir, "project"), "--yes"); err != nil {
		c.t.Fatalf("runway project apply: %v\n%s", err, out)
	}
}

// wait returns the release once it has ended.
func (c *cluster) wait(id string, timeout time.Duration) *apiwire.ReleaseDetail {
	c.t.Helper()
	var rel *apiwire.ReleaseDetail
	waitFor(c.t, timeout, "release "+id+" to end", func() bool {
		r, err := c.api.Release(context.Background(), id)
		if err != nil {
			return false // the server may be restarting
		}
		rel = r
		return r.Done
	})
	return rel
}

// deploy submits a release and waits for it to end.
func (c *cluster) deploy(svc, version string) *apiwire.ReleaseDetail {
	c.t.Helper()
	return c.wait(c.submit(svc, version).ID, 90*time.Second)
}

// mustState fails the test unless rel ended in state.
func mustState(t *testing.T, rel *apiwire.ReleaseDetail, state string) {
	t.Helper()
	if rel.State != state {
		var ev strings.Builder
		for _, e := range rel.Events {
			fmt.Fprintf(&ev, "  %s %-18s %d %s\n", e.At.Format("15:04:05.000"), e.State, e.Step, e.Message)
		}
		t.Fatalf("release %s (v%s) ended %s (%s: %s), want %s; events:\n%s", rel.ID, rel.Version, rel.State, rel.ErrorKind, rel.Error, state, ev.String())
	}
}

func host(svc string) string { return svc + "." + env + ".localhost" }

// load starts steady traffic at svc through the proxy; stop ends it and
// returns the counts.
func (c *cluster) load(svc string) (stop func() *loadtest.Result) {
	return c.loadPath(svc, "/", 2, 5*time.Millisecond)
}

// loadPath is load at path with n clients waiting interval between requests.
func (c *cluster) loadPath(svc, path string, n int, interval time.Duration) (stop func() *loadtest.Result) {
	ctx, cancel := context.WithCancel(context.Background())
	run := loadtest.Start(ctx, loadtest.Options{URL: "http://" + c.proxyHTTP + path, Host: host(svc), Concurrency: n, Interval: interval})
	var once sync.Once
	var res *loadtest.Result
	stop = func() *loadtest.Result {
		once.Do(func() { cancel(); res = run.Wait() })
		return res
	}
	c.t.Cleanup(func() { stop() })
	return stop
}

// noFailures fails the test if any request of res failed.
func noFailures(t *testing.T, what string, res *loadtest.Result) {
	t.Helper()
	sent, failed, _ := res.Snapshot()
	t.Logf("%s: %s", what, res)
	if sent == 0 {
		t.Errorf("%s: no request was sent", what)
	}
	if failed > 0 {
		t.Errorf("%s: %d of %d requests failed; first: %+v", what, failed, sent, res.Failures[0])
	}
}

// versions asks the proxy n times and counts the answering versions.
func (c *cluster) versions(svc string, n int) map[string]int {
	c.t.Helper()
	return c.versionsAt(host(svc), n)
}

// versionsAt asks the proxy for host n times and counts the answering versions.
func (c *cluster) versionsAt(hostName string, n int) map[string]int {
	c.t.Helper()
	out := map[string]int{}
	cl := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest(http.MethodGet, "http://"+c.proxyHTTP+"/", nil)
		req.Host = hostName
		resp, err := cl.Do(req)
		if err != nil {
			out["error"]++
			continue
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			out[fmt.Sprintf("status %d", resp.StatusCode)]++
			continue
		}
		v := "unknown"
		if _, rest, ok := strings.Cut(b.String(), " from v"); ok {
			v, _, _ = strings.Cut(rest, " ")
		}
		out[v]++
	}
	cl.CloseIdleConnections()
	return out
}

// onlyVersion fails the test unless every one of n requests answered version.
func (c *cluster) onlyVersion(svc, version string) {
	c.t.Helper()
	got := c.versions(svc, 30)
	if len(got) != 1 || got[version] != 30 {
		c.t.Fatalf("%s answers %v, want only v%s", svc, got, version)
	}
}

// groups returns the agent's groups of svc.
func (c *cluster) groups(svc string) []agentapi.GroupStatus {
	c.t.Helper()
	all, err := c.agentAPI.Groups(context.Background())
	if err != nil {
		c.t.Fatalf("agent groups: %v", err)
	}
	var out []agentapi.GroupStatus
	for _, g := range all {
		if g.Spec.Service == svc && g.Spec.Environment == env {
			out = append(out, g)
		}
	}
	return out
}

// servingGroup returns the only group of svc and its instance pids, failing
// unless there is exactly one group, routed at 100 %.
func (c *cluster) servingGroup(svc string) (string, []int) {
	c.t.Helper()
	gs := c.groups(svc)
	if len(gs) != 1 {
		names := []string{}
		for _, g := range gs {
			names = append(names, g.Name)
		}
		c.t.Fatalf("%s has groups %v, want exactly one", svc, names)
	}
	var pids []int
	for _, in := range gs[0].Instances {
		if in.PID > 0 {
			pids = append(pids, in.PID)
		}
	}
	st, err := c.api.Status(context.Background(), projectName, env, svc)
	if err != nil {
		c.t.Fatal(err)
	}
	if len(st.Routes) != 1 || st.Routes[0].Group != gs[0].Name {
		c.t.Fatalf("%s routes %+v, want all traffic to %s", svc, st.Routes, gs[0].Name)
	}
	return gs[0].Name, pids
}

// gone waits until the old group is no longer known to the agent and none of
// its processes runs.
func (c *cluster) gone(svc, group string, pids []int) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, "group "+group+" and its processes to be gone", func() bool {
		for _, g := range c.groups(svc) {
			if g.Name == group {
				return false
			}
		}
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
}
