package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
	"github.com/runwayhq/runway/internal/target/fake"
)

func dur(d time.Duration) config.Duration { return config.Duration{Duration: d} }

// harness is a real SQLite store, the fake target and an engine.
type harness struct {
	t   *testing.T
	st  *store.SQLite
	sim *fake.Target
	eng *Engine
	ref target.ServiceRef
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, st: st, sim: newFake(t), ref: target.ServiceRef{Environment: "staging", Service: "web"}}
	h.eng = h.newEngine(nil)
	t.Cleanup(func() { h.eng.Close() })
	return h
}

func (h *harness) newEngine(fault func(string, boundary) bool) *Engine {
	e := New(h.st, Drivers{"local": h.sim}, Options{PollInterval: 2 * time.Millisecond, LockTTL: testLockTTL, CleanupTimeout: 3 * time.Second})
	e.fault = fault
	return e
}

// restart stops the engine (as a crash would) and starts a new one on the
// same store and target, which resumes unfinished releases.
func (h *harness) restart(fault func(string, boundary) bool) {
	h.t.Helper()
	h.eng.Close()
	h.eng = h.newEngine(fault)
	if err := h.eng.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// service is a manifest with small, fast settings.
func service(strategyName, version string, env ...string) config.Service {
	e := map[string]string{}
	for i := 0; i+1 < len(env); i += 2 {
		e[env[i]] = env[i+1]
	}
	return config.Service{
		Name: "web", Version: version, Command: []string{"./web"}, Env: e,
		Scale: config.Scale{Min: 1, Desired: 2, Max: 10},
		Deploy: config.Deploy{
			Strategy: strategyName, Timeout: dur(10 * time.Second),
			ScaleDownDelay: dur(20 * time.Millisecond), DrainTimeout: dur(0),
			Rolling: config.Rolling{MaxSurge: 1},
			Canary: config.Canary{
				Steps:    []*config.CanaryStep{{Weight: 25, Pause: dur(20 * time.Millisecond)}, {Weight: 50, Pause: dur(20 * time.Millisecond)}},
				Analysis: config.Analysis{MaxErrorRateIncrease: 0.05, MaxLatencyP99Ratio: 1.5, MinRequests: 10},
			},
		},
	}
}

func (h *harness) submit(svc config.Service) *store.Release {
	h.t.Helper()
	r, err := h.eng.Submit(context.Background(), Request{Environment: h.ref.Environment, Service: svc, CreatedBy: "test"})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) wait(id string) *store.Release {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := h.eng.Wait(ctx, id)
	if err != nil {
		h.t.Fatalf("wait for release %s: %v", id, err)
	}
	return r
}

func (h *harness) deploy(svc config.Service) *store.Release {
	h.t.Helper()
	return h.wait(h.submit(svc).ID)
}

// waitState waits until the release reaches state s.
func (h *harness) waitState(id string, s State) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r, err := h.st.GetRelease(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		if State(r.State) == s {
			return
		}
		if r.Done {
			h.t.Fatalf("release ended %s (%s: %s) before reaching %s", r.State, r.ErrorKind, r.Error, s)
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("release never reached %s", s)
}

func groupOf(r *store.Release) string {
	return strategy.GroupName("web", r.ID, fake.DefaultCapabilities.GroupNameMax)
}

// assertServing checks that exactly group runs (with n instances) and
// receives all traffic, and that no lock is left.
func (h *harness) assertServing(group string, n int) {
	h.t.Helper()
	groups, routes := h.sim.Snapshot(h.ref)
	if !reflect.DeepEqual(groups, map[string]int{group: n}) {
		h.t.Errorf("groups = %v, want only %s with %d instances", groups, group, n)
	}
	if len(routes) != 1 || routes[0].Group != group {
		h.t.Errorf("routes = %v, want all traffic on %s", routes, group)
	}
	h.assertNoLocks()
}

func (h *harness) assertNoLocks() {
	h.t.Helper()
	ls, err := h.st.ListLocks(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	if len(ls) != 0 {
		h.t.Errorf("locks left: %+v", ls)
	}
}

func assertEnd(t *testing.T, r *store.Release, state State, kind error) {
	t.Helper()
	if State(r.State) != state {
		t.Fatalf("release ended %s (%s: %s), want %s", r.State, r.ErrorKind, r.Error, state)
	}
	if kind == nil && r.ErrorKind != "" {
		t.Errorf("unexpected error %s: %s", r.ErrorKind, r.Error)
	}
	if kind != nil && r.ErrorKind != kind.Error() {
		t.Errorf("error kind %q (%s), want %q", r.ErrorKind, r.Error, kind)
	}
}

func TestStrategiesReplaceTheRelease(t *testing.T) {
	for _, name := range []string{strategy.Recreate, strategy.Rolling, strategy.BlueGreen, strategy.Canary} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			v1 := h.deploy(service(name, "v1"))
			assertEnd(t, v1, StateSuccess, nil)
			h.assertServing(groupOf(v1), 2)

			v2 := h.deploy(service(name, "v2"))
			assertEnd(t, v2, StateSuccess, nil)
			h.assertServing(groupOf(v2), 2)
			if name != strategy.Recreate && v2.Failed != 0 {
				t.Errorf("%d requests failed during a %s release", v2.Failed, name)
			}
			if name != strategy.Recreate && v2.Served == 0 {
				t.Error("no request counted during the release")
			}
			if v2.Version != "v2" || !strings.HasPrefix(v2.Digest, "sha256:") || v2.FinishedAt.IsZero() {
				t.Errorf("release record %+v", v2)
			}
			// The events tell the whole story, in order.
			evs, err := h.st.ListEvents(context.Background(), v2.ID)
			if err != nil {
				t.Fatal(err)
			}
			var states []string
			for _, e := range evs {
				if e.Step < 0 && (len(states) == 0 || states[len(states)-1] != e.State) {
					states = append(states, e.State)
				}
			}
			want := []string{"Validate", "Lock", "ValidateResources", "Deploy", "CheckHealthy", "CleanUpSuccess", "ReleaseLock", "Success"}
			if !reflect.DeepEqual(states, want) {
				t.Errorf("states %v, want %v", states, want)
			}
		})
	}
}

func TestNewReleaseKeepsRunningCount(t *testing.T) {
	h := newHarness(t)
	v1 := h.deploy(service(strategy.BlueGreen, "v1"))
	h.sim.ScaleTo(groupOf(v1), 3) // an autoscaler added one
	time.Sleep(20 * time.Millisecond)
	v2 := h.deploy(service(strategy.BlueGreen, "v2"))
	assertEnd(t, v2, StateSuccess, nil)
	h.assertServing(groupOf(v2), 3)
}

func TestFailuresEndClean(t *testing.T) {
	tests := []struct {
		name     string
		strategy string
		v2       func(*config.Service)
		kind     error
	}{
		{"never healthy, blue_green", strategy.BlueGreen, func(s *config.Service) {
			s.Env["FAKE_HEALTH"] = "never"
			s.Deploy.Timeout = dur(150 * time.Millisecond)
		}, ErrTimeout},
		{"never healthy, rolling", strategy.Rolling, func(s *config.Service) {
			s.Env["FAKE_HEALTH"] = "never"
			s.Deploy.Timeout = dur(150 * time.Millisecond)
		}, ErrTimeout},
		{"never healthy, canary", strategy.Canary, func(s *config.Service) {
			s.Env["FAKE_HEALTH"] = "never"
			s.Deploy.Timeout = dur(150 * time.Millisecond)
		}, ErrTimeout},
		{"never healthy, recreate brings the old release back", strategy.Recreate, func(s *config.Service) {
			s.Env["FAKE_HEALTH"] = "never"
			s.Deploy.Timeout = dur(150 * time.Millisecond)
		}, ErrTimeout},
		{"crashing instances pass max_terms", strategy.BlueGreen, func(s *config.Service) {
			s.Env["FAKE_HEALTH"] = "crash"
			s.Scale.MaxTerms = 3
		}, ErrDeploy},
		{"canary with 20% errors", strategy.Canary, func(s *config.Service) {
			s.Env["FAKE_ERROR_RATE"] = "0.2"
		}, ErrAnalysisFailed},
		{"canary with slow p99", strategy.Canary, func(s *config.Service) {
			s.Env["FAKE_P99_MS"] = "40"
		}, ErrAnalysisFailed},
		{"canary never gets min_requests", strategy.Canary, func(s *config.Service) {
			s.Deploy.Canary.Analysis.MinRequests = 1 << 30
			s.Deploy.Timeout = dur(200 * time.Millisecond)
		}, ErrTimeout},
		{"pre_deploy exits 3", strategy.BlueGreen, func(s *config.Service) {
			s.Hooks.PreDeploy = []string{"./migrate"}
			s.Env["FAKE_TASK_EXIT"] = "3"
		}, ErrDeploy},
		{"resources missing", strategy.Rolling, func(s *config.Service) {
			s.Env["FAKE_INVALID"] = "command ./web not found"
		}, ErrBadRelease},
		{"unknown strategy", "yolo", func(*config.Service) {}, ErrBadRelease},
		{"recreate in a protected environment", strategy.Recreate, func(*config.Service) {}, ErrBadRelease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			v1 := h.deploy(service(strategy.BlueGreen, "v1"))
			svc := service(tt.strategy, "v2")
			tt.v2(&svc)
			r, err := h.eng.Submit(context.Background(), Request{Environment: "staging", Service: svc,
				Protected: tt.name == "recreate in a protected environment"})
			if err != nil {
				t.Fatal(err)
			}
			end := h.wait(r.ID)
			assertEnd(t, end, StateFailureClean, tt.kind)
			h.assertServing(groupOf(v1), 2)
			if tt.strategy != strategy.Recreate && !strings.Contains(tt.name, "errors") && end.Failed != 0 {
				t.Errorf("%d requests failed", end.Failed)
			}
			e := errorFromRecord(end.ErrorKind, end.Error)
			if !errors.Is(e, tt.kind) {
				t.Errorf("errors.Is(%v, %v) is false", e, tt.kind)
			}
			if tt.kind == ErrBadRelease && strings.Contains(tt.name, "missing") && !strings.Contains(end.Error, "second problem") {
				t.Errorf("not every problem reported: %s", end.Error)
			}
		})
	}
}

// TestPlanReadsCapabilities: the engine plans within what the release's
// target declares: group names within its budget (the fake refuses longer
// ones), and a preview on a target without one is a bad release naming why,
// before anything is touched.
func TestPlanReadsCapabilities(t *testing.T) {
	withCaps := func(t *testing.T, change func(*target.Capabilities)) *harness {
		h := newHarness(t)
		caps := fake.DefaultCapabilities
		change(&caps)
		h.sim = fake.New(fake.Options{Capabilities: caps})
		t.Cleanup(h.sim.Close)
		h.restart(nil)
		return h
	}
	t.Run("group names within the budget", func(t *testing.T) {
		h := withCaps(t, func(c *target.Capabilities) { c.GroupNameMax = 20 })
		end := h.deploy(service(strategy.BlueGreen, "v1"))
		assertEnd(t, end, StateSuccess, nil)
		groups, _ := h.sim.Snapshot(h.ref)
		for g := range groups {
			if len(g) > 20 || !strings.HasPrefix(g, "web-") {
				t.Errorf("group %q: want web-<hash> of at most 20 characters", g)
			}
		}
		if len(groups) != 1 {
			t.Errorf("groups %v, want one", groups)
		}
	})
	t.Run("no preview route", func(t *testing.T) {
		h := withCaps(t, func(c *target.Capabilities) { c.Preview = false })
		svc := service(strategy.BlueGreen, "v1")
		svc.Deploy.BlueGreen.Preview = true
		end := h.deploy(svc)
		assertEnd(t, end, StateFailureClean, ErrBadRelease)
		if !strings.Contains(end.Error, "no preview route") {
			t.Errorf("error %q does not say the target has no preview route", end.Error)
		}
		if h.sim.Calls("EnsureGroup") != 0 {
			t.Error("a release the target cannot carry touched it")
		}
	})
}

func TestPreDeployRunsOnceBeforeTraffic(t *testing.T) {
	h := newHarness(t)
	v1 := h.deploy(service(strategy.BlueGreen, "v1"))
	svc := service(strategy.BlueGreen, "v2")
	svc.Hooks.PreDeploy = []string{"./migrate"}
	svc.Deploy.BlueGreen.Verify = []string{"./smoke"}
	v2 := h.deploy(svc)
	assertEnd(t, v2, StateSuccess, nil)
	if n := h.sim.TaskRuns(v2.ID + "/pre_deploy"); n != 1 {
		t.Errorf("pre_deploy ran %d times", n)
	}
	// verify ran against the preview route (the stand-in fails it otherwise).
	if n := h.sim.TaskRuns(v2.ID + "/verify"); n != 1 {
		t.Errorf("verify ran %d times", n)
	}
	_ = v1
}

// TestTaskReattachedAfterCrash: the server crashes while pre_deploy runs;
// the resumed release re-attaches to the task instead of starting it again,
// and a halt while a task runs stops it (the target forgets it).
func TestTaskReattachedAfterCrash(t *testing.T) {
	t.Run("crash while the task runs", func(t *testing.T) {
		h := newHarness(t)
		h.deploy(service(strategy.BlueGreen, "v1"))
		svc := service(strategy.BlueGreen, "v2", "FAKE_TASK_TIME", "300ms")
		svc.Hooks.PreDeploy = []string{"./migrate"}
		r := h.submit(svc)
		deadline := time.Now().Add(20 * time.Second)
		for h.sim.Calls("ObserveTask") == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the task was never observed")
			}
			time.Sleep(time.Millisecond)
		}
		h.restart(nil) // the task still runs on the target
		end := h.wait(r.ID)
		assertEnd(t, end, StateSuccess, nil)
		if n := h.sim.TaskRuns(r.ID + "/pre_deploy"); n != 1 {
			t.Errorf("pre_deploy started %d times across the crash, want once", n)
		}
	})
	t.Run("halt while the task runs", func(t *testing.T) {
		h := newHarness(t)
		h.deploy(service(strategy.BlueGreen, "v1"))
		svc := service(strategy.BlueGreen, "v2", "FAKE_TASK_TIME", "1h")
		svc.Hooks.PreDeploy = []string{"./migrate"}
		r := h.submit(svc)
		deadline := time.Now().Add(20 * time.Second)
		for h.sim.Calls("ObserveTask") == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the task was never observed")
			}
			time.Sleep(time.Millisecond)
		}
		if err := h.eng.Halt(context.Background(), r.ID, "stop"); err != nil {
			t.Fatal(err)
		}
		end := h.wait(r.ID)
		assertEnd(t, end, StateFailureClean, ErrHalted)
		if h.sim.Calls("StopTask") == 0 {
			t.Error("the halted release did not stop its task")
		}
		if _, err := h.sim.ObserveTask(context.Background(), h.ref, r.ID+"/pre_deploy"); !errors.Is(err, target.ErrTaskNotStarted) {
			t.Errorf("the target still has the halted task: %v", err)
		}
	})
}

func TestHalt(t *testing.T) {
	t.Run("during a canary pause", func(t *testing.T) {
		h := newHarness(t)
		v1 := h.deploy(service(strategy.Canary, "v1"))
		svc := service(strategy.Canary, "v2")
		svc.Deploy.Canary.Steps[0].Pause = dur(time.Hour)
		svc.Deploy.Timeout = dur(2 * time.Hour)
		r := h.submit(svc)
		h.waitState(r.ID, StateDeploy)
		// Wait until the canary takes traffic, then halt.
		for {
			_, routes := h.sim.Snapshot(h.ref)
			if len(routes) == 2 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err := h.eng.Halt(context.Background(), r.ID, "halted by ana"); err != nil {
			t.Fatal(err)
		}
		end := h.wait(r.ID)
		assertEnd(t, end, StateFailureClean, ErrHalted)
		if !strings.Contains(end.Error, "halted by ana") {
			t.Errorf("error %q does not say who halted", end.Error)
		}
		h.assertServing(groupOf(v1), 2)
		if end.Failed != 0 {
			t.Errorf("%d requests failed", end.Failed)
		}
		if err := h.eng.Halt(context.Background(), r.ID, ""); !errors.Is(err, store.ErrFinished) {
			t.Errorf("halt of a finished release: %v", err)
		}
	})
	t.Run("within scale_down_delay switches back", func(t *testing.T) {
		h := newHarness(t)
		v1 := h.deploy(service(strategy.BlueGreen, "v1"))
		svc := service(strategy.BlueGreen, "v2")
		svc.Deploy.ScaleDownDelay = dur(time.Hour)
		r := h.submit(svc)
		h.waitState(r.ID, StateCleanUpSuccess)
		if _, routes := h.sim.Snapshot(h.ref); len(routes) != 1 || routes[0].Group != groupOf(r) {
			t.Fatalf("routes after the switch: %v", routes)
		}
		if err := h.eng.Halt(context.Background(), r.ID, ""); err != nil {
			t.Fatal(err)
		}
		end := h.wait(r.ID)
		assertEnd(t, end, StateFailureClean, ErrHalted)
		h.assertServing(groupOf(v1), 2)
	})
}

func TestLocks(t *testing.T) {
	t.Run("held by another release", func(t *testing.T) {
		h := newHarness(t)
		key := lockKey(h.ref)
		if _, err := h.st.AcquireLock(context.Background(), key, "01OTHER", time.Hour); err != nil {
			t.Fatal(err)
		}
		end := h.deploy(service(strategy.BlueGreen, "v1"))
		assertEnd(t, end, StateFailureClean, ErrLockExists)
		if !strings.Contains(end.Error, "01OTHER") {
			t.Errorf("error %q does not name the holder", end.Error)
		}
		if l, err := h.st.GetLock(context.Background(), key); err != nil || l.Owner != "01OTHER" {
			t.Errorf("the other release's lock was touched: %+v %v", l, err)
		}
		if groups, _ := h.sim.Snapshot(h.ref); len(groups) != 0 {
			t.Errorf("groups created without the lock: %v", groups)
		}
	})
	t.Run("an expired lease of a dead release is taken over", func(t *testing.T) {
		h := newHarness(t)
		if _, err := h.st.AcquireLock(context.Background(), lockKey(h.ref), "01DEAD", time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		end := h.deploy(service(strategy.BlueGreen, "v1"))
		assertEnd(t, end, StateSuccess, nil)
		h.assertServing(groupOf(end), 2)
	})
	t.Run("second deploy of a service, other services concurrently", func(t *testing.T) {
		h := newHarness(t)
		slow := service(strategy.Canary, "v1")
		slow.Deploy.Strategy = strategy.BlueGreen
		slow.Deploy.ScaleDownDelay = dur(time.Second)
		first := h.deploy(service(strategy.BlueGreen, "v0"))
		a := h.submit(slow)
		h.waitState(a.ID, StateCleanUpSuccess)
		b := h.submit(service(strategy.BlueGreen, "v2"))
		other := service(strategy.BlueGreen, "v1")
		other.Name = "api"
		c := h.submit(other)
		assertEnd(t, h.wait(b.ID), StateFailureClean, ErrLockExists)
		assertEnd(t, h.wait(c.ID), StateSuccess, nil)
		assertEnd(t, h.wait(a.ID), StateSuccess, nil)
		h.assertServing(groupOf(a), 2)
		_ = first
	})
	t.Run("a lease lost to another owner stops the release dirty", func(t *testing.T) {
		h := newHarness(t)
		h.deploy(service(strategy.BlueGreen, "v1"))
		svc := service(strategy.BlueGreen, "v2")
		svc.Deploy.ScaleDownDelay = dur(time.Hour)
		r := h.submit(svc)
		h.waitState(r.ID, StateCleanUpSuccess)
		ctx := context.Background()
		if err := h.st.ReleaseLock(ctx, lockKey(h.ref), r.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.st.AcquireLock(ctx, lockKey(h.ref), "intruder", time.Hour); err != nil {
			t.Fatal(err)
		}
		end := h.wait(r.ID)
		assertEnd(t, end, StateFailureDirty, ErrDeploy)
		if !strings.Contains(end.Error, "lock") {
			t.Errorf("error %q", end.Error)
		}
	})
}

func TestCleanUp(t *testing.T) {
	t.Run("transient errors are retried", func(t *testing.T) {
		h := newHarness(t)
		v1 := h.deploy(service(strategy.BlueGreen, "v1"))
		svc := service(strategy.BlueGreen, "v2")
		svc.Env["FAKE_HEALTH"] = "never"
		svc.Deploy.Timeout = dur(100 * time.Millisecond)
		h.sim.FailOnce("DeleteGroup", errors.New("agent unreachable"))
		h.sim.FailOnce("SetRoutes", errors.New("agent unreachable"))
		end := h.deploy(svc)
		assertEnd(t, end, StateFailureClean, ErrTimeout)
		h.assertServing(groupOf(v1), 2)
	})
	t.Run("a rollback that cannot finish is FailureDirty", func(t *testing.T) {
		h := newHarness(t)
		h.eng.Close()
		h.eng = New(h.st, Drivers{"local": h.sim}, Options{PollInterval: 2 * time.Millisecond, LockTTL: 300 * time.Millisecond, CleanupTimeout: 100 * time.Millisecond})
		h.deploy(service(strategy.BlueGreen, "v1"))
		svc := service(strategy.BlueGreen, "v2")
		svc.Env["FAKE_HEALTH"] = "never"
		svc.Deploy.Timeout = dur(50 * time.Millisecond)
		h.sim.Break("DeleteGroup", errors.New("agent unreachable"))
		end := h.deploy(svc)
		assertEnd(t, end, StateFailureDirty, ErrTimeout)
		if !strings.Contains(end.Error, "clean-up incomplete") || !strings.Contains(end.Error, "agent unreachable") {
			t.Errorf("error %q does not explain the clean-up failure", end.Error)
		}
		h.assertNoLocks()
	})
	t.Run("scale_down_delay longer than the clean-up timeout", func(t *testing.T) {
		h := newHarness(t)
		h.eng.Close()
		h.eng = New(h.st, Drivers{"local": h.sim}, Options{PollInterval: 2 * time.Millisecond, LockTTL: 300 * time.Millisecond, CleanupTimeout: 50 * time.Millisecond})
		h.deploy(service(strategy.BlueGreen, "v1"))
		svc := service(strategy.BlueGreen, "v2")
		svc.Deploy.ScaleDownDelay = dur(200 * time.Millisecond)
		end := h.deploy(svc)
		assertEnd(t, end, StateSuccess, nil)
		h.assertServing(groupOf(end), 2)
	})
	t.Run("retiring the old group fails after the switch", func(t *testing.T) {
		h := newHarness(t)
		h.eng.Close()
		h.eng = New(h.st, Drivers{"local": h.sim}, Options{PollInterval: 2 * time.Millisecond, LockTTL: 300 * time.Millisecond, CleanupTimeout: 100 * time.Millisecond})
		h.deploy(service(strategy.BlueGreen, "v1"))
		h.sim.Break("DeleteGroup", errors.New("agent unreachable"))
		end := h.deploy(service(strategy.BlueGreen, "v2"))
		assertEnd(t, end, StateFailureDirty, ErrDeploy)
		// The new release serves all the same.
		if _, routes := h.sim.Snapshot(h.ref); len(routes) != 1 || routes[0].Group != groupOf(end) {
			t.Errorf("routes %v", routes)
		}
		h.assertNoLocks()
	})
}

func TestCloseAndResumeMidPause(t *testing.T) {
	h := newHarness(t)
	h.deploy(service(strategy.BlueGreen, "v1"))
	svc := service(strategy.BlueGreen, "v2")
	svc.Deploy.ScaleDownDelay = dur(300 * time.Millisecond)
	r := h.submit(svc)
	h.waitState(r.ID, StateCleanUpSuccess)
	h.restart(nil)
	end := h.wait(r.ID)
	assertEnd(t, end, StateSuccess, nil)
	h.assertServing(groupOf(r), 2)
	// The pause resumed rather than restarted: the whole release took about
	// one scale_down_delay, not two.
	if took := end.FinishedAt.Sub(end.CreatedAt); took > 550*time.Millisecond {
		t.Logf("release took %s (pause may have restarted; timing only logged)", took)
	}
}

// TestResumeAfterLeaseExpired: the server was down longer than the lease;
// on start the half-done release takes its lock back before a newer
// release of the same service, recorded meanwhile, can take it.
// testLockTTL is the lease of the harness's engines: long enough that a
// runner starved by a loaded machine (-race, parallel packages) still renews
// it in time, short enough for the lease-expiry tests.
const testLockTTL = time.Second

func TestResumeAfterLeaseExpired(t *testing.T) {
	for range 3 {
		h := newHarness(t)
		h.deploy(service(strategy.BlueGreen, "v1"))
		var crashed atomic.Bool
		h.restart(func(_ string, b boundary) bool {
			return b == (boundary{State: StateDeploy, Step: 1}) && crashed.CompareAndSwap(false, true)
		})
		v2 := h.submit(service(strategy.BlueGreen, "v2"))
		for deadline := time.Now().Add(10 * time.Second); !crashed.Load(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				end, _ := h.st.GetRelease(context.Background(), v2.ID)
				t.Fatalf("the release never reached the crash point: %+v", end)
			}
		}
		h.eng.Close()
		// Wait until v2's lease has expired (no engine renews it now).
		ref := target.ServiceRef{Environment: "staging", Service: v2.Service}
		for deadline := time.Now().Add(10 * testLockTTL); ; {
			l, err := h.st.GetLock(context.Background(), lockKey(ref))
			if err != nil || time.Now().After(l.ExpiresAt) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lease of %s never expired: %+v", v2.ID, l)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// v3 is recorded while no engine runs (as by another replica's API).
		recorder := h.newEngine(nil)
		recorder.Close() // records, runs nothing
		v3, err := recorder.Submit(context.Background(), Request{Environment: "staging", Service: service(strategy.BlueGreen, "v3")})
		if err != nil {
			t.Fatal(err)
		}
		h.restart(nil)
		assertEnd(t, h.wait(v2.ID), StateSuccess, nil)
		assertEnd(t, h.wait(v3.ID), StateFailureClean, ErrLockExists)
		h.assertServing(groupOf(v2), 2)
	}
}

func TestErrorKinds(t *testing.T) {
	for _, k := range []error{ErrBadRelease, ErrLockExists, ErrDeploy, ErrHalted, ErrTimeout, ErrAnalysisFailed} {
		e := newError(k, "because %d", 42)
		if !errors.Is(e, k) || !errors.Is(fmt.Errorf("wrapped: %w", e), k) {
			t.Errorf("%v is not errors.Is %v", e, k)
		}
		if back := errorFromRecord(k.Error(), e.Msg); !errors.Is(back, k) || back.Msg != "because 42" {
			t.Errorf("record round trip: %v", back)
		}
	}
	if e := asError(errors.New("boom")); !errors.Is(e, ErrDeploy) {
		t.Errorf("plain errors are DeployErrors: %v", e)
	}
	if errorFromRecord("", "") != nil {
		t.Error("no kind, no error")
	}
	if e := errorFromRecord("Unheard", "x"); !errors.Is(e, ErrDeploy) {
		t.Errorf("unknown kind: %v", e)
	}
}

// newFake is a fake target that stops with the test.
func newFake(tb testing.TB) *fake.Target {
	f := fake.New(fake.Options{})
	tb.Cleanup(f.Close)
	return f
}

// releaseMany deploys v1 then v2 of n services at once and checks every
// release succeeded.
func releaseMany(tb testing.TB, h *harness, n int) {
	for _, version := range []string{"v1", "v2"} {
		var ids []string
		for i := range n {
			svc := service(strategy.BlueGreen, version)
			svc.Name = fmt.Sprintf("svc-%03d", i)
			svc.Deploy.ScaleDownDelay = dur(0)
			// All at once on 2 cores: a loaded CI machine took over 10 s.
			svc.Deploy.Timeout = dur(time.Minute)
			r, err := h.eng.Submit(context.Background(), Request{Environment: "staging", Service: svc})
			if err != nil {
				tb.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			r, err := h.eng.Wait(ctx, id)
			cancel()
			if err != nil {
				tb.Fatal(err)
			}
			if State(r.State) != StateSuccess {
				tb.Fatalf("release %s of %s ended %s: %s", id, r.Service, r.State, r.Error)
			}
		}
	}
}

// TestManyServicesConcurrently releases 25 services at once through one
// SQLite file: no lock contention between services, no busy errors.
func TestManyServicesConcurrently(t *testing.T) {
	h := newHarness(t)
	releaseMany(t, h, 25)
	h.assertNoLocks()
}

// BenchmarkConcurrentReleases is the engine-throughput figure of issue 5:
// 100 services released (v1 then v2, blue_green) concurrently against the
// stand-in target.
func BenchmarkConcurrentReleases(b *testing.B) {
	for range b.N {
		h := newBenchHarness(b)
		releaseMany(b, h, 100)
		h.eng.Close()
	}
}

func newBenchHarness(b *testing.B) *harness {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "runway.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	sim := newFake(b)
	h := &harness{st: st, sim: sim, ref: target.ServiceRef{Environment: "staging", Service: "web"}}
	h.eng = New(st, Drivers{"local": sim}, Options{PollInterval: 2 * time.Millisecond, LockTTL: time.Second})
	return h
}
