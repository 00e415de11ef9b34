package ecs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// releases is the release engine on a real SQLite store with the aws
// driver on the fake AWS: releases run as `runway server` runs them.
type releases struct {
	t   *testing.T
	fa  *fakeAWS
	st  *store.SQLite
	eng *engine.Engine
	drv *Driver
	ref target.ServiceRef

	served, failed atomic.Int64
}

func newReleases(t *testing.T) *releases {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &releases{t: t, fa: startFake(t, "staging"), st: st, ref: target.ServiceRef{Environment: "staging", Service: "web"}}
	r.restart(nil)
	t.Cleanup(func() { r.eng.Close() })
	return r
}

// restart is a server killed and started again: a new engine and driver
// (nothing of the last ones' memory) over the same store and AWS.
func (r *releases) restart(fault func(string, engine.State, int, bool) bool) {
	r.t.Helper()
	if r.eng != nil {
		r.eng.Close()
	}
	r.drv = New(r.fa.opt)
	r.eng = engine.New(r.st, engine.Drivers{"aws": r.drv}, engine.Options{PollInterval: 50 * time.Millisecond, LockTTL: 5 * time.Second,
		CleanupTimeout: 30 * time.Second, TestFault: fault, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := r.eng.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *releases) service(strat, version string, command ...string) config.Service {
	s := *r.fa.spec(r.ref, command...)
	s.Version = version
	s.Target = "aws"
	s.Scale = config.Scale{Min: 1, Desired: 2, Max: 10}
	s.Deploy = config.Deploy{Strategy: strat, Timeout: config.Duration{Duration: 2 * time.Minute},
		ScaleDownDelay: config.Duration{Duration: 100 * time.Millisecond}, DrainTimeout: config.Duration{Duration: time.Second},
		Rolling: config.Rolling{MaxSurge: 1},
		Canary: config.Canary{Steps: []*config.CanaryStep{{Weight: 25, Pause: config.Duration{Duration: time.Minute}}},
			Analysis: config.Analysis{MaxErrorRateIncrease: 0.05, MaxLatencyP99Ratio: 50, MinRequests: 20}}}
	return s
}

func (r *releases) submit(svc config.Service) *store.Release {
	r.t.Helper()
	rel, err := r.eng.Submit(context.Background(), engine.Request{Environment: r.ref.Environment, Target: "aws", Service: svc, CreatedBy: "test"})
	if err != nil {
		r.t.Fatal(err)
	}
	return rel
}

func (r *releases) wait(id string) *store.Release {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rel, err := r.eng.Wait(ctx, id)
	if err != nil {
		r.t.Fatalf("wait for release %s: %v", id, err)
	}
	return rel
}

func (r *releases) deploy(svc config.Service) *store.Release {
	r.t.Helper()
	return r.wait(r.submit(svc).ID)
}

func group(rel *store.Release) string {
	return strategy.GroupName("web", rel.ID, Capabilities().GroupNameMax)
}

// assertServing: only group runs, with n tasks healthy, and takes all the
// traffic; exactly one ECS service and one target group of the service
// exist.
func (r *releases) assertServing(group string, n int) {
	r.t.Helper()
	ctx := context.Background()
	routes, err := r.drv.Routes(ctx, r.ref)
	if err != nil || len(routes) != 1 || routes[0].Group != group {
		r.t.Errorf("routes = %v, %v; want all traffic on %s", routes, err, group)
	}
	groups, err := r.drv.ListGroups(ctx, r.ref)
	if err != nil || len(groups) != 1 || groups[0].Name != group || groups[0].Status.Healthy != n {
		r.t.Errorf("groups = %+v, %v; want only %s with %d healthy tasks", groups, err, group, n)
	}
	if svcs, tgs := r.fa.f.Resources("web-"); svcs != 1 || tgs != 1 {
		r.t.Errorf("%d ECS services and %d target groups of web exist, want one of each", svcs, tgs)
	}
}

func assertEnd(t *testing.T, rel *store.Release, state engine.State, kind error) {
	t.Helper()
	if engine.State(rel.State) != state {
		t.Fatalf("release ended %s (%s: %s), want %s", rel.State, rel.ErrorKind, rel.Error, state)
	}
	if kind != nil && rel.ErrorKind != kind.Error() {
		t.Errorf("error kind %q (%s), want %q", rel.ErrorKind, rel.Error, kind)
	}
}

// load sends requests through the load balancer until stop, counting the
// answers: the release must not fail any (the canary that errors on
// purpose aside).
func (r *releases) load() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			resp, err := r.fa.get(r.ref, "/")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				r.failed.Add(1)
			} else {
				r.served.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// watchRoutes records every distinct route set the service's rule had.
func (r *releases) watchRoutes() (stop func() [][]strategy.Route) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu   sync.Mutex
		seen [][]strategy.Route
		wg   sync.WaitGroup
	)
	d := New(r.fa.opt)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			routes, err := d.Routes(ctx, r.ref)
			mu.Lock()
			if err == nil && len(routes) > 0 && (len(seen) == 0 || !reflect.DeepEqual(seen[len(seen)-1], routes)) {
				seen = append(seen, routes)
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() [][]strategy.Route {
		cancel()
		wg.Wait()
		// The last poll may have been cut short (a throttled call waits for
		// its retry): read the final routes once more.
		if routes, err := d.Routes(context.Background(), r.ref); err == nil && len(routes) > 0 && (len(seen) == 0 || !reflect.DeepEqual(seen[len(seen)-1], routes)) {
			seen = append(seen, routes)
		}
		return seen
	}
}

// TestReleasesOnFakeAWS: blue_green, rolling and canary releases replace
// the serving release through the engine, with traffic flowing through the
// load balancer and no request failed; the canary's weight is set and its
// analysis reads CloudWatch's figures.
func TestReleasesOnFakeAWS(t *testing.T) {
	for _, strat := range []string{strategy.BlueGreen, strategy.Rolling, strategy.Canary} {
		t.Run(strat, func(t *testing.T) {
			t.Parallel()
			r := newReleases(t)
			v1 := r.deploy(r.service(strategy.BlueGreen, "v1"))
			assertEnd(t, v1, engine.StateSuccess, nil)
			r.assertServing(group(v1), 2)
			stopLoad := r.load()
			stopWatch := r.watchRoutes()
			v2 := r.deploy(r.service(strat, "v2"))
			seen := stopWatch()
			stopLoad()
			assertEnd(t, v2, engine.StateSuccess, nil)
			r.assertServing(group(v2), 2)
			if n := r.failed.Load(); n != 0 {
				t.Errorf("%d of %d requests failed during a %s release", n, n+r.served.Load(), strat)
			}
			// The weights moved step by step, ending on the new group.
			last := seen[len(seen)-1]
			if len(last) != 1 || last[0].Group != group(v2) {
				t.Errorf("last routes %v, want all on %s", last, group(v2))
			}
			switch strat {
			case strategy.Canary:
				if !containsRoutes(seen, []strategy.Route{{Group: group(v1), Weight: 75}, {Group: group(v2), Weight: 25}}) {
					t.Errorf("the canary's 25%% step was never routed: %v", seen)
				}
			case strategy.Rolling:
				if len(seen) < 3 {
					t.Errorf("a rolling release of 2 tasks shifted traffic in %d steps: %v", len(seen), seen)
				}
			}
		})
	}
}

// containsRoutes: one of the route sets seen gives the groups of want the
// same shares of the traffic (weights are relative: 1 and 3 are 25 and 75).
func containsRoutes(seen [][]strategy.Route, want []strategy.Route) bool {
	share := func(rs []strategy.Route) map[string]float64 {
		total := 0
		for _, r := range rs {
			total += r.Weight
		}
		m := map[string]float64{}
		for _, r := range rs {
			m[r.Group] = float64(r.Weight) / float64(total)
		}
		return m
	}
	for _, s := range seen {
		if reflect.DeepEqual(share(s), share(want)) {
			return true
		}
	}
	return false
}

// TestFailuresOnFakeAWS: a canary answering 500 fails its analysis on
// CloudWatch's figures, a halted release and one that times out (its tasks
// crash) all end FailureClean with the previous release serving.
func TestFailuresOnFakeAWS(t *testing.T) {
	t.Run("canary analysis", func(t *testing.T) {
		t.Parallel()
		r := newReleases(t)
		v1 := r.deploy(r.service(strategy.BlueGreen, "v1"))
		stop := r.load()
		v2 := r.deploy(r.service(strategy.Canary, "v2", "serve-errors"))
		stop()
		assertEnd(t, v2, engine.StateFailureClean, engine.ErrAnalysisFailed)
		if !strings.Contains(v2.Error, "error rate") {
			t.Errorf("analysis error %q does not name the error rate", v2.Error)
		}
		r.assertServing(group(v1), 2)
	})
	t.Run("halt", func(t *testing.T) {
		t.Parallel()
		r := newReleases(t)
		v1 := r.deploy(r.service(strategy.BlueGreen, "v1"))
		svc := r.service(strategy.Canary, "v2")
		svc.Deploy.Canary.Steps[0].Pause = config.Duration{Duration: time.Hour}
		svc.Deploy.Timeout = config.Duration{Duration: 2 * time.Hour}
		rel := r.submit(svc)
		deadline := time.Now().Add(time.Minute)
		for {
			routes, _ := r.drv.Routes(context.Background(), r.ref)
			if len(routes) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the canary never took traffic")
			}
			<-time.After(20 * time.Millisecond)
		}
		if err := r.eng.Halt(context.Background(), rel.ID, "halted by ana"); err != nil {
			t.Fatal(err)
		}
		end := r.wait(rel.ID)
		assertEnd(t, end, engine.StateFailureClean, engine.ErrHalted)
		r.assertServing(group(v1), 2)
	})
	t.Run("crash budget", func(t *testing.T) {
		// Tasks that serve nothing fail their health checks; ECS replaces
		// them and counts them failed: terminations past max_terms.
		t.Parallel()
		r := newReleases(t)
		v1 := r.deploy(r.service(strategy.BlueGreen, "v1"))
		end := r.deploy(r.service(strategy.BlueGreen, "v2", "exit", "1h", "0"))
		assertEnd(t, end, engine.StateFailureClean, engine.ErrDeploy)
		if !strings.Contains(end.Error, "failed ELB health checks") || !strings.Contains(end.Error, "task started") {
			t.Errorf("error %q does not quote the stopped task's reason and log", end.Error)
		}
		r.assertServing(group(v1), 2)
	})
	t.Run("timeout", func(t *testing.T) {
		// Ten health checks of 100 ms (5 s at the fake's time scale) to be
		// healthy, a second to deploy.
		t.Parallel()
		r := newReleases(t)
		v1 := r.deploy(r.service(strategy.BlueGreen, "v1"))
		svc := r.service(strategy.BlueGreen, "v2")
		svc.Health.HealthyThreshold = 10
		svc.Deploy.Timeout = config.Duration{Duration: time.Second}
		end := r.deploy(svc)
		assertEnd(t, end, engine.StateFailureClean, engine.ErrTimeout)
		r.assertServing(group(v1), 2)
	})
}

// TestResumeOnFakeAWS: the server dies (its engine stops dead, as a kill -9
// leaves it) at each boundary of a blue_green release's Deploy state; a new
// server resumes the release, which succeeds with one ECS service and one
// target group of the service left: nothing was created twice.
func TestResumeOnFakeAWS(t *testing.T) {
	for step := 0; step < 3; step++ {
		t.Run(fmt.Sprintf("step %d", step), func(t *testing.T) {
			t.Parallel()
			r := newReleases(t)
			r.deploy(r.service(strategy.BlueGreen, "v1"))
			var crashed atomic.Bool
			r.restart(func(_ string, s engine.State, at int, after bool) bool {
				return s == engine.StateDeploy && at == step && after && crashed.CompareAndSwap(false, true)
			})
			rel := r.submit(r.service(strategy.BlueGreen, "v2"))
			deadline := time.Now().Add(2 * time.Minute)
			for !crashed.Load() {
				if time.Now().After(deadline) {
					t.Fatalf("the release never reached step %d of Deploy", step)
				}
				<-time.After(20 * time.Millisecond)
			}
			r.restart(nil)
			end := r.wait(rel.ID)
			assertEnd(t, end, engine.StateSuccess, nil)
			r.assertServing(group(end), 2)
		})
	}
}
