package server_test

// Faults under `runway up` (issue 10): up restarts a killed server or agent,
// holds the proxy's sockets across agent restarts, and refuses a second up.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/loadtest"
)

// startUp runs `runway up` for one test and returns a cluster whose helpers
// (deploy, load, groups, ...) work as with separately run processes; c.agent
// is the up process (cleanup stops it: server, agent and instances go).
func startUp(t *testing.T) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, dir: dir, mark: fmt.Sprintf("up-%d-%d", os.Getpid(), markSeq.Add(1)),
		agentDir: filepath.Join(dir, ".runway", "agent"), serverDir: filepath.Join(dir, ".runway", "server")}
	addrs := freeAddrs(t, 4)
	c.agentAddr, c.proxyHTTP, c.serverAddr = addrs[0], addrs[1], addrs[2]
	if err := os.MkdirAll(filepath.Join(dir, "project"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.agent = startProc(t, "up", []string{"TEST_MARK=" + c.mark}, "up", "--data-dir", filepath.Join(dir, ".runway"),
		"--listen", c.serverAddr, "--agent-listen", c.agentAddr, "--http", c.proxyHTTP, "--https", addrs[3], "--port-range", portRange())
	t.Cleanup(func() { c.shutdown() })
	waitFor(t, 60*time.Second, "runway up to say it is up", func() bool {
		if c.agent.exited() {
			t.Fatalf("runway up exited: %v\n%s", c.agent.err, c.agent.out)
		}
		return strings.Contains(c.agent.out.String(), "Runway is up")
	})
	tok, err := os.ReadFile(filepath.Join(c.agentDir, agent.TokenFileName))
	if err != nil {
		t.Fatal(err)
	}
	c.agentAPI = agentapi.NewClient("http://"+c.agentAddr, strings.TrimSpace(string(tok)))
	admin, err := os.ReadFile(filepath.Join(c.serverDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if c.api, err = client.New("http://"+c.serverAddr, strings.TrimSpace(string(admin))); err != nil {
		t.Fatal(err)
	}
	return c
}

// healthPID returns the pid that GET url reports (0 while nothing answers).
func healthPID(url string) int {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var h struct {
		PID int `json:"pid"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&h) != nil {
		return 0
	}
	return h.PID
}

// inFlight sums the proxy's runway_proxy_in_flight_requests gauges.
func (c *cluster) inFlight() int {
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	// /metrics needs the agent's token like the rest of its API.
	tok, err := os.ReadFile(filepath.Join(c.agentDir, agent.TokenFileName))
	if err != nil {
		return 0
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+c.agentAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "runway_proxy_in_flight_requests{"); ok {
			var v float64
			if _, val, ok := strings.Cut(rest, "} "); ok && json.Unmarshal([]byte(val), &v) == nil {
				n += int(v)
			}
		}
	}
	return n
}

func (c *cluster) serverPID() int { return healthPID("http://" + c.serverAddr + "/v1/health") }
func (c *cluster) agentPID() int  { return healthPID("http://" + c.agentAddr + "/v1/health") }

// restartedPID waits until what answers url is a process other than old.
func (c *cluster) restartedPID(what string, pid func() int, old int) int {
	c.t.Helper()
	var now int
	waitFor(c.t, 30*time.Second, "up to restart the "+what, func() bool {
		now = pid()
		return now != 0 && now != old
	})
	return now
}

// TestUpRestartsKilledServerMidRelease: kill -9 of the server child in the
// middle of a release; up starts a new server, which resumes the release to
// Success, and not one request fails.
func TestUpRestartsKilledServerMidRelease(t *testing.T) {
	t.Parallel()
	c := startUp(t)
	c.writeManifest(manifest{ScaleDownDelay: "2s"})
	mustState(t, c.deploy(service, "1"), "Success")
	oldGroup, oldPids := c.servingGroup(service)
	stop := c.load(service)
	rel := c.submit(service, "2")
	waitFor(t, 30*time.Second, "the release to be deploying", func() bool {
		r, err := c.api.Release(context.Background(), rel.ID)
		return err == nil && len(r.Events) > 0 && r.State == "Deploy"
	})
	old := c.serverPID()
	if old == 0 {
		t.Fatal("the server does not report its pid")
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.restartedPID("server", c.serverPID, old)
	done := c.wait(rel.ID, 90*time.Second)
	res := stop()
	mustState(t, done, "Success")
	noFailures(t, "v1→v2 across a kill -9 of the server", res)
	c.onlyVersion(service, "2")
	c.gone(service, oldGroup, oldPids)
	out := c.agent.out.String()
	if want := fmt.Sprintf(`child=server pid=%d status="signal: killed"`, old); !strings.Contains(out, want) {
		t.Errorf("up's log lacks %q:\n%s", want, out)
	}
}

// agentRestart kills or stops the agent child of up under steady load and
// returns the load's result; the instances must be the same processes
// afterwards, adopted, and serving. On SIGTERM, slow requests (1.5 s) are
// in flight too, and must all complete.
func agentRestart(t *testing.T, sig syscall.Signal) *loadtest.Result {
	c := startUp(t)
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "1"), "Success")
	group, pids := c.servingGroup(service)
	ctx, cancel := context.WithCancel(context.Background())
	run := loadtest.Start(ctx, loadtest.Options{URL: "http://" + c.proxyHTTP + "/", Host: host(service), Concurrency: 4, Interval: 2 * time.Millisecond})
	t.Cleanup(func() { cancel(); run.Wait() })
	sent := func() int64 { n, _, _ := run.Result.Snapshot(); return n }
	var stopSlow func() *loadtest.Result
	if sig == syscall.SIGTERM {
		stopSlow = c.loadPath(service, "/slow?ms=1500", 2, 0)
	}
	// And clients that open a new connection per request: net/http never
	// sends their requests again, so none may be lost by a graceful stop.
	fresh := startFreshLoad(c, 2)
	t.Cleanup(func() { fresh.stop() })
	waitFor(t, 30*time.Second, "traffic", func() bool { return sent() > 100 })
	if stopSlow != nil {
		waitFor(t, 30*time.Second, "2 slow requests in flight in the agent", func() bool { return c.inFlight() >= 2 })
	}
	old := c.agentPID()
	if old == 0 {
		t.Fatal("the agent does not report its pid")
	}
	if err := syscall.Kill(old, sig); err != nil {
		t.Fatal(err)
	}
	c.restartedPID("agent", c.agentPID, old)
	// Traffic through the new agent for a while before counting.
	before := sent()
	waitFor(t, 30*time.Second, "traffic through the new agent", func() bool { return sent() > before+200 })
	cancel()
	res := run.Wait()
	fsent, ffailed, ffailures := fresh.stop()
	t.Logf("new connection per request: sent %d, failed %d %v", fsent, ffailed, ffailures)
	if maxFresh := map[syscall.Signal]int{syscall.SIGTERM: 0, syscall.SIGKILL: 2}[sig]; fsent == 0 || ffailed > maxFresh {
		t.Errorf("new connection per request across the agent restart on %s: %d of %d failed, want at most %d: %v", sig, ffailed, fsent, maxFresh, ffailures)
	}
	for _, f := range ffailures {
		if strings.Contains(f, "refused") {
			t.Errorf("a connection was refused during the agent restart: %s", f)
		}
	}
	if stopSlow != nil {
		slow := stopSlow()
		noFailures(t, "slow requests across the graceful agent restart", slow)
		if sent, _, _ := slow.Snapshot(); sent < 2 {
			t.Errorf("%d slow requests completed, want at least the 2 in flight at SIGTERM", sent)
		}
	}
	g2, pids2 := c.servingGroup(service)
	if g2 != group || fmt.Sprint(pids2) != fmt.Sprint(pids) {
		t.Errorf("after the agent restart %s serves with pids %v, want %s with the same pids %v", g2, pids2, group, pids)
	}
	for _, g := range c.groups(service) {
		for _, in := range g.Instances {
			if !in.Adopted || in.Restarts != 0 {
				t.Errorf("instance %s: adopted %t, restarts %d; want adopted, never restarted", in.ID, in.Adopted, in.Restarts)
			}
		}
	}
	out := c.agent.out.String()
	if want := fmt.Sprintf(`child=agent pid=%d`, old); !strings.Contains(out, want) {
		t.Errorf("up's log lacks %q:\n%s", want, out)
	}
	for _, f := range res.Failures {
		if strings.Contains(f.Err, "refused") {
			t.Errorf("a connection was refused during the agent restart: %+v", f)
		}
	}
	t.Logf("agent restart on %s: %s", sig, res)
	return res
}

// TestUpGracefulAgentRestartUnderLoad: SIGTERM to the agent child is a
// restart: the old agent stops accepting and finishes its requests, the
// connections wait in the backlog of the sockets up holds, the new agent
// serves the adopted instances at once. Goal: 0 failed requests.
func TestUpGracefulAgentRestartUnderLoad(t *testing.T) {
	t.Parallel()
	res := agentRestart(t, syscall.SIGTERM)
	noFailures(t, "graceful agent restart", res)
}

// TestUpKill9AgentUnderLoad: kill -9 of the agent child. Goal: no refused
// connection, and no failed request other than those in flight in the
// killed process (at most one per client: 4).
func TestUpKill9AgentUnderLoad(t *testing.T) {
	t.Parallel()
	res := agentRestart(t, syscall.SIGKILL)
	if sent, failed, _ := res.Snapshot(); sent == 0 || failed > 4 {
		t.Errorf("kill -9 of the agent: %d of %d requests failed, want at most the 4 in flight; failures: %+v", failed, sent, res.Failures)
	}
}

// TestSecondUpRefused: a second up on the same data dir, or on the same
// ports, exits 1 with a message saying why, never "Runway is up", and
// leaves the first one serving.
func TestSecondUpRefused(t *testing.T) {
	t.Parallel()
	c := startUp(t)
	upPID := c.agent.cmd.Process.Pid
	agentPID, serverPID := c.agentPID(), c.serverPID()
	free := freeAddrs(t, 4)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"same data dir", []string{"--data-dir", filepath.Join(c.dir, ".runway"), "--listen", free[0], "--agent-listen", free[1], "--http", free[2], "--https", free[3]},
			fmt.Sprintf("is in use by another runway up (pid %d)", upPID)},
		{"same proxy port", []string{"--data-dir", filepath.Join(t.TempDir(), "d"), "--listen", free[0], "--agent-listen", free[1], "--http", c.proxyHTTP, "--https", free[3]},
			"listen on " + c.proxyHTTP + " (--http): "},
		{"same server port", []string{"--data-dir", filepath.Join(t.TempDir(), "d"), "--listen", c.serverAddr, "--agent-listen", free[1], "--http", free[2], "--https", free[3]},
			"the server exited before it was ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(runwayBin, append([]string{"up", "--port-range", portRange()}, tc.args...)...)
			cmd.Env = append(os.Environ(), "TEST_MARK="+c.mark)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("the second up did not exit:\n%s\n%s", stdout.String(), stderr.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Errorf("second up: %v, want exit status 1", err)
			}
			if strings.Contains(stdout.String(), "Runway is up") {
				t.Errorf("the second up says it is up:\n%s", stdout.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("the second up's messages lack %q:\n%s", tc.want, stderr.String())
			}
		})
	}
	if a, s := c.agentPID(), c.serverPID(); a != agentPID || s != serverPID {
		t.Errorf("after the second ups the first one's agent and server are pids %d and %d, want %d and %d", a, s, agentPID, serverPID)
	}
}

// TestUpAgentRestartMidRelease: a graceful restart of the agent in the
// middle of a release. The server's calls wait in the backlog of the agent
// API's socket (held by up) instead of being refused, so the release ends
// Success and no request fails.
func TestUpAgentRestartMidRelease(t *testing.T) {
	t.Parallel()
	agentRestartMidRelease(t, syscall.SIGTERM, 0)
}

// TestUpAgentKill9MidRelease: kill -9 of the agent in the middle of a
// release. A call of the server cut by the kill is sent again by net/http
// (the agent client marks every call idempotent) to the next agent, so the
// release still ends Success; of the traffic, only requests in flight in
// the killed agent may fail (at most one per load client: 2).
func TestUpAgentKill9MidRelease(t *testing.T) {
	t.Parallel()
	agentRestartMidRelease(t, syscall.SIGKILL, 2)
}

func agentRestartMidRelease(t *testing.T, sig syscall.Signal, maxFailed int64) {
	c := startUp(t)
	c.writeManifest(manifest{ScaleDownDelay: "2s"})
	mustState(t, c.deploy(service, "1"), "Success")
	stop := c.load(service)
	rel := c.submit(service, "2")
	waitFor(t, 30*time.Second, "the release to be deploying", func() bool {
		r, err := c.api.Release(context.Background(), rel.ID)
		return err == nil && len(r.Events) > 0 && r.State == "Deploy"
	})
	old := c.agentPID()
	if err := syscall.Kill(old, sig); err != nil {
		t.Fatal(err)
	}
	c.restartedPID("agent", c.agentPID, old)
	done := c.wait(rel.ID, 90*time.Second)
	res := stop()
	mustState(t, done, "Success")
	sent, failed, _ := res.Snapshot()
	t.Logf("v1→v2 across an agent restart on %s: %s", sig, res)
	if sent == 0 || failed > maxFailed {
		t.Errorf("v1→v2 across an agent restart on %s: %d of %d requests failed, want at most %d; failures: %+v", sig, failed, sent, maxFailed, res.Failures)
	}
	c.onlyVersion(service, "2")
}

// freshLoad is steady traffic through the proxy on a new connection per
// request.
type freshLoad struct {
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	sent     int
	failures []string
}

func startFreshLoad(c *cluster, n int) *freshLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &freshLoad{cancel: cancel, done: make(chan struct{})}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.proxyHTTP+"/", nil)
				req.Host = host(service)
				resp, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				fail := ""
				if err != nil {
					fail = err.Error()
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						fail = resp.Status
					}
				}
				l.mu.Lock()
				l.sent++
				if fail != "" {
					l.failures = append(l.failures, fail)
				}
				l.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

// stop ends the load (once) and returns its counts.
func (l *freshLoad) stop() (sent, failed int, failures []string) {
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, len(l.failures), l.failures
}
