// Package targettest is the conformance suite of package target: every
// target runs it in its own package's tests, with a constructor that gives
// the suite the target and a few hooks (a restart, a healthy manifest,
// requests, a held request, a task). It checks what the engine relies on:
//
//   - capabilities truthful: what Capabilities declares is accepted, one
//     step past it is refused;
//   - every call idempotent after a simulated crash: each call made again
//     through a restarted target (a new server over the same data plane)
//     changes nothing more;
//   - drain honoured: deleting a group waits for its requests in flight, at
//     most the drain given with the call;
//   - weights applied: requests reach the groups in the ratio of their
//     weights, and the totals count them;
//   - observe after delete: a deleted group is missing, not an error, and
//     its logs stay readable;
//   - logs followed: a line an instance writes while its group's logs are
//     followed arrives, and following ends without an error with its context;
//   - task re-attach: a task started before a crash is observed to its end
//     by the restarted target and never runs twice; a stopped one runs again.
package targettest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// Harness is a target under test and the hooks the suite needs. Every hook
// is required, but those that only the cases Skip names use.
type Harness struct {
	// Target is the target under test.
	Target target.Target
	// Restart returns the target as a server restarted after a crash sees
	// it: a new value over the same data plane and the same records the
	// server keeps (task records).
	Restart func(t *testing.T) target.Target
	// Spec returns the manifest of a release of ref whose instances turn
	// healthy at once and serve requests.
	Spec func(t *testing.T, ref target.ServiceRef) *config.Service
	// Send sends n requests to ref's route and returns once they are
	// answered.
	Send func(t *testing.T, ref target.ServiceRef, n int)
	// Hold starts a request to group (the only group of ref's route) that
	// runs until the target ends it, and returns once it is in flight; the
	// channel is closed when it ended.
	Hold func(t *testing.T, ref target.ServiceRef, group string) (ended <-chan struct{})
	// Task returns a task of ref with id that runs for d and then exits
	// with code, and a count of the times it started.
	Task func(t *testing.T, ref target.ServiceRef, id string, d time.Duration, code int) (target.Task, func() int)
	// Skip names cases (CapabilitiesTruthful, WeightsApplied, ...) this
	// harness cannot run, each with the reason the test prints; the hooks
	// only they use may then be nil.
	Skip map[string]string
}

var seq atomic.Int64

// Run runs the suite; newHarness is called once per subtest and cleans up
// with t.
func Run(t *testing.T, newHarness func(t *testing.T) *Harness) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, *Harness, target.ServiceRef)
	}{
		{"CapabilitiesTruthful", capabilitiesTruthful},
		{"IdempotentAfterCrash", idempotentAfterCrash},
		{"DrainHonoured", drainHonoured},
		{"WeightsApplied", weightsApplied},
		{"ObserveAfterDelete", observeAfterDelete},
		{"TaskReattach", taskReattach},
		{"LogsFollowed", logsFollowed},
		{"LogsFollowGainedInstances", logsFollowGained},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if why, ok := h.Skip[c.name]; ok {
				t.Skip(why)
			}
			ref := target.ServiceRef{Project: "conformance", Environment: "test", Service: fmt.Sprintf("svc%d", seq.Add(1))}
			c.fn(t, h, ref)
		})
	}
}

// wait bounds every wait of the suite: generous, since a loaded machine
// (a real control plane and its kwok nodes among other tests) is slow.
const wait = 3 * time.Minute

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error: %v)", what, wait, err)
		}
		<-time.After(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait+30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func release(n int) string { return fmt.Sprintf("01JC0NF0RMANCE%012d", n) }

// group creates a group of count instances of a new release and, when
// count > 0, waits until they are healthy.
func group(t *testing.T, h *Harness, tg target.Target, ref target.ServiceRef, n, count int) string {
	t.Helper()
	ctx := ctxT(t)
	rel := release(n)
	name := strategy.GroupName(ref.Service, rel, tg.Capabilities().GroupNameMax)
	spec := h.Spec(t, ref)
	if err := tg.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: name, Release: rel, Spec: spec, Count: count}); err != nil {
		t.Fatalf("EnsureGroup %s: %v", name, err)
	}
	if count > 0 {
		eventually(t, "group "+name+" healthy", func() (bool, error) {
			st, err := tg.ObserveGroup(ctx, ref, name)
			return st.Healthy == count, err
		})
	}
	return name
}

func capabilitiesTruthful(t *testing.T, h *Harness, ref target.ServiceRef) {
	ctx := ctxT(t)
	tg := h.Target
	c := tg.Capabilities()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	// A 20-character service's group name is within the budget and accepted;
	// one character more than the budget is refused.
	long := target.ServiceRef{Project: ref.Project, Environment: ref.Environment, Service: "payments-gateway-eu" + ref.Service[len(ref.Service)-1:]}
	name := strategy.GroupName(long.Service, release(1), c.GroupNameMax)
	if len(name) > c.GroupNameMax {
		t.Fatalf("GroupName gave %d characters, budget %d", len(name), c.GroupNameMax)
	}
	if err := tg.EnsureGroup(ctx, target.GroupSpec{Ref: long, Group: name, Release: release(1), Spec: h.Spec(t, long)}); err != nil {
		t.Errorf("a group name of %d characters (the budget is %d): %v", len(name), c.GroupNameMax, err)
	}
	tooLong := strings.Repeat("g", c.GroupNameMax+1)
	if err := tg.EnsureGroup(ctx, target.GroupSpec{Ref: long, Group: tooLong, Release: release(2), Spec: h.Spec(t, long)}); err == nil {
		t.Errorf("a group name of %d characters was accepted: the budget of %d is not the target's", len(tooLong), c.GroupNameMax)
	}
	for _, g := range []string{name, tooLong} {
		_ = tg.DeleteGroup(ctx, long, g, 0)
	}

	// MaxWeightedGroups groups at MaxWeight each are carried; one more
	// group, or one more weight, is refused.
	var routes []strategy.Route
	for i := range c.MaxWeightedGroups + 1 {
		routes = append(routes, strategy.Route{Group: group(t, h, tg, ref, 10+i, 0), Weight: c.MaxWeight})
	}
	if err := tg.SetRoutes(ctx, ref, routes[:c.MaxWeightedGroups]); err != nil {
		t.Fatalf("%d groups at weight %d (declared): %v", c.MaxWeightedGroups, c.MaxWeight, err)
	}
	got, err := tg.Routes(ctx, ref)
	if err != nil || !reflect.DeepEqual(got, routes[:c.MaxWeightedGroups]) {
		t.Errorf("Routes = %v, %v; want what was set", got, err)
	}
	if err := tg.SetRoutes(ctx, ref, routes); err == nil {
		t.Errorf("%d weighted groups accepted: the declared maximum %d is not the target's", len(routes), c.MaxWeightedGroups)
	}
	over := []strategy.Route{{Group: routes[0].Group, Weight: c.MaxWeight + 1}}
	if err := tg.SetRoutes(ctx, ref, over); err == nil {
		t.Errorf("weight %d accepted: the declared maximum %d is not the target's", c.MaxWeight+1, c.MaxWeight)
	}

	// The statistics windows declared are measured; shorter or longer ones
	// are refused.
	g := routes[0].Group
	for _, w := range []time.Duration{c.StatsWindowMin, c.StatsWindowMax} {
		if _, err := tg.WindowStats(ctx, ref, g, w); err != nil {
			t.Errorf("WindowStats over %s (declared): %v", w, err)
		}
	}
	for _, w := range []time.Duration{c.StatsWindowMin - time.Millisecond, c.StatsWindowMax + time.Second} {
		if _, err := tg.WindowStats(ctx, ref, g, w); err == nil {
			t.Errorf("WindowStats over %s accepted: outside the declared %s to %s", w, c.StatsWindowMin, c.StatsWindowMax)
		}
	}

	// Preview: declared means it routes, undeclared means ErrUnsupported
	// (and removing is always fine).
	err = tg.SetPreview(ctx, ref, g)
	switch {
	case c.Preview && err != nil:
		t.Errorf("SetPreview with a declared preview route: %v", err)
	case !c.Preview && !errors.Is(err, target.ErrUnsupported):
		t.Errorf("SetPreview without a declared preview route: %v, want ErrUnsupported", err)
	}
	if err := tg.SetPreview(ctx, ref, ""); err != nil {
		t.Errorf("SetPreview(\"\"): %v", err)
	}
}

func idempotentAfterCrash(t *testing.T, h *Harness, ref target.ServiceRef) {
	ctx := ctxT(t)
	first := h.Target
	// Each call is made, then made again by the restarted target, as the
	// engine does when it resumes the step it was on.
	twice := func(what string, call func(target.Target) error) {
		t.Helper()
		if err := call(first); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		first = h.Restart(t)
		if err := call(first); err != nil {
			t.Fatalf("%s again after a crash: %v", what, err)
		}
	}
	rel := release(1)
	name := strategy.GroupName(ref.Service, rel, first.Capabilities().GroupNameMax)
	spec := h.Spec(t, ref)
	observe := func(want int) {
		t.Helper()
		eventually(t, fmt.Sprintf("%d healthy instances", want), func() (bool, error) {
			st, err := first.ObserveGroup(ctx, ref, name)
			return st.Exists && st.Desired == want && st.Healthy == want && st.Starting == 0, err
		})
	}
	twice("EnsureGroup", func(tg target.Target) error {
		return tg.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: name, Release: rel, Spec: spec, Count: 1})
	})
	observe(1)
	routes := []strategy.Route{{Group: name, Weight: 100}}
	twice("SetRoutes", func(tg target.Target) error { return tg.SetRoutes(ctx, ref, routes) })
	if got, err := first.Routes(ctx, ref); err != nil || !reflect.DeepEqual(got, routes) {
		t.Errorf("Routes = %v, %v; want %v", got, err, routes)
	}
	if first.Capabilities().Preview {
		twice("SetPreview", func(tg target.Target) error { return tg.SetPreview(ctx, ref, name) })
		twice("SetPreview(\"\")", func(tg target.Target) error { return tg.SetPreview(ctx, ref, "") })
	}
	twice("ScaleGroup up", func(tg target.Target) error { return tg.ScaleGroup(ctx, ref, name, 2, time.Second) })
	observe(2)
	twice("ScaleGroup down", func(tg target.Target) error { return tg.ScaleGroup(ctx, ref, name, 1, time.Second) })
	observe(1)
	groups, err := first.ListGroups(ctx, ref)
	if err != nil || len(groups) != 1 || groups[0].Name != name || groups[0].Release != rel {
		t.Errorf("ListGroups = %+v, %v; want the one group %s of release %s", groups, err, name, rel)
	}
	twice("SetRoutes(nil)", func(tg target.Target) error { return tg.SetRoutes(ctx, ref, nil) })
	if got, err := first.Routes(ctx, ref); err != nil || len(got) != 0 {
		t.Errorf("Routes after removing them = %v, %v", got, err)
	}
	twice("DeleteGroup", func(tg target.Target) error { return tg.DeleteGroup(ctx, ref, name, time.Second) })
	twice("ScaleGroup of a missing group to 0", func(tg target.Target) error { return tg.ScaleGroup(ctx, ref, name, 0, 0) })
	twice("SetRoutes(nil) without routes", func(tg target.Target) error { return tg.SetRoutes(ctx, ref, nil) })
	task, runs := h.Task(t, ref, ref.Service+"/idempotent", 0, 0)
	twice("StartTask", func(tg target.Target) error { return tg.StartTask(ctx, task) })
	eventually(t, "the task done", func() (bool, error) {
		st, err := first.ObserveTask(ctx, ref, task.ID)
		return st.Done, err
	})
	if n := runs(); n != 1 {
		t.Errorf("a task started twice across a crash ran %d times, want once", n)
	}
}

func drainHonoured(t *testing.T, h *Harness, ref target.ServiceRef) {
	ctx := ctxT(t)
	tg := h.Target
	name := group(t, h, tg, ref, 1, 1)
	if err := tg.SetRoutes(ctx, ref, []strategy.Route{{Group: name, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	ended := h.Hold(t, ref, name)
	const drain = 800 * time.Millisecond
	start := time.Now()
	if err := tg.DeleteGroup(ctx, ref, name, drain); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// It waited for the request in flight, and no longer than the drain
	// (plus the time to stop the instance).
	if took < drain*3/4 {
		t.Errorf("DeleteGroup returned after %s with a request in flight: it did not wait for the drain of %s", took, drain)
	}
	if took > drain+10*time.Second {
		t.Errorf("DeleteGroup took %s: the drain of %s was not honoured", took, drain)
	}
	select {
	case <-ended:
	case <-time.After(wait):
		t.Errorf("the request in flight still runs %s after its group was deleted", wait)
	}
}

func weightsApplied(t *testing.T, h *Harness, ref target.ServiceRef) {
	ctx := ctxT(t)
	tg := h.Target
	c := tg.Capabilities()
	a, b := group(t, h, tg, ref, 1, 1), group(t, h, tg, ref, 2, 1)
	if err := tg.SetRoutes(ctx, ref, []strategy.Route{{Group: a, Weight: 3}, {Group: b, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	before, err := tg.Counters(ctx, ref)
	if err != nil && !errors.Is(err, target.ErrUnsupported) {
		t.Fatal(err)
	}
	const n = 400
	h.Send(t, ref, n)
	window := min(max(time.Minute, c.StatsWindowMin), c.StatsWindowMax)
	sa, err := tg.WindowStats(ctx, ref, a, window)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := tg.WindowStats(ctx, ref, b, window)
	if err != nil {
		t.Fatal(err)
	}
	total := sa.Requests + sb.Requests
	if total < n {
		t.Fatalf("the groups' statistics count %d requests, %d were sent", total, n)
	}
	if share := float64(sa.Requests) / float64(total); share < 0.65 || share > 0.85 {
		t.Errorf("group of weight 3 of 4 got %.2f of the requests (%d of %d)", share, sa.Requests, total)
	}
	if after, err := tg.Counters(ctx, ref); err == nil && after.Served-before.Served < n {
		t.Errorf("Counters served %d more, %d were answered", after.Served-before.Served, n)
	}
}

func observeAfterDelete(t *testing.T, h *Harness, ref target.ServiceRef) {
	ctx := ctxT(t)
	tg := h.Target
	name := group(t, h, tg, ref, 1, 1)
	if err := tg.DeleteGroup(ctx, ref, name, 0); err != nil {
		t.Fatal(err)
	}
	st, err := tg.ObserveGroup(ctx, ref, name)
	if err != nil || st.Exists || st.Desired != 0 || st.Healthy != 0 {
		t.Errorf("ObserveGroup of a deleted group = %+v, %v; want missing, no error", st, err)
	}
	if groups, err := tg.ListGroups(ctx, ref); err != nil || len(groups) != 0 {
		t.Errorf("ListGroups after delete = %+v, %v", groups, err)
	}
	eventually(t, "the deleted group's logs", func() (bool, error) {
		n := 0
		err := tg.Logs(ctx, ref, target.LogQuery{Group: name}, func(target.LogLine) error { n++; return nil })
		return n > 0, err
	})
}

func taskReattach(t *testing.T, h *Harness, ref target.ServiceRef) {
	ctx := ctxT(t)
	if !h.Target.Capabilities().TaskReattach {
		t.Skip("the target declares that tasks do not re-attach")
	}
	task, runs := h.Task(t, ref, ref.Service+"/pre_deploy", 500*time.Millisecond, 3)
	if err := h.Target.StartTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if st, err := h.Target.ObserveTask(ctx, ref, task.ID); err != nil || st.Done {
		t.Fatalf("a task of 500 ms observed at once: %+v, %v; want running", st, err)
	}
	// The server crashes; the next one starts the step again and observes.
	next := h.Restart(t)
	if err := next.StartTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	var res target.TaskResult
	eventually(t, "the re-attached task done", func() (bool, error) {
		st, err := next.ObserveTask(ctx, ref, task.ID)
		res = st.Result
		return st.Done, err
	})
	if res.ExitCode != 3 {
		t.Errorf("re-attached task's exit code %d, want 3", res.ExitCode)
	}
	if n := runs(); n != 1 {
		t.Errorf("task ran %d times across a crash, want once", n)
	}
	// A finished task keeps its result, also when stopped.
	if err := next.StopTask(ctx, ref, task.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := next.ObserveTask(ctx, ref, task.ID); err != nil || !st.Done || st.Result.ExitCode != 3 {
		t.Errorf("finished task after StopTask: %+v, %v", st, err)
	}

	// A stopped (halted) running task is forgotten, and runs again.
	long, longRuns := h.Task(t, ref, ref.Service+"/verify", time.Hour, 0)
	if err := next.StartTask(ctx, long); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = next.StopTask(context.Background(), ref, long.ID) })
	eventually(t, "the long task started", func() (bool, error) { return longRuns() == 1, nil })
	if err := next.StopTask(ctx, ref, long.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := next.ObserveTask(ctx, ref, long.ID); !errors.Is(err, target.ErrTaskNotStarted) {
		t.Errorf("ObserveTask of a stopped task: %v, want ErrTaskNotStarted", err)
	}
	if err := next.StartTask(ctx, long); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stopped task started again", func() (bool, error) { return longRuns() == 2, nil })
	if err := next.StopTask(ctx, ref, long.ID); err != nil {
		t.Fatal(err)
	}
}

func logsFollowed(t *testing.T, h *Harness, ref target.ServiceRef) {
	ctx := ctxT(t)
	tg := h.Target
	name := group(t, h, tg, ref, 1, 1)
	// The instance has written its first line (booting, listening).
	eventually(t, "the instance's first line", func() (bool, error) {
		n := 0
		err := tg.Logs(ctx, ref, target.LogQuery{Group: name}, func(target.LogLine) error { n++; return nil })
		return n > 0, err
	})
	fctx, stop := context.WithCancel(ctx)
	lines := make(chan target.LogLine, 1000)
	done := make(chan error, 1)
	go func() {
		done <- tg.Logs(fctx, ref, target.LogQuery{Group: name, Follow: true}, func(l target.LogLine) error {
			lines <- l
			return nil
		})
	}()
	// The existing lines first.
	select {
	case <-lines:
	case err := <-done:
		t.Fatalf("following ended at once: %v", err)
	case <-time.After(wait):
		t.Fatal("following emitted no line of the existing ones")
	}
	for len(lines) > 0 {
		<-lines
	}
	// Stopping the instance makes it write (a stopping line): it arrives.
	if err := tg.ScaleGroup(ctx, ref, name, 0, time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lines:
	case err := <-done:
		// A target may end the stream once the instance is gone; the line
		// it wrote while stopping must have arrived before that.
		if len(lines) == 0 {
			t.Fatalf("following ended before a new line: %v", err)
		}
		if err != nil {
			t.Errorf("following ended with %v after the instance stopped, want nil", err)
		}
		stop()
		return
	case <-time.After(wait):
		t.Fatal("a line written while following did not arrive")
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("following ended with %v, want nil when its context ends", err)
		}
	case <-time.After(wait):
		t.Fatal("following did not end with its context")
	}
}

// logsFollowGained: following a group's logs also follows the instances
// it gains meanwhile (a rolling deploy grows its group), from their first
// line, and filters by instance id or text.
func logsFollowGained(t *testing.T, h *Harness, ref target.ServiceRef) {
	ctx := ctxT(t)
	tg := h.Target
	name := group(t, h, tg, ref, 1, 1)
	first := map[string]bool{}
	eventually(t, "the instance's first line", func() (bool, error) {
		err := tg.Logs(ctx, ref, target.LogQuery{Group: name}, func(l target.LogLine) error { first[l.Instance] = true; return nil })
		return len(first) == 1, err
	})
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	lines := make(chan target.LogLine, 1000)
	done := make(chan error, 1)
	go func() {
		done <- tg.Logs(fctx, ref, target.LogQuery{Group: name, Follow: true}, func(l target.LogLine) error {
			lines <- l
			return nil
		})
	}()
	if err := tg.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: name, Release: release(1), Spec: h.Spec(t, ref), Count: 2}); err != nil {
		t.Fatal(err)
	}
	var gained string
	deadline := time.After(wait)
	for gained == "" {
		select {
		case l := <-lines:
			if !first[l.Instance] {
				gained = l.Instance
			}
		case err := <-done:
			t.Fatalf("following ended: %v", err)
		case <-deadline:
			t.Fatal("no line of the instance the group gained while followed")
		}
	}
	stop()
	<-done
	// The filter: the gained instance's id selects its lines only.
	n := 0
	err := tg.Logs(ctx, ref, target.LogQuery{Group: name, Filter: gained}, func(l target.LogLine) error {
		n++
		if l.Instance != gained && !strings.Contains(l.Text, gained) {
			t.Errorf("filter %s kept a line of %s: %q", gained, l.Instance, l.Text)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Errorf("filter by instance id: %d lines, %v", n, err)
	}
	// An instance the group does not have: no line, no error (a service's
	// logs are read group by group).
	for _, follow := range []bool{false, true} {
		n = 0
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = tg.Logs(fctx, ref, target.LogQuery{Group: name, Instance: "0000dead", Follow: follow}, func(target.LogLine) error { n++; return nil })
		cancel()
		if err != nil || n != 0 {
			t.Errorf("an instance of no group (follow %v): %d lines, %v", follow, n, err)
		}
	}
}
