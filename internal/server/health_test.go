package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
	"github.com/runwayhq/runway/internal/target/fake"
)

// TestStatusListsFailureDirty: a release that ended FailureDirty is listed
// by the service's status, and raises the built-in alarm, until a later
// release succeeds.
func TestStatusListsFailureDirty(t *testing.T) {
	p := newInProc(t)
	ctx := context.Background()
	src := "project \"hello\" {}\nenvironment \"staging\" {}\n"
	if _, err := p.b.ApplyProject(ctx, "hello", apiwire.ApplyProjectRequest{Source: src}, "admin"); err != nil {
		t.Fatal(err)
	}
	add := func(state engine.State, errMsg string) *store.Release {
		r := &store.Release{ID: store.NewID(time.Now()), Project: "hello", Environment: "staging", Service: "web", Version: "1",
			Spec: []byte("{}"), Progress: store.Progress{State: string(engine.StateValidate)}}
		if err := p.b.st.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		pr := r.Progress
		pr.State, pr.Done, pr.Error = string(state), true, errMsg
		if err := p.b.st.SaveProgress(ctx, r.ID, pr); err != nil {
			t.Fatal(err)
		}
		r.Progress = pr
		return r
	}
	add(engine.StateSuccess, "")
	dirty := add(engine.StateFailureDirty, "clean-up incomplete: delete group web-x: agent unreachable")
	add(engine.StateFailureClean, "Timeout")
	st, err := p.b.Status(ctx, "hello", "staging", "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.FailureDirty) != 1 || st.FailureDirty[0].ID != dirty.ID {
		t.Fatalf("failure_dirty %+v, want release %s", st.FailureDirty, dirty.ID)
	}
	if got := builtinAlerts([]*store.Release{dirty}, false, 0, false); len(got) != 1 || got[0] != AlarmFailureDirty {
		t.Errorf("built-in alarms of a FailureDirty release: %v", got)
	}
	add(engine.StateSuccess, "")
	if st, err = p.b.Status(ctx, "hello", "staging", "web"); err != nil {
		t.Fatal(err)
	}
	if len(st.FailureDirty) != 0 {
		t.Errorf("a later Success did not resolve it: %+v", st.FailureDirty)
	}
}

func TestBuiltinAlerts(t *testing.T) {
	for _, tc := range []struct {
		routed    bool
		healthy   int
		crashLoop bool
		want      []string
	}{
		{true, 2, false, nil},
		{true, 0, false, []string{AlarmNoHealthy}},
		{false, 0, false, nil}, // nothing routed: nothing is expected to serve
		{true, 1, true, []string{AlarmCrashLoop}},
	} {
		got := builtinAlerts(nil, tc.routed, tc.healthy, tc.crashLoop)
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("routed=%v healthy=%d crashLoop=%v: %v, want %v", tc.routed, tc.healthy, tc.crashLoop, got, tc.want)
		}
	}
}

// TestAlarmStates drives the evaluator with a fake target and a clock: an
// alarm whose condition holds is OK until it held for its `for`, then
// ALERT (an event, a notification queued), and OK again as soon as it no
// longer holds (another event and notification).
func TestAlarmStates(t *testing.T) {
	p := newInProc(t)
	ctx := context.Background()
	src := "project \"hello\" {}\nenvironment \"staging\" {}\nnotify \"ops\" {\n  webhook = \"https://hooks.example.com/x\"\n}\n"
	if _, err := p.b.ApplyProject(ctx, "hello", apiwire.ApplyProjectRequest{Source: src}, "admin"); err != nil {
		t.Fatal(err)
	}
	tg := fake.New(fake.Options{})
	t.Cleanup(tg.Close)
	ref := target.ServiceRef{Project: "hello", Environment: "staging", Service: "web"}
	spec := &config.Service{Name: "web", Env: map[string]string{"FAKE_P99_MS": "50"}}
	if err := tg.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: "web-1", Release: "1", Spec: spec, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tg.SetRoutes(ctx, ref, []strategy.Route{{Group: "web-1", Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ev := &evaluator{b: p.b, now: func() time.Time { return now }}
	slow := alarmDef{Name: "slow", Metric: "latency_p99", Comparison: ">", Threshold: 0.02, For: "30s", Notify: []string{"ops"}}
	state := func(defs ...alarmDef) string {
		t.Helper()
		var got string
		for i := 0; i < 200; i++ { // until the fake served a request
			st := ev.service(ctx, tg, ref, defs)
			if got = st[len(st)-1]; got != AlarmNoData {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		return got
	}
	if got := state(slow); got != AlarmOK {
		t.Fatalf("p99 50ms > 20ms for 0s of 30s: %s, want OK", got)
	}
	now = now.Add(31 * time.Second)
	if got := state(slow); got != AlarmAlert {
		t.Fatalf("after 31s: %s, want ALERT", got)
	}
	slow.Threshold = 0.1
	now = now.Add(10 * time.Second)
	if got := state(slow); got != AlarmOK {
		t.Fatalf("p99 50ms > 100ms: %s, want OK", got)
	}
	evs, err := p.b.st.Feed(ctx, store.FeedFilter{Project: "hello", Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range evs {
		msgs = append(msgs, e.Kind+": "+e.Message)
	}
	want := []string{"alarm.alert: alarm slow of hello/staging/web: OK → ALERT (latency_p99 0.05 > 0.02)",
		"alarm.ok: alarm slow of hello/staging/web: ALERT → OK (latency_p99 0.05 > 0.1)"}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	ns, err := p.b.st.ListNotifications(ctx, store.NotificationFilter{Project: "hello"})
	if err != nil || len(ns) != 2 || ns[0].Channel != "ops" || !strings.Contains(string(ns[0].Payload), `"state":"OK","previous":"ALERT"`) {
		t.Errorf("notifications: %v %+v", err, ns)
	}
	// A channel the project does not have fails the attempt, and after 10
	// minutes the notification is given up.
	nt := &notifier{b: p.b, secrets: VaultSecrets{Vault: p.b.secrets}, client: http.DefaultClient, now: func() time.Time { return now }}
	x := ns[0]
	x.Channel = "gone"
	nt.deliver(ctx, x)
	if x.State != store.NotificationPending || x.Attempts != 1 || !x.NextAt.Equal(now.Add(retryBase)) || !strings.Contains(x.LastError, `no notify channel "gone"`) {
		t.Errorf("first failed attempt: %+v", x)
	}
	now = now.Add(notifyGiveUp)
	nt.deliver(ctx, x)
	if x.State != store.NotificationFailed || x.Attempts != 2 {
		t.Errorf("after 10 minutes: %+v", x)
	}
}

// TestHaltAndApplyAreEvents: a halt and a project apply are events with
// their actor and target.
func TestHaltAndApplyAreEvents(t *testing.T) {
	p := newInProc(t)
	ctx := context.Background()
	if _, err := p.b.ApplyProject(ctx, "hello", apiwire.ApplyProjectRequest{Source: "project \"hello\" {}\nenvironment \"staging\" {}\n"}, "ana"); err != nil {
		t.Fatal(err)
	}
	r := &store.Release{ID: store.NewID(time.Now()), Project: "hello", Environment: "staging", Service: "web", Spec: []byte("{}"), Progress: store.Progress{State: "Deploy"}}
	if err := p.b.st.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := p.b.Halt(ctx, r.ID, "", "bob"); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := p.b.Events(ctx, apiwire.EventFilter{Project: "hello", Environment: "staging", Limit: 10}, func(e apiwire.ServiceEvent) error {
		got = append(got, e.Kind+" "+e.Actor+" "+e.Target+": "+e.Message)
		return nil
	})
	want := []string{"project.applied ana project hello: project hello applied (version 1)",
		"release.halt bob release " + r.ID + ": halt requested: halted by bob"}
	if err != nil || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events: %v\n%s\nwant\n%s", err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestEventsFollowFromNothing: following an empty feed sends each new
// event once.
func TestEventsFollowFromNothing(t *testing.T) {
	p := newInProc(t)
	p.b.feedPoll = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan apiwire.ServiceEvent, 100)
	done := make(chan error, 1)
	go func() {
		done <- p.b.Events(ctx, apiwire.EventFilter{Project: "hello", Limit: 10, Follow: true}, func(e apiwire.ServiceEvent) error {
			got <- e
			return nil
		})
	}()
	p.b.record(ctx, &store.ServiceEvent{Kind: "project.applied", Project: "hello", Actor: "ana", Target: "project hello", Message: "one"})
	select {
	case e := <-got:
		if e.Message != "one" {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new event was not followed")
	}
	// Some polls later, nothing was sent again.
	p.b.record(ctx, &store.ServiceEvent{Kind: "project.applied", Project: "hello", Actor: "ana", Target: "project hello", Message: "two"})
	select {
	case e := <-got:
		if e.Message != "two" {
			t.Fatalf("sent again: %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second event was not followed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("%d more events sent", len(got))
	}
}

// TestEventsFollowLateCommit: an event whose id was made before the
// follower started but which was stored after (its insert committed late)
// is still sent, once.
func TestEventsFollowLateCommit(t *testing.T) {
	p := newInProc(t)
	p.b.feedPoll = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	late := store.IDAt(time.Now().Add(-time.Second)) // made before the follow began
	got := make(chan apiwire.ServiceEvent, 100)
	done := make(chan error, 1)
	go func() {
		done <- p.b.Events(ctx, apiwire.EventFilter{Project: "hello", Limit: 10, Follow: true}, func(e apiwire.ServiceEvent) error {
			got <- e
			return nil
		})
	}()
	next := func(what string) apiwire.ServiceEvent {
		t.Helper()
		select {
		case e := <-got:
			return e
		case <-time.After(10 * time.Second):
			t.Fatalf("%s was not followed", what)
		}
		return apiwire.ServiceEvent{}
	}
	// The follower is polling once it sent an event stored after it began.
	p.b.record(ctx, &store.ServiceEvent{Kind: "project.applied", Project: "hello", Actor: "ana", Target: "project hello", Message: "first"})
	if e := next("the first event"); e.Message != "first" {
		t.Fatalf("got %+v", e)
	}
	if err := p.b.st.AppendServiceEvent(ctx, &store.ServiceEvent{ID: late, Kind: "project.applied", Project: "hello", Actor: "ana", Target: "project hello", Message: "late"}); err != nil {
		t.Fatal(err)
	}
	if e := next("the late event"); e.Message != "late" {
		t.Fatalf("got %+v, want the late event", e)
	}
	p.b.record(ctx, &store.ServiceEvent{Kind: "project.applied", Project: "hello", Actor: "ana", Target: "project hello", Message: "last"})
	if e := next("the last event"); e.Message != "last" {
		t.Fatalf("got %+v: the late event was sent again", e)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("%d more events sent", len(got))
	}
}

// TestFailureDirtyNotifies: a release that ended FailureDirty raises the
// built-in alarm, which notifies the project's channels; a later Success
// clears it, and that is a notification too.
func TestFailureDirtyNotifies(t *testing.T) {
	p := newInProc(t)
	ctx := context.Background()
	src := "project \"hello\" {}\nenvironment \"staging\" {}\nnotify \"ops\" {\n  webhook = \"https://hooks.example.com/x\"\n}\n"
	if _, err := p.b.ApplyProject(ctx, "hello", apiwire.ApplyProjectRequest{Source: src}, "admin"); err != nil {
		t.Fatal(err)
	}
	tg := fake.New(fake.Options{})
	t.Cleanup(tg.Close)
	ref := target.ServiceRef{Project: "hello", Environment: "staging", Service: "web"}
	if err := tg.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: "web-1", Release: "1", Spec: &config.Service{Name: "web"}, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tg.SetRoutes(ctx, ref, []strategy.Route{{Group: "web-1", Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	end := func(state engine.State, msg string) {
		r := &store.Release{ID: store.NewID(time.Now()), Project: "hello", Environment: "staging", Service: "web", Version: "1",
			Spec: []byte("{}"), Progress: store.Progress{State: string(engine.StateValidate)}}
		if err := p.b.st.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		pr := r.Progress
		pr.State, pr.Done, pr.Error = string(state), true, msg
		if err := p.b.st.SaveProgress(ctx, r.ID, pr); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ev := &evaluator{b: p.b, now: func() time.Time { return now }}
	stateOf := func(name string) string {
		t.Helper()
		for i := 0; i < 200; i++ { // until the fake reports the group
			ev.service(ctx, tg, ref, builtinDefs)
			list, err := p.b.st.ListAlarmStates(ctx, store.AlarmFilter{Project: "hello", Environment: "staging", Service: "web"})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range list {
				if a.Name == name && a.State != AlarmNoData {
					return a.State
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		return AlarmNoData
	}
	end(engine.StateSuccess, "")
	if got := stateOf(AlarmFailureDirty); got != AlarmOK {
		t.Fatalf("after a Success: %s, want OK", got)
	}
	end(engine.StateFailureDirty, "clean-up incomplete: delete group web-x: agent unreachable")
	now = now.Add(15 * time.Second)
	if got := stateOf(AlarmFailureDirty); got != AlarmAlert {
		t.Fatalf("after a FailureDirty release: %s, want ALERT", got)
	}
	end(engine.StateSuccess, "")
	now = now.Add(15 * time.Second)
	if got := stateOf(AlarmFailureDirty); got != AlarmOK {
		t.Fatalf("after a later Success: %s, want OK", got)
	}
	ns, err := p.b.st.ListNotifications(ctx, store.NotificationFilter{Project: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range ns {
		var pl alarmPayload
		if err := json.Unmarshal(n.Payload, &pl); err != nil {
			t.Fatal(err)
		}
		if pl.Alarm.Name == AlarmFailureDirty {
			got = append(got, n.Channel+" "+pl.Previous+"→"+pl.State)
		}
	}
	slices.Sort(got)
	if want := []string{"ops ALERT→OK", "ops OK→ALERT"}; !slices.Equal(got, want) {
		t.Errorf("notifications of %s: %v, want %v", AlarmFailureDirty, got, want)
	}
}
