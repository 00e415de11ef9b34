package server_test

// Issue 10, items 6 and 7: nothing waits forever, crash loops fail fast.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

// signalAgent sends sig to the cluster's agent process.
func (c *cluster) signalAgent(sig syscall.Signal) {
	c.t.Helper()
	if err := c.agent.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal the agent with %s: %v", sig, err)
	}
}

// deployAPI submits a release of version through the API (runway deploy
// would ask the agent for the service's status first).
func (c *cluster) deployAPI(version string) *apiwire.Release {
	c.t.Helper()
	rel, err := c.api.Deploy(context.Background(), c.deployRequest(service, version))
	if err != nil {
		c.t.Fatalf("deploy %s: %v", version, err)
	}
	return rel
}

// TestAgentStopped stops the agent with SIGSTOP (it holds its connections
// but answers nothing): a halt is honoured at once, and a release with a
// 15 s deploy.timeout ends FailureClean within 20 s while the agent is still
// stopped. Once the agent runs again, v1 serves as before.
func TestAgentStopped(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Timeout: "15s"})
	mustState(t, c.deploy(service, "1"), "Success")
	group, pids := c.servingGroup(service)

	c.signalAgent(syscall.SIGSTOP)
	stopped := true
	cont := func() {
		if stopped {
			c.signalAgent(syscall.SIGCONT)
			stopped = false
		}
	}
	t.Cleanup(cont) // the cleanup must be able to stop it

	// A halt while the release waits for the agent.
	rel := c.deployAPI("2")
	waitFor(t, 30*time.Second, "release 2 to reach the agent", func() bool {
		r, err := c.api.Release(context.Background(), rel.ID)
		return err == nil && r.State == "ValidateResources"
	})
	halted := time.Now()
	if err := c.api.Halt(context.Background(), rel.ID, "the agent is stopped"); err != nil {
		t.Fatal(err)
	}
	done := c.wait(rel.ID, 10*time.Second)
	mustState(t, done, "FailureClean")
	if done.ErrorKind != "Halted" || !strings.Contains(done.Error, "the agent is stopped") {
		t.Errorf("halted release ended %s: %s", done.ErrorKind, done.Error)
	}
	t.Logf("halt with the agent stopped: FailureClean %s after the halt", time.Since(halted).Round(time.Millisecond))

	// The deadline while the agent stays stopped.
	start := time.Now()
	rel = c.deployAPI("3")
	done = c.wait(rel.ID, 20*time.Second)
	took := time.Since(start)
	mustState(t, done, "FailureClean")
	if done.ErrorKind != "Timeout" {
		t.Errorf("release with the agent stopped ended %s (%s), want Timeout", done.ErrorKind, done.Error)
	}
	t.Logf("15 s deploy.timeout with the agent stopped: FailureClean after %s: %s: %s", took.Round(time.Millisecond), done.ErrorKind, done.Error)

	cont()
	g, now := c.servingGroup(service)
	if g != group || !slices.Equal(now, pids) {
		t.Errorf("after the agent's stop %s %v serves, want %s %v", g, now, group, pids)
	}
	c.onlyVersion(service, "1")
}

// TestDeploySurvivesStoppedAgent stops the agent for 3 s in the middle of a
// release, longer than the server's --agent-timeout of 1 s: the calls that
// get no answer are retried (transient errors), and the release succeeds.
func TestDeploySurvivesStoppedAgent(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.serverArgs = []string{"--agent-timeout", "1s"}
	c.killServer()
	c.startServer()
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "1"), "Success")
	// v2 takes 3 s to listen: the release waits for it to turn healthy.
	c.writeManifest(manifest{Env: map[string]string{"BOOT_DELAY": "3s"}})
	rel := c.deployAPI("2")
	waitFor(t, 30*time.Second, "release 2 to wait for its group", func() bool {
		r, err := c.api.Release(context.Background(), rel.ID)
		return err == nil && r.State == "Deploy" && len(c.groups(service)) == 2
	})
	c.signalAgent(syscall.SIGSTOP)
	t.Cleanup(func() { c.signalAgent(syscall.SIGCONT) })
	<-time.After(3 * time.Second) // the fault: 3 s without an answer
	c.signalAgent(syscall.SIGCONT)
	done := c.wait(rel.ID, 60*time.Second)
	mustState(t, done, "Success")
	retried := 0
	for _, e := range done.Events {
		if strings.HasPrefix(e.Message, "retrying: ") && strings.Contains(e.Message, "did not answer within 1s") {
			retried++
		}
	}
	if retried == 0 {
		t.Errorf("no step was retried while the agent was stopped; events: %+v", done.Events)
	}
	t.Logf("release 2 succeeded after %d retries of calls the stopped agent did not answer", retried)
	c.onlyVersion(service, "2")
}

// TestCrashLoopFailsFast releases a v2 that exits at start (an invalid
// BOOT_DELAY) with the default health settings (interval 5 s), the default
// crash budget and a 10 min deploy.timeout, under every strategy: it ends
// FailureClean within 3 health intervals (15 s) of the group's creation —
// hence of its first crash — with the crash's own line in the release's
// error, and v1 serves again.
func TestCrashLoopFailsFast(t *testing.T) {
	for _, strategy := range []string{"recreate", "rolling", "blue_green", "canary"} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t)
			m := manifest{Strategy: strategy}
			if strategy == "canary" {
				m.Canary = canarySteps
			}
			c.writeManifest(m)
			mustState(t, c.deploy(service, "1"), "Success")
			m.DefaultHealth, m.Timeout, m.Env = true, "10m", map[string]string{"BOOT_DELAY": "soon"}
			c.writeManifest(m)
			rel := c.wait(c.submit(service, "2").ID, 60*time.Second)
			mustState(t, rel, "FailureClean")
			for _, want := range []string{"crash-looping", "crash budget of 3", `BOOT_DELAY "soon": time: invalid duration`} {
				if !strings.Contains(rel.Error, want) {
					t.Errorf("release error does not say %q:\n%s", want, rel.Error)
				}
			}
			if rel.ErrorKind != "DeployError" {
				t.Errorf("error kind %s, want DeployError", rel.ErrorKind)
			}
			// From the creation of the new group (before its first crash)
			// to the failure.
			var created, failed time.Time
			for _, e := range rel.Events {
				if created.IsZero() && strings.HasPrefix(e.Message, "ensure group "+service+"-") && strings.Contains(e.Message, strings.ToLower(rel.ID)) {
					created = e.At
				}
				if failed.IsZero() && e.Step < 0 && e.State == "CleanUpFailure" {
					failed = e.At
				}
			}
			if created.IsZero() || failed.IsZero() {
				t.Fatalf("events lack the group's creation or the failure: %+v", rel.Events)
			}
			took := failed.Sub(created)
			t.Logf("%s: crash loop detected %s after the group was created: %s", strategy, took.Round(time.Millisecond), rel.Error)
			if took > 3*5*time.Second {
				t.Errorf("the crash loop took %s to fail the release, more than 3 health intervals (15 s)", took)
			}
			c.servingGroup(service)
			c.onlyVersion(service, "1")
		})
	}
}

// TestSlowBodiesCut: 300 clients that never finish their request bodies
// are answered 408 at the configured deadline by the proxy (to a real hello
// instance) and by the server's API, and nothing else is held.
func TestSlowBodiesCut(t *testing.T) {
	t.Parallel()
	c := startCluster(t, "--body-timeout", "2s")
	c.serverArgs = []string{"--body-timeout", "3s"}
	c.killServer()
	c.startServer()
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "1"), "Success")
	for _, tc := range []struct {
		name, addr, host, path string
		limit                  time.Duration
	}{
		{"server API", c.serverAddr, c.serverAddr, "/v1/releases", 3 * time.Second},
		{"proxy", c.proxyHTTP, host(service), "/", 2 * time.Second},
	} {
		const clients = 300
		type result struct {
			code int
			took time.Duration
			err  error
		}
		results := make(chan result, clients)
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, err := slowPost(tc.addr, tc.host, tc.path, c.adminToken(), tc.limit+30*time.Second)
				results <- result{code, time.Since(start), err}
			}()
		}
		wg.Wait()
		close(results)
		cut, early := 0, 0
		var last time.Duration
		for r := range results {
			if r.err != nil {
				t.Errorf("%s: slow client: %v", tc.name, r.err)
				continue
			}
			if r.code == http.StatusRequestTimeout {
				cut++
			}
			if r.took < tc.limit {
				early++
			}
			last = max(last, r.took)
		}
		t.Logf("%s: %d of %d slow clients answered 408, %d before the %s limit; the last after %s", tc.name, cut, clients, early, tc.limit, last.Round(time.Millisecond))
		if cut != clients || early != 0 {
			t.Errorf("%s: %d of %d slow clients answered 408, %d before the limit; want all at the limit", tc.name, cut, clients, early)
		}
	}
	c.onlyVersion(service, "1")
}

// slowPost sends the headers of a POST announcing 1000 bytes and 10 of
// them, then nothing, and returns the status of the answer.
func slowPost(addr, host, path, token string, wait time.Duration) (int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"version\":", path, host, token)
	conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// adminToken is the server's admin token.
func (c *cluster) adminToken() string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.serverDir, "admin.token"))
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
