package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
	"github.com/runwayhq/runway/internal/target/fake"
)

// walDriver wraps the stand-in target and, on every call that changes the
// target, checks that the release's persisted progress already names that
// very step: the write-ahead rule.
type walDriver struct {
	*fake.Target
	st store.Store

	mu       sync.Mutex
	problems []string
	checked  int
}

func (w *walDriver) expect(ref target.ServiceRef, what string, match func(strategy.Step) bool) {
	rs, err := w.st.ListReleases(context.Background(), store.ReleaseFilter{Environment: ref.Environment, Service: ref.Service, Unfinished: true})
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checked++
	if err != nil || len(rs) != 1 {
		w.problems = append(w.problems, fmt.Sprintf("%s: %d unfinished releases (%v)", what, len(rs), err))
		return
	}
	r := rs[0]
	var data runData
	if err := json.Unmarshal(r.Plan, &data); err != nil || data.Plan == nil {
		w.problems = append(w.problems, fmt.Sprintf("%s in state %s before a plan was persisted", what, r.State))
		return
	}
	var steps strategy.Steps
	switch State(r.State) {
	case StateDeploy:
		steps = data.Plan.Deploy
	case StateCheckHealthy:
		steps = data.Plan.Check
	case StateCleanUpSuccess:
		steps = data.Plan.Success
	case StateCleanUpFailure:
		steps = data.Plan.Failure
	}
	if r.Step >= len(steps) || r.StepStartedAt.IsZero() || !match(steps[r.Step]) {
		w.problems = append(w.problems, fmt.Sprintf("%s while the record says %s step %d", what, r.State, r.Step))
	}
}

func (w *walDriver) EnsureGroup(ctx context.Context, g target.GroupSpec) error {
	w.expect(g.Ref, fmt.Sprintf("ensure %s=%d", g.Group, g.Count), func(s strategy.Step) bool {
		e, ok := s.(strategy.EnsureGroup)
		return ok && e.Group == g.Group && e.Count == g.Count
	})
	return w.Target.EnsureGroup(ctx, g)
}

func (w *walDriver) ScaleGroup(ctx context.Context, ref target.ServiceRef, group string, n int, drain time.Duration) error {
	w.expect(ref, fmt.Sprintf("scale %s=%d", group, n), func(s strategy.Step) bool {
		e, ok := s.(strategy.ScaleGroup)
		return ok && e.Group == group && e.Count == n
	})
	return w.Target.ScaleGroup(ctx, ref, group, n, drain)
}

func (w *walDriver) DeleteGroup(ctx context.Context, ref target.ServiceRef, group string, drain time.Duration) error {
	w.expect(ref, "delete "+group, func(s strategy.Step) bool {
		e, ok := s.(strategy.DeleteGroup)
		return ok && e.Group == group
	})
	return w.Target.DeleteGroup(ctx, ref, group, drain)
}

func (w *walDriver) SetRoutes(ctx context.Context, ref target.ServiceRef, routes []strategy.Route) error {
	w.expect(ref, fmt.Sprintf("routes %v", routes), func(s strategy.Step) bool {
		e, ok := s.(strategy.SetRoutes)
		return ok && fmt.Sprint(e.Routes) == fmt.Sprint(routes)
	})
	return w.Target.SetRoutes(ctx, ref, routes)
}

func (w *walDriver) SetPreview(ctx context.Context, ref target.ServiceRef, group string) error {
	w.expect(ref, "preview "+group, func(s strategy.Step) bool {
		e, ok := s.(strategy.SetPreview)
		return ok && e.Group == group
	})
	return w.Target.SetPreview(ctx, ref, group)
}

func (w *walDriver) StartTask(ctx context.Context, t target.Task) error {
	w.expect(t.Ref, "task "+t.ID, func(s strategy.Step) bool {
		e, ok := s.(strategy.RunTask)
		return ok && e.ID == t.ID
	})
	return w.Target.StartTask(ctx, t)
}

// TestWriteAhead checks, at every change to the target, that the step doing
// it was persisted first — for each strategy, on success and on rollback.
func TestWriteAhead(t *testing.T) {
	for _, sc := range crashScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			h := newHarness(t)
			h.deploy(service(strategy.BlueGreen, "v1"))
			w := &walDriver{Target: h.sim, st: h.st}
			h.eng.Close()
			h.eng = New(h.st, Drivers{"local": w}, Options{PollInterval: 2 * time.Millisecond, LockTTL: 300 * time.Millisecond})
			end := h.deploy(sc.v2())
			if State(end.State) != sc.want {
				t.Fatalf("ended %s (%s), want %s", end.State, end.Error, sc.want)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.checked < 4 {
				t.Errorf("only %d target changes checked", w.checked)
			}
			for _, p := range w.problems {
				t.Error(p)
			}
		})
	}
}
