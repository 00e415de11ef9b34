package engine

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
)

// crashScenario is a v1 → v2 release that ends in want.
type crashScenario struct {
	name string
	v2   func() config.Service
	want State
}

// neverHealthyTimeout is deploy.timeout of the scenarios whose new group
// never becomes healthy: every case waits it out.
const neverHealthyTimeout = 2 * time.Second

func crashScenarios() []crashScenario {
	return []crashScenario{
		{"blue_green with pre_deploy, preview and verify", func() config.Service {
			s := service(strategy.BlueGreen, "v2")
			s.Hooks.PreDeploy = []string{"./migrate"}
			s.Deploy.BlueGreen = config.BlueGreen{Preview: true, Verify: []string{"./smoke"}}
			s.Scale.Spread = 0.5
			return s
		}, StateSuccess},
		{"canary", func() config.Service { return service(strategy.Canary, "v2") }, StateSuccess},
		{"rolling", func() config.Service { return service(strategy.Rolling, "v2") }, StateSuccess},
		{"blue_green never healthy", func() config.Service {
			s := service(strategy.BlueGreen, "v2", "FAKE_HEALTH", "never")
			// Long enough to reach every Deploy step on a loaded machine
			// (500 ms was not, once; 1 s was not for recreate, once).
			s.Deploy.Timeout = dur(neverHealthyTimeout)
			return s
		}, StateFailureClean},
		{"rolling surge 0 unavailable 1 never healthy", func() config.Service {
			// The old group shrinks before the new one fails: rollback
			// must grow it back before moving traffic.
			s := service(strategy.Rolling, "v2", "FAKE_HEALTH", "never")
			s.Deploy.Rolling = config.Rolling{MaxSurge: 0, MaxUnavailable: 1}
			s.Deploy.Timeout = dur(neverHealthyTimeout)
			return s
		}, StateFailureClean},
		{"recreate never healthy", func() config.Service {
			// The old group is deleted first: rollback re-creates it from
			// the old release's record.
			s := service(strategy.Recreate, "v2", "FAKE_HEALTH", "never")
			s.Deploy.Timeout = dur(neverHealthyTimeout)
			return s
		}, StateFailureClean},
		{"canary failing analysis", func() config.Service {
			return service(strategy.Canary, "v2", "FAKE_ERROR_RATE", "0.3")
		}, StateFailureClean},
	}
}

// expectsFailedRequests: recreate has downtime, and a failing canary's own
// errors are failed requests.
func (sc crashScenario) expectsFailedRequests() bool {
	return strings.HasPrefix(sc.name, "recreate") || sc.name == "canary failing analysis"
}

// boundaries runs the scenario once and returns every boundary its v2
// release passed.
func (sc crashScenario) boundaries(t *testing.T) []boundary {
	h := newHarness(t)
	h.deploy(service(strategy.BlueGreen, "v1"))
	var (
		mu  sync.Mutex
		out []boundary
	)
	h.restart(func(_ string, b boundary) bool {
		mu.Lock()
		out = append(out, b)
		mu.Unlock()
		return false
	})
	end := h.deploy(sc.v2())
	if State(end.State) != sc.want {
		t.Fatalf("without a crash the release ended %s (%s), want %s", end.State, end.Error, sc.want)
	}
	mu.Lock()
	defer mu.Unlock()
	return out
}

// TestResumeAfterCrashAtEveryBoundary kills the engine (its runner stops
// dead, persisting nothing more) at each state and step boundary of a
// release in turn, starts a new engine on the same store and target, and
// checks the release still ends as it would have, with one group serving,
// no lock held, no orphan group and, for the zero-downtime strategies, no
// failed request.
func TestResumeAfterCrashAtEveryBoundary(t *testing.T) {
	for _, sc := range crashScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			bs := sc.boundaries(t)
			if len(bs) < 12 {
				t.Fatalf("only %d boundaries recorded: %v", len(bs), bs)
			}
			// The cases mostly wait, so run several at once (t.Parallel
			// would be capped at GOMAXPROCS).
			sem := make(chan struct{}, 6)
			var wg sync.WaitGroup
			defer wg.Wait()
			for _, b := range bs {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					t.Run(b.String(), func(t *testing.T) {
						h := newHarness(t)
						v1 := h.deploy(service(strategy.BlueGreen, "v1"))
						var crashed atomic.Bool
						h.restart(func(_ string, at boundary) bool {
							return at == b && crashed.CompareAndSwap(false, true)
						})
						r := h.submit(sc.v2())
						// Wait for the crash, then "restart the server".
						deadline := time.Now().Add(20 * time.Second)
						for !crashed.Load() {
							if time.Now().After(deadline) {
								end, _ := h.st.GetRelease(context.Background(), r.ID)
								t.Fatalf("never reached %s: release is %s (%s)", b, end.State, end.Error)
							}
							time.Sleep(time.Millisecond)
						}
						h.restart(nil)
						end := h.wait(r.ID)
						if State(end.State) != sc.want {
							t.Fatalf("after a crash %s the release ended %s (%s: %s), want %s", b, end.State, end.ErrorKind, end.Error, sc.want)
						}
						serving := groupOf(v1)
						if sc.want == StateSuccess {
							serving = groupOf(r)
						}
						h.assertServing(serving, 2)
						_, failed := h.sim.Totals(h.ref)
						if !sc.expectsFailedRequests() && failed != 0 {
							t.Errorf("%d requests failed", failed)
						}
						if n := h.sim.TaskRuns(r.ID + "/pre_deploy"); n > 1 {
							t.Errorf("pre_deploy ran %d times, want once (a resumed release re-attaches)", n)
						}
					})
				}()
			}
		})
	}
}
