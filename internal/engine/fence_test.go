package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/strategy"
)

func (s *simTarget) callCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// TestStoreBehindStopsActing: a target that refuses the server because its
// store is behind (ErrStoreBehind) gets no further action from the release:
// refused at Validate, the release ends FailureClean having touched nothing;
// refused by a mutating call, clean-up does not retry (every call would be
// refused) and the release ends FailureDirty at once, with the refusal as
// its error.
func TestStoreBehindStopsActing(t *testing.T) {
	behind := fmt.Errorf("%w: the store is behind the agent; run runway server resync", ErrStoreBehind)
	t.Run("refused at Validate", func(t *testing.T) {
		h := newHarness(t)
		v1 := h.deploy(service(strategy.BlueGreen, "v1"))
		h.sim.setBroken("Validate", behind)
		ensures := h.sim.callCount("EnsureGroup")
		end := h.deploy(service(strategy.BlueGreen, "v2"))
		assertEnd(t, end, StateFailureClean, ErrStoreBehind)
		if !strings.Contains(end.Error, "resync") {
			t.Errorf("error %q does not say how to recover", end.Error)
		}
		if n := h.sim.callCount("EnsureGroup"); n != ensures {
			t.Errorf("EnsureGroup called %d times after the refusal", n-ensures)
		}
		h.assertServing(groupOf(v1), 2)
	})
	t.Run("refused by a mutating call", func(t *testing.T) {
		h := newHarness(t)
		v1 := h.deploy(service(strategy.BlueGreen, "v1"))
		mutating := []string{"EnsureGroup", "ScaleGroup", "DeleteGroup", "SetRoutes", "SetPreview"}
		before := map[string]int{}
		for _, m := range mutating {
			h.sim.setBroken(m, behind)
			before[m] = h.sim.callCount(m)
		}
		end := h.deploy(service(strategy.BlueGreen, "v2"))
		assertEnd(t, end, StateFailureDirty, ErrStoreBehind)
		if !strings.Contains(end.Error, "resync") {
			t.Errorf("error %q does not say how to recover", end.Error)
		}
		// One refused Deploy step, one refused clean-up step: no retries.
		total := 0
		for _, m := range mutating {
			total += h.sim.callCount(m) - before[m]
		}
		if total != 2 {
			t.Errorf("%d mutating calls after the first refusal, want 2 (the refused step and the first clean-up step)", total)
		}
		groups, _ := h.sim.snapshot(h.ref)
		if len(groups) != 1 || groups[groupOf(v1)] != 2 {
			t.Errorf("groups %v, want only v1's", groups)
		}
		h.assertNoLocks()
	})
	t.Run("refused in clean-up after a timeout", func(t *testing.T) {
		h := newHarness(t)
		v1 := h.deploy(service(strategy.BlueGreen, "v1"))
		svc := service(strategy.BlueGreen, "v2")
		svc.Env["SIM_HEALTH"] = "never"
		svc.Deploy.Timeout = dur(100 * time.Millisecond)
		h.sim.setBroken("SetRoutes", behind)
		end := h.deploy(svc)
		// The refusal, not the timeout, is what the user must act on.
		assertEnd(t, end, StateFailureDirty, ErrStoreBehind)
		if !strings.Contains(end.Error, "resync") || !strings.Contains(end.Error, "Timeout") {
			t.Errorf("error %q does not name the refusal, how to recover and the timeout before it", end.Error)
		}
		groups, _ := h.sim.snapshot(h.ref)
		if groups[groupOf(v1)] != 2 {
			t.Errorf("groups %v, want v1's kept", groups)
		}
		h.assertNoLocks()
	})
}
