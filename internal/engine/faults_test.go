package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/strategy"
)

// transientErr is what a driver returns when its target did not answer.
type transientErr struct{ msg string }

func (e transientErr) Error() string   { return e.msg }
func (e transientErr) Transient() bool { return true }

// TestCrashLoopFailsFast: a new group whose instances keep crashing ends the
// release FailureClean under every strategy with the default crash budget
// (no max_terms), long before deploy.timeout, and the release's error quotes
// the crashed instance's last output.
func TestCrashLoopFailsFast(t *testing.T) {
	for _, name := range []string{strategy.Recreate, strategy.Rolling, strategy.BlueGreen, strategy.Canary} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			v1 := h.deploy(service(name, "v1"))
			svc := service(name, "v2", "SIM_HEALTH", "crash", "SIM_CRASH_LINE", "DATABASE_URL is not set")
			svc.Deploy.Timeout = dur(time.Hour) // the crash budget, not the timeout, must end it
			end := h.deploy(svc)
			assertEnd(t, end, StateFailureClean, ErrDeploy)
			for _, want := range []string{"crash-looping", "crash budget of 3", "FATAL: DATABASE_URL is not set", `"exit status 1"`} {
				if !strings.Contains(end.Error, want) {
					t.Errorf("release error %q does not say %q", end.Error, want)
				}
			}
			h.assertServing(groupOf(v1), 2)
		})
	}
}

// TestHaltDuringHungCall: a halt is honoured while a driver call does not
// return (an agent stopped with SIGSTOP): the call is cancelled, the release
// cleans up and ends FailureClean, Halted.
func TestHaltDuringHungCall(t *testing.T) {
	h := newHarness(t)
	v1 := h.deploy(service(strategy.BlueGreen, "v1"))
	h.sim.setHangOnce("EnsureGroup")
	svc := service(strategy.BlueGreen, "v2")
	svc.Deploy.Timeout = dur(time.Hour)
	r := h.submit(svc)
	waitUntil(t, "the EnsureGroup call to hang", func() bool { return h.sim.hangingCalls("EnsureGroup") == 1 })
	if err := h.eng.Halt(context.Background(), r.ID, "agent wedged"); err != nil {
		t.Fatal(err)
	}
	end := h.wait(r.ID)
	assertEnd(t, end, StateFailureClean, ErrHalted)
	if n := h.sim.hungCalls("EnsureGroup"); n != 1 {
		t.Errorf("%d hung EnsureGroup calls were cancelled, want 1", n)
	}
	h.assertServing(groupOf(v1), 2)
}

// TestDeadlineDuringHungCall: a call that never returns while the release
// plans (ValidateResources) is cut at the release's deadline.
func TestDeadlineDuringHungCall(t *testing.T) {
	h := newHarness(t)
	v1 := h.deploy(service(strategy.Rolling, "v1"))
	h.sim.setHangOnce("ListGroups")
	svc := service(strategy.Rolling, "v2")
	svc.Deploy.Timeout = dur(300 * time.Millisecond)
	end := h.deploy(svc)
	assertEnd(t, end, StateFailureClean, ErrTimeout)
	if n := h.sim.hungCalls("ListGroups"); n != 1 {
		t.Errorf("%d hung ListGroups calls were cancelled, want 1", n)
	}
	h.assertServing(groupOf(v1), 2)
}

// TestTransientErrorsRetried: a transient error of the target in any step
// before clean-up (planning, creating the group, observing it, routing) is
// retried and the release succeeds; a permanent one still fails it.
func TestTransientErrorsRetried(t *testing.T) {
	for _, method := range []string{"ListGroups", "Routes", "EnsureGroup", "ObserveGroup", "SetRoutes"} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t)
			h.deploy(service(strategy.BlueGreen, "v1"))
			h.sim.setFailOnce(method, transientErr{"connection refused"})
			end := h.deploy(service(strategy.BlueGreen, "v2"))
			assertEnd(t, end, StateSuccess, nil)
			h.assertServing(groupOf(end), 2)
		})
	}
	t.Run("permanent", func(t *testing.T) {
		h := newHarness(t)
		v1 := h.deploy(service(strategy.BlueGreen, "v1"))
		h.sim.setFailOnce("EnsureGroup", errors.New("invalid group spec"))
		end := h.deploy(service(strategy.BlueGreen, "v2"))
		assertEnd(t, end, StateFailureClean, ErrDeploy)
		h.assertServing(groupOf(v1), 2)
	})
	t.Run("bounded by the deadline", func(t *testing.T) {
		h := newHarness(t)
		v1 := h.deploy(service(strategy.BlueGreen, "v1"))
		h.sim.setBroken("EnsureGroup", transientErr{"connection refused"})
		svc := service(strategy.BlueGreen, "v2")
		svc.Deploy.Timeout = dur(300 * time.Millisecond)
		r := h.submit(svc)
		h.waitState(r.ID, StateCleanUpFailure)
		h.sim.setBroken("EnsureGroup", nil) // clean-up re-grows v1 through it
		end := h.wait(r.ID)
		assertEnd(t, end, StateFailureClean, ErrTimeout)
		if !strings.Contains(end.Error, "connection refused") {
			t.Errorf("error %q does not give the last transient error", end.Error)
		}
		h.assertServing(groupOf(v1), 2)
	})
}

// waitUntil polls cond every millisecond for up to 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(time.Millisecond)
	}
}
