package server

import (
	"context"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
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
