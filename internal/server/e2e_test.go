package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/server"
)

// TestStrategies releases v1 then v2 with each strategy under steady load:
// no request fails (recreate excepted: it has downtime by design), only v2
// answers afterwards, the release record counted the traffic, and the old
// group's processes are gone.
func TestStrategies(t *testing.T) {
	for _, name := range []string{"recreate", "rolling", "blue_green", "blue_green_spread", "canary"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t)
			strategy := strings.TrimSuffix(name, "_spread")
			m := manifest{Strategy: strategy}
			if name == "blue_green_spread" {
				// Launch ceil(2×1.5) = 3, switch when 1 is healthy, keep 2;
				// with a pre_deploy hook that succeeds.
				m.Spread = 0.5
				m.PreDeploy = true
			}
			if strategy == "canary" {
				m.Canary = `
      step {
        weight = 20
        pause  = "1s"
      }
      step {
        weight = 60
        pause  = "1s"
      }
      analysis {
        max_error_rate_increase = 0.05
        max_latency_p99_ratio   = 1000
        min_requests            = 20
      }`
			}
			c.writeManifest(m)
			mustState(t, c.deploy(service, "1"), "Success")
			c.onlyVersion(service, "1")
			oldGroup, oldPids := c.servingGroup(service)
			if len(oldPids) != 2 {
				t.Fatalf("v1 group %s has pids %v, want 2", oldGroup, oldPids)
			}

			stop := c.load(service)
			// Slow requests too, longer than scale_down_delay: instances taken
			// out of traffic must finish them before they stop.
			stopSlow := c.loadPath(service, "/slow?ms=1500", 2, 0)
			start := time.Now()
			// The CLI path a person takes: deploy --wait exits 0 only on Success.
			out, err := c.cli("deploy", service, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "2", "--yes", "--wait")
			res, slow := stop(), stopSlow()
			if err != nil {
				t.Fatalf("runway deploy --wait: %v\n%s", err, out)
			}
			list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Environment: env, Service: service, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			rel, err := c.api.Release(context.Background(), list[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("served %s requests during the release, %s failed", groupDigits(rel.Served), groupDigits(rel.Failed)); !strings.Contains(out, want) {
				t.Errorf("runway deploy --wait does not report %q:\n%s", want, out)
			}
			t.Logf("%s v1→v2 took %s", name, time.Since(start).Round(time.Millisecond))
			mustState(t, rel, "Success")
			if strategy != "recreate" {
				noFailures(t, name+" v1→v2", res)
				noFailures(t, name+" v1→v2, slow requests", slow)
				if rel.Failed != 0 || rel.Served == 0 {
					t.Errorf("release record: served %d, failed %d; want served > 0, failed 0", rel.Served, rel.Failed)
				}
			} else if rel.Served == 0 {
				t.Errorf("release record: served %d, want > 0", rel.Served)
			}
			c.onlyVersion(service, "2")
			c.gone(service, oldGroup, oldPids)
			group, pids := c.servingGroup(service)
			// The new group ends at the desired count (spread: scaled down
			// from 3) and runs no more processes than that.
			waitFor(t, 30*time.Second, "the new group to run 2 instances", func() bool {
				gs := c.groups(service)
				live := 0
				for _, in := range gs[0].Instances {
					if alive(in.PID) {
						live++
					}
				}
				return len(gs) == 1 && gs[0].Name == group && len(gs[0].Instances) == 2 && live == 2
			})
			if len(pids) < 2 {
				t.Errorf("the new group had pids %v", pids)
			}
		})
	}
}

// canarySteps is one canary step judged on errors (the latency ratio is set
// out of reach): the p99 of the hundred-odd requests a canary gets in a test
// is noise on a loaded machine (a server restart alone added 30 ms to one).
const canarySteps = `
      step {
        weight = 30
        pause  = "1500ms"
      }
      analysis {
        max_error_rate_increase = 0.05
        max_latency_p99_ratio   = 1000
        min_requests            = 20
      }`

// failedRelease checks what every failed release must leave: FailureClean
// with the given error kind, v1 (the same group, the same processes) serving
// all traffic alone, and no request failed.
func (c *cluster) failedRelease(rel *apiwire.ReleaseDetail, kind, group string, pids []int) {
	t := c.t
	t.Helper()
	mustState(t, rel, "FailureClean")
	if rel.ErrorKind != kind {
		t.Errorf("release ended with %s (%s), want %s", rel.ErrorKind, rel.Error, kind)
	}
	// A release failing in its first step (pre_deploy) may end before the
	// proxy served any request; every other one runs for seconds.
	if rel.Failed != 0 || (rel.Served == 0 && kind != "DeployError") {
		t.Errorf("release record: served %d, failed %d; want served > 0, failed 0", rel.Served, rel.Failed)
	}
	g, now := c.servingGroup(service)
	if g != group {
		t.Errorf("after the failed release %s serves, want %s", g, group)
	}
	if !slices.Equal(now, pids) {
		t.Errorf("v1 pids are %v, were %v", now, pids)
	}
	c.onlyVersion(service, "1")
}

// TestNeverHealthy releases a v2 that never turns healthy: the release ends
// FailureClean by its timeout while v1 keeps serving every request.
func TestNeverHealthy(t *testing.T) {
	for _, tc := range []struct {
		name string
		v2   manifest
		kind string // default Timeout
	}{
		// An invalid BOOT_DELAY makes hello exit 1 at once, again and again.
		{"crashing v2 stops past max_terms", manifest{MaxTerms: 2, Env: map[string]string{"BOOT_DELAY": "soon"}}, "DeployError"},
		{"pre_deploy hook fails", manifest{PreDeploy: true, Env: map[string]string{"MIGRATE_FAIL": "1"}}, "DeployError"},
		// FAIL_RATE=1 makes / answer 500, and / is the health path.
		{"health check fails", manifest{HealthPath: "/", Env: map[string]string{"FAIL_RATE": "1"}}, ""},
		{"boot delay beyond timeout", manifest{Env: map[string]string{"BOOT_DELAY": "60s"}}, ""},
		{"rolling boot delay beyond timeout", manifest{Strategy: "rolling", Env: map[string]string{"BOOT_DELAY": "60s"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t)
			c.writeManifest(manifest{Strategy: tc.v2.Strategy})
			mustState(t, c.deploy(service, "1"), "Success")
			group, pids := c.servingGroup(service)
			tc.v2.Timeout = "3s"
			if tc.kind == "" {
				tc.kind = "Timeout"
			}
			c.writeManifest(tc.v2)
			stop := c.load(service)
			rel := c.deploy(service, "2")
			noFailures(t, tc.name, stop())
			c.failedRelease(rel, tc.kind, group, pids)
			t.Logf("%s: %s", rel.ErrorKind, rel.Error)
		})
	}
}

// TestCanaryAnalysisFailed releases a canary v2 that fails a fifth of its
// requests: the analysis rejects it and v1 serves everything again.
func TestCanaryAnalysisFailed(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Strategy: "canary", Canary: canarySteps})
	mustState(t, c.deploy(service, "1"), "Success")
	group, pids := c.servingGroup(service)
	c.writeManifest(manifest{Strategy: "canary", Canary: canarySteps, Env: map[string]string{"FAIL_RATE": "0.2"}})
	stop := c.load(service)
	rel := c.deploy(service, "2")
	res := stop()
	t.Logf("canary with FAIL_RATE=0.2: %s", res)
	// The canary's own 500s are the only failures: the proxy failed none.
	for _, f := range res.Failures {
		if f.Status != http.StatusInternalServerError || !strings.Contains(f.Err, "injected failure") {
			t.Errorf("a request failed other than by FAIL_RATE: %+v", f)
		}
	}
	if _, _, versions := res.Snapshot(); versions["2"] == 0 {
		t.Errorf("the canary answered no request: %s", res)
	}
	c.failedRelease(rel, "AnalysisFailed", group, pids)
}

// TestHalt halts a canary while it takes 30 % of the traffic: the release
// ends FailureClean and v1 alone is routed again.
func TestHalt(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	long := strings.Replace(canarySteps, "1500ms", "60s", 1)
	c.writeManifest(manifest{Strategy: "canary", Canary: long, Timeout: "120s"})
	mustState(t, c.deploy(service, "1"), "Success")
	group, pids := c.servingGroup(service)
	stop := c.load(service)
	rel := c.submit(service, "2")
	waitFor(t, 30*time.Second, "the canary to take traffic", func() bool {
		st, err := c.api.Status(context.Background(), projectName, env, service)
		return err == nil && len(st.Routes) == 2
	})
	if out, err := c.cli("halt", service, "--env", env, "--reason", "e2e halt"); err != nil {
		t.Fatalf("runway halt: %v\n%s", err, out)
	}
	done := c.wait(rel.ID, 30*time.Second)
	noFailures(t, "halted canary", stop())
	c.failedRelease(done, "Halted", group, pids)
	if !strings.Contains(done.Error, "e2e halt") {
		t.Errorf("release error %q does not give the halt's reason", done.Error)
	}
}

// TestHaltRolling halts a rolling release once the old group has shrunk:
// the old group grows back (new processes) before the traffic returns to it,
// and v1 alone serves, at its full count, with no failed request.
func TestHaltRolling(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Strategy: "rolling", Desired: 3})
	mustState(t, c.deploy(service, "1"), "Success")
	group, _ := c.servingGroup(service)
	// Each new instance takes a second to boot, so the release is slow.
	c.writeManifest(manifest{Strategy: "rolling", Desired: 3, Env: map[string]string{"BOOT_DELAY": "1s"}})
	stop := c.load(service)
	rel := c.submit(service, "2")
	waitFor(t, 30*time.Second, "the old group to shrink", func() bool {
		for _, g := range c.groups(service) {
			if g.Name == group && g.Spec.Instances < 3 {
				return true
			}
		}
		return false
	})
	if out, err := c.cli("halt", service, "--env", env); err != nil {
		t.Fatalf("runway halt: %v\n%s", err, out)
	}
	done := c.wait(rel.ID, 30*time.Second)
	noFailures(t, "halted rolling", stop())
	mustState(t, done, "FailureClean")
	if done.ErrorKind != "Halted" || done.Failed != 0 {
		t.Errorf("release ended %s (%s), failed %d; want Halted, 0 failed", done.ErrorKind, done.Error, done.Failed)
	}
	g, pids := c.servingGroup(service)
	if g != group || len(pids) != 3 {
		t.Errorf("after the halt %s serves with %d instances, want %s with 3", g, len(pids), group)
	}
	c.onlyVersion(service, "1")
}

// TestTimeoutHalfRouted lets a canary run out of deploy.timeout while it
// takes 30 % of the traffic (its analysis never gets the requests it needs):
// the release ends FailureClean with v1 alone routed again.
func TestTimeoutHalfRouted(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	undecided := strings.Replace(canarySteps, "min_requests            = 20", "min_requests            = 1000000", 1)
	c.writeManifest(manifest{Strategy: "canary", Canary: undecided, Timeout: "4s"})
	// v1 is the first release: no stable group to compare with, no analysis.
	mustState(t, c.deploy(service, "1"), "Success")
	group, pids := c.servingGroup(service)
	stop := c.load(service)
	rel := c.submit(service, "2")
	waitFor(t, 30*time.Second, "the canary to take traffic", func() bool {
		st, err := c.api.Status(context.Background(), projectName, env, service)
		return err == nil && len(st.Routes) == 2
	})
	done := c.wait(rel.ID, 30*time.Second)
	noFailures(t, "canary past its timeout", stop())
	c.failedRelease(done, "Timeout", group, pids)
}

// TestCrashSafety kills the server (SIGKILL, at a precise point through the
// test-only RUNWAY_TEST_FAULT) at each state boundary of a blue_green
// release in turn, and restarts it on the same data dir: every release ends
// Success, only its group is left, the lock is free (the next release takes
// it), and the agent served every request throughout.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "1"), "Success")
	stop := c.load(service)
	// Blue/green without preview: Deploy is 0 ensure group, 1 wait healthy,
	// 2 route; CleanUpSuccess is 0 pause (scale_down_delay), 1 delete old.
	// A failing v2 (its health check answers 500) takes the failure path,
	// CleanUpFailure: 0 ensure the old group, 1 wait healthy, 2 remove the
	// preview, 3 route back, 4 delete the new group.
	type crashPoint struct {
		at   string
		fail bool
	}
	var points []crashPoint
	for _, p := range []string{
		"Lock", "ValidateResources", "Deploy:0", "Deploy:1", "Deploy:1:after", "Deploy:2:after",
		"CheckHealthy", "CleanUpSuccess:0", "CleanUpSuccess:1", "CleanUpSuccess:1:after", "ReleaseLock",
	} {
		points = append(points, crashPoint{at: p})
	}
	for _, p := range []string{"CleanUpFailure", "CleanUpFailure:3", "CleanUpFailure:4", "ReleaseLockFailure"} {
		points = append(points, crashPoint{at: p, fail: true})
	}
	serving := "1"
	for i, point := range points {
		version := strconv.Itoa(i + 2)
		want := "Success"
		if point.fail {
			want = "FailureClean"
			c.writeManifest(manifest{HealthPath: "/", Timeout: "2s", Env: map[string]string{"FAIL_RATE": "1"}})
		} else {
			c.writeManifest(manifest{})
		}
		rel := c.crashAt(point.at, version, nil)
		done := c.wait(rel.ID, 60*time.Second)
		mustState(t, done, want)
		if done.Failed != 0 || done.Served == 0 {
			t.Errorf("after the crash at %s the release record says served %d, failed %d", point.at, done.Served, done.Failed)
		}
		if want == "Success" {
			serving = version
		}
		c.onlyVersion(service, serving)
		waitFor(t, 30*time.Second, "only the serving group to be left", func() bool {
			return len(c.groups(service)) == 1
		})
		c.servingGroup(service)
		t.Logf("killed at %s: release %s resumed to %s", point.at, rel.ID, done.State)
	}
	// The lock is free: one more release takes it and succeeds.
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "final"), "Success")
	noFailures(t, "crashes", stop())
	c.onlyVersion(service, "final")
}

// crashAt restarts the server with RUNWAY_TEST_FAULT=point, submits a
// release of version through the API, waits for the server to kill itself
// there, calls whileDown (if any) and starts the server again. The server
// may die before it answers the request; the client then does what a client
// should, and sends the same request (same request id) again, which must
// find or finish the one release it made.
func (c *cluster) crashAt(point, version string, whileDown func(created time.Time)) *apiwire.Release {
	t := c.t
	t.Helper()
	c.server.stop(t, syscall.SIGTERM)
	c.serverEnv = []string{server.TestFaultEnv + "=" + point}
	c.startServer()
	req := c.deployRequest(service, version)
	first, firstErr := c.api.Deploy(context.Background(), req)
	select {
	case <-c.server.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the server did not kill itself at %s", point)
	}
	if !strings.Contains(c.server.out.String(), "killing the server at "+point) {
		t.Fatalf("the server ended otherwise than at %s:\n%s", point, c.server.out)
	}
	if whileDown != nil {
		whileDown(req.RequestedAt)
	}
	c.serverEnv = nil
	c.startServer()
	again, err := c.api.Deploy(context.Background(), req)
	if err != nil {
		t.Fatalf("the request retried after the crash at %s: %v", point, err)
	}
	if firstErr == nil && again.ID != first.ID {
		t.Fatalf("the retried request made release %s, the first made %s", again.ID, first.ID)
	}
	if firstErr != nil {
		t.Logf("the server died before answering (%v); the retry found release %s", firstErr, again.ID)
	}
	list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Environment: env, Service: service, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if list[0].ID != again.ID || (len(list) > 1 && list[1].Version == version) {
		t.Fatalf("the crash and the retry left releases %s v%s and %s v%s, want one release of v%s", list[0].ID, list[0].Version, list[1].ID, list[1].Version, version)
	}
	return again
}

// TestCrashSafetyStrategies kills the server inside rolling and canary
// releases: while the old group is shrunk, during a canary pause and
// analysis, after the last step; and lets deploy.timeout pass while the
// server is down, so the restarted server rolls back from there (re-growing a
// shrunk old group).
func TestCrashSafetyStrategies(t *testing.T) {
	type crashPoint struct {
		at string
		// expire: the server stays down past deploy.timeout (3s), so the
		// release resumes into a rollback.
		expire bool
	}
	for _, tc := range []struct {
		strategy string
		points   []crashPoint
	}{
		// Rolling, desired 2, surge 1: Deploy 0 ensure new 1, 1 wait, 2-3
		// routes, 4 shrink old to 1, 5 grow new to 2, 6 wait, 7-8 routes,
		// 9 shrink old to 0.
		{"rolling", []crashPoint{{"Deploy:4:after", false}, {"Deploy:6", false}, {"Deploy:9:after", false},
			{"Deploy:4:after", true}, {"Deploy:8:after", true}}},
		// Canary: Deploy 0 ensure, 1 wait, 2 route 30 %, 3 pause, 4 analyze,
		// 5 grow, 6 wait, 7 route 100 %; CleanUpSuccess 0 pause, 1 delete old.
		{"canary", []crashPoint{{"Deploy:3", false}, {"Deploy:4", false}, {"Deploy:7:after", false},
			{"Deploy:3", true}}},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t)
			c.writeManifest(manifest{Strategy: tc.strategy, Canary: canarySteps})
			mustState(t, c.deploy(service, "1"), "Success")
			stop := c.load(service)
			serving := "1"
			for i, p := range tc.points {
				version := strconv.Itoa(i + 2)
				timeout := "60s"
				if p.expire {
					timeout = "3s"
				}
				c.writeManifest(manifest{Strategy: tc.strategy, Canary: canarySteps, Timeout: timeout})
				rel := c.crashAt(p.at, version, func(created time.Time) {
					if p.expire {
						deadline := created.Add(3 * time.Second)
						waitFor(t, 30*time.Second, "deploy.timeout to pass", func() bool { return time.Now().After(deadline) })
					}
				})
				done := c.wait(rel.ID, 60*time.Second)
				want := "Success"
				if p.expire {
					want = "FailureClean"
				} else {
					serving = version
				}
				mustState(t, done, want)
				if done.Failed != 0 || done.Served == 0 {
					t.Errorf("after the crash at %s the release record says served %d, failed %d", p.at, done.Served, done.Failed)
				}
				c.onlyVersion(service, serving)
				waitFor(t, 30*time.Second, "only the serving group to be left", func() bool {
					return len(c.groups(service)) == 1
				})
				_, pids := c.servingGroup(service)
				if len(pids) != 2 {
					t.Errorf("after the crash at %s the serving group runs %d instances, want 2", p.at, len(pids))
				}
				t.Logf("killed at %s (timeout passed while down: %v): release %s resumed to %s %s", p.at, p.expire, rel.ID, done.State, done.ErrorKind)
			}
			noFailures(t, tc.strategy+" crashes", stop())
		})
	}
}

// TestLocks submits two releases of one service at once: the second ends
// with LockExists while the first succeeds. Releases of two services run
// side by side and both succeed.
func TestLocks(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{})
	c.writeManifest(manifest{Service: "world"})
	mustState(t, c.deploy(service, "1"), "Success")
	mustState(t, c.deploy("world", "1"), "Success")

	stopHello, stopWorld := c.load(service), c.load("world")
	// v2 boots slowly, so the first release holds the lock for a while.
	c.writeManifest(manifest{Env: map[string]string{"BOOT_DELAY": "1s"}})
	first := c.submit(service, "2")
	waitFor(t, 30*time.Second, "the first release to hold the lock", func() bool {
		r, err := c.api.Release(context.Background(), first.ID)
		return err == nil && r.State == "Deploy"
	})
	second := c.deploy(service, "3")
	mustState(t, second, "FailureClean")
	if second.ErrorKind != "LockExists" {
		t.Errorf("second release: %s (%s), want LockExists", second.ErrorKind, second.Error)
	}
	mustState(t, c.wait(first.ID, 60*time.Second), "Success")
	c.onlyVersion(service, "2")

	// Two releases of one service submitted at the same moment: exactly one
	// takes the lock.
	c.writeManifest(manifest{})
	var wg sync.WaitGroup
	ids := make([]string, 2)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := c.cli("deploy", service, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "3", "--yes", "--output", "json")
			var r apiwire.Release
			if err != nil || json.Unmarshal([]byte(out), &r) != nil {
				t.Errorf("runway deploy: %v\n%s", err, out)
				return
			}
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	kinds := map[string]int{}
	for _, id := range ids {
		r := c.wait(id, 60*time.Second)
		kinds[r.State+"/"+r.ErrorKind]++
	}
	if kinds["Success/"] != 1 || kinds["FailureClean/LockExists"] != 1 {
		t.Errorf("two simultaneous releases ended %v, want one Success and one LockExists", kinds)
	}
	c.onlyVersion(service, "3")

	// Two services at once.
	c.writeManifest(manifest{})
	c.writeManifest(manifest{Service: "world"})
	a, b := c.submit(service, "4"), c.submit("world", "4")
	ra, rb := c.wait(a.ID, 60*time.Second), c.wait(b.ID, 60*time.Second)
	mustState(t, ra, "Success")
	mustState(t, rb, "Success")
	if ra.CreatedAt.After(*rb.FinishedAt) || rb.CreatedAt.After(*ra.FinishedAt) {
		t.Errorf("the releases of hello and world did not overlap")
	}
	noFailures(t, "hello", stopHello())
	noFailures(t, "world", stopWorld())
	c.onlyVersion(service, "4")
	c.onlyVersion("world", "4")
}

// TestRollback rolls back inside scale_down_delay (the previous group still
// runs: traffic switches straight back to it) and after it (a new release of
// the previous version).
func TestRollback(t *testing.T) {
	t.Run("after scale_down_delay", func(t *testing.T) {
		t.Parallel()
		c := startCluster(t)
		c.writeManifest(manifest{})
		v1 := c.deploy(service, "1")
		mustState(t, v1, "Success")
		mustState(t, c.deploy(service, "2"), "Success")
		oldGroup, oldPids := c.servingGroup(service)
		stop := c.load(service)
		out, err := c.cli("rollback", service, "--env", env, "--wait")
		if err != nil {
			t.Fatalf("runway rollback: %v\n%s", err, out)
		}
		noFailures(t, "rollback", stop())
		list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Environment: env, Service: service, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r := list[0]; r.Version != "1" || r.RollbackOf != v1.ID || r.State != "Success" {
			t.Errorf("the rollback release is %s v%s (rollback of %q), want a Success of v1 rolling back to %s", r.State, r.Version, r.RollbackOf, v1.ID)
		}
		c.onlyVersion(service, "1")
		c.gone(service, oldGroup, oldPids)
	})
	t.Run("inside scale_down_delay", func(t *testing.T) {
		t.Parallel()
		c := startCluster(t)
		c.writeManifest(manifest{ScaleDownDelay: "60s", Timeout: "120s"})
		mustState(t, c.deploy(service, "1"), "Success")
		group, pids := c.servingGroup(service)
		stop := c.load(service)
		rel := c.submit(service, "2")
		waitFor(t, 30*time.Second, "v2 to serve inside scale_down_delay", func() bool {
			r, err := c.api.Release(context.Background(), rel.ID)
			return err == nil && r.State == "CleanUpSuccess"
		})
		c.onlyVersion(service, "2")
		start := time.Now()
		out, err := c.cli("rollback", service, "--env", env, "--wait")
		if err != nil {
			t.Fatalf("runway rollback: %v\n%s", err, out)
		}
		took := time.Since(start)
		t.Logf("rollback inside scale_down_delay took %s:\n%s", took.Round(time.Millisecond), out)
		if took > 30*time.Second {
			t.Errorf("the rollback took %s: it waited for scale_down_delay instead of switching back", took)
		}
		noFailures(t, "rollback inside scale_down_delay", stop())
		// The same v1 processes serve again: nothing was restarted.
		g, now := c.servingGroup(service)
		if g != group || !slices.Equal(now, pids) {
			t.Errorf("after the rollback %s %v serves, want the v1 group %s %v", g, now, group, pids)
		}
		c.onlyVersion(service, "1")
	})
}

// TestCrashObserved kills the server with SIGKILL, without any hook, when
// it observes a rolling or canary release with both versions routed, and
// restarts it: the release resumes to Success and no request fails.
func TestCrashObserved(t *testing.T) {
	for _, strategy := range []string{"rolling", "canary"} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t)
			m := manifest{Strategy: strategy, Desired: 3}
			if strategy == "canary" {
				m.Canary = canarySteps
			}
			c.writeManifest(m)
			mustState(t, c.deploy(service, "1"), "Success")
			stop := c.load(service)
			rel := c.submit(service, "2")
			waitFor(t, 30*time.Second, "both versions to be routed", func() bool {
				st, err := c.api.Status(context.Background(), projectName, env, service)
				return err == nil && len(st.Routes) == 2
			})
			c.killServer()
			c.startServer()
			done := c.wait(rel.ID, 60*time.Second)
			noFailures(t, strategy+" killed mid-release", stop())
			mustState(t, done, "Success")
			c.onlyVersion(service, "2")
			c.servingGroup(service)
		})
	}
}

// groupDigits formats 18342 as "18,342", as the CLI prints counts.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestProtectionIsTheServers: a protected environment refuses the recreate
// strategy (it has downtime): the CLI with a diagnostic, and the server too
// for a client that calls the API directly — whether it sends a recreate
// manifest as it is, or a runway.hcl that says the environment is not
// protected. Nothing runs: the serving group keeps its processes.
func TestProtectionIsTheServers(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Strategy: "recreate", Protected: true})
	out, err := c.cli("deploy", service, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "1", "--yes")
	if err == nil || !strings.Contains(out, "recreate is refused in a protected environment") {
		t.Fatalf("runway deploy of recreate to a protected environment: %v\n%s", err, out)
	}

	c.writeManifest(manifest{Protected: true})
	v1 := c.deploy(service, "1")
	mustState(t, v1, "Success")
	group, pids := c.servingGroup(service)

	// The manifest asks for recreate: refused with the located diagnostic.
	req := c.deployRequest(service, "2")
	req.Sources[0].Content = strings.Replace(req.Sources[0].Content, `strategy         = "blue_green"`, `strategy         = "recreate"`, 1)
	_, err = c.api.Deploy(context.Background(), req)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 422 || len(ce.Diagnostics) != 1 || ce.Diagnostics[0].Summary != "recreate is refused in a protected environment" ||
		ce.Diagnostics[0].File != "hello.service.hcl" || ce.Diagnostics[0].Line == 0 {
		t.Fatalf("raw API deploy of recreate to a protected environment: %v (%+v)", err, ce)
	}
	// The client claims the environment is not protected: its runway.hcl is
	// not the server's, so the request is refused, naming the difference.
	req.RequestID = ulid.Make().String()
	req.ProjectSource = strings.Replace(req.ProjectSource, "protected = true", "protected = false", 1)
	_, err = c.api.Deploy(context.Background(), req)
	if !client.IsKind(err, "ProjectChanged") || !strings.Contains(err.Error(), "environments[dev].protected: true → false") {
		t.Fatalf("raw API deploy with an unprotected runway.hcl: %v", err)
	}
	list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Project: projectName, Environment: env, Service: service})
	if err != nil || len(list) != 1 {
		t.Fatalf("refused requests made releases: %d (%v)", len(list), err)
	}
	g, now := c.servingGroup(service)
	if g != group || !slices.Equal(now, pids) {
		t.Errorf("after the refused requests %s %v serves, want %s %v", g, now, group, pids)
	}
}
