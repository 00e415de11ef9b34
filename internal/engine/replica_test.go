package engine

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/pgtest"
	"github.com/runwayhq/runway/internal/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

// TestReplicaTakeover: two engines (replicas a and b) on one PostgreSQL
// store. a records a release and runs it until its runner stops at a
// step boundary, as a killed server would; b takes the release over once
// a's claim lapses, finishes it from the recorded step, and no step is
// recorded twice.
func TestReplicaTakeover(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenPostgres(ctx, pgtest.Database(t), store.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sim := newFake(t)
	opts := func(replica string) Options {
		return Options{PollInterval: 2 * time.Millisecond, LockTTL: testLockTTL, CleanupTimeout: 3 * time.Second,
			Replica: replica, ClaimTTL: 900 * time.Millisecond}
	}
	a := New(st, Drivers{"local": sim}, opts("a"))
	crashed := make(chan struct{})
	a.fault = func(id string, b boundary) bool {
		if b.State == StateDeploy && b.Step == 1 && !b.After {
			select {
			case <-crashed:
			default:
				close(crashed)
			}
			return true
		}
		return false
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	r, err := a.Submit(ctx, Request{Environment: "staging", Service: service("rolling", "v1"), CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("the release never reached Deploy step 1 on a")
	}
	a.Close() // a is gone: it neither renews nor scans any more
	got, err := st.GetRelease(ctx, r.ID)
	// (Epoch 1 unless the machine is so loaded that a's claim lapsed while
	// its runner was stopped and a's own scan took the release again: each
	// such runner stopped at the same boundary.)
	if err != nil || got.Runner != "a" || got.RunnerEpoch < 1 || got.Done {
		t.Fatalf("on a: %+v %v", got, err)
	}
	b := New(st, Drivers{"local": sim}, opts("b"))
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done, err := b.Wait(wctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != string(StateSuccess) || done.Runner != "b" || done.RunnerEpoch <= got.RunnerEpoch {
		t.Fatalf("ended %s on %s at epoch %d: %s", done.State, done.Runner, done.RunnerEpoch, done.Error)
	}
	evs, err := st.ListEvents(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	resumed := 0
	for _, e := range evs {
		k := fmt.Sprintf("%s/%d/%s", e.State, e.Step, e.Message)
		if e.Message == "resumed" {
			resumed++
			continue
		}
		if seen[k] {
			t.Errorf("recorded twice: %s", k)
		}
		seen[k] = true
	}
	// Once by b, and at most once by each later claim (a's of its stopped
	// release, b's own if its claim lapsed on a loaded machine).
	if resumed < 1 || int64(resumed) >= done.RunnerEpoch {
		t.Errorf("resumed %d times, want once by b and at most once by each of the %d later claims", resumed, done.RunnerEpoch-2)
	}
}

// TestReplicaFencedWrite: once another replica claimed a release, the
// first runner's progress and events are refused with store.ErrFenced,
// and its renewal stops it without a write.
func TestReplicaFencedWrite(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenPostgres(ctx, pgtest.Database(t), store.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sim := newFake(t)
	a := New(st, Drivers{"local": sim}, Options{PollInterval: 2 * time.Millisecond, LockTTL: testLockTTL,
		Replica: "a", ClaimTTL: time.Hour})
	hold := make(chan struct{})
	a.fault = func(id string, b boundary) bool {
		if b.State == StateDeploy && b.Step == 1 && !b.After {
			<-hold // a "paused" runner
		}
		return false
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	r, err := a.Submit(ctx, Request{Environment: "staging", Service: service("rolling", "v1"), CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := st.GetRelease(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == string(StateDeploy) && got.Step >= 0 && got.RunnerEpoch == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release at %s step %d", got.State, got.Step)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Another replica claims it (its claim lapsed on its clock, say).
	if _, err := st.SQL().ExecContext(ctx, `UPDATE releases SET runner = 'b', epoch = epoch + 1 WHERE id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	before, _ := st.ListEvents(ctx, r.ID)
	beforeRel, _ := st.GetRelease(ctx, r.ID)
	close(hold)
	// a's runner tries its next step and is refused: it ends without
	// writing anything, and the release stays as b's.
	deadline = time.Now().Add(30 * time.Second)
	for {
		a.mu.Lock()
		running := a.running[r.ID]
		a.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a's runner did not stop")
		}
		time.Sleep(5 * time.Millisecond)
	}
	after, _ := st.ListEvents(ctx, r.ID)
	afterRel, _ := st.GetRelease(ctx, r.ID)
	if len(after) != len(before) || afterRel.State != beforeRel.State || afterRel.Step != beforeRel.Step || afterRel.Runner != "b" {
		t.Fatalf("a wrote after being fenced: %d → %d events, %s/%d → %s/%d, runner %s",
			len(before), len(after), beforeRel.State, beforeRel.Step, afterRel.State, afterRel.Step, afterRel.Runner)
	}
}
