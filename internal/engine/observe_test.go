package engine

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/strategy"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu     sync.Mutex
	states map[State]int
	steps  map[strategy.Kind]int
	locks  int
}

func (r *recorder) StateDone(s State, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[s]++
}

func (r *recorder) StepDone(k strategy.Kind, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps[k]++
}

func (r *recorder) LockTried(time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.locks++
}

// TestWaitingAndObserver: a release in a wait says what it waits for (a
// pause its end), the text is gone once it ended, and the Observer hears of
// every state, step and lock acquisition.
func TestWaitingAndObserver(t *testing.T) {
	h := newHarness(t)
	rec := &recorder{states: map[State]int{}, steps: map[strategy.Kind]int{}}
	h.eng.Close()
	h.eng = New(h.st, Drivers{"local": h.sim}, Options{PollInterval: 2 * time.Millisecond, LockTTL: testLockTTL, CleanupTimeout: 3 * time.Second, Observer: rec})
	h.deploy(service(strategy.BlueGreen, "v1"))
	svc := service(strategy.BlueGreen, "v2")
	svc.Deploy.ScaleDownDelay = dur(time.Minute)
	r := h.submit(svc)
	h.waitState(r.ID, StateCleanUpSuccess)
	deadline := time.Now().Add(20 * time.Second)
	for why := h.eng.Waiting(r.ID); !strings.HasPrefix(why, "paused for 1m, until "); why = h.eng.Waiting(r.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("Waiting during scale_down_delay: %q", why)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := h.eng.Halt(t.Context(), r.ID, "test"); err != nil {
		t.Fatal(err)
	}
	h.wait(r.ID)
	if why := h.eng.Waiting(r.ID); why != "" {
		t.Errorf("an ended release still waits: %q", why)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.states[StateDeploy] != 2 || rec.steps[strategy.KindEnsureGroup] < 2 || rec.steps[strategy.KindWaitHealthy] < 2 || rec.locks != 2 {
		t.Errorf("observed states %v, steps %v, %d locks", rec.states, rec.steps, rec.locks)
	}
}
