package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestClaims(t *testing.T) { eachStore(t, testClaims) }

// testClaims: one runner per release at a time, a lapsed claim is taken
// over with a higher epoch, and the old runner's writes are then refused
// (progress, events, renewals) while the new runner's are accepted.
func testClaims(t *testing.T, k storeKind) {
	ctx := context.Background()
	s, c := k.newStore(t)
	r := &Release{ID: NewID(c.Now()), Environment: "e", Service: "s", Spec: []byte("{}"), Progress: Progress{State: "Validate"}}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	ea, err := s.ClaimRelease(ctx, r.ID, "a", 10*time.Second)
	if err != nil || ea != 1 {
		t.Fatalf("claim a: %d %v", ea, err)
	}
	if _, err := s.ClaimRelease(ctx, r.ID, "b", 10*time.Second); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("claim b while a holds: %v", err)
	}
	if err := s.SaveProgress(ctx, r.ID, Progress{State: "Deploy", Step: 1, Epoch: ea}, &Event{State: "Deploy", Step: 1, Message: "a1"}); err != nil {
		t.Fatal(err)
	}
	c.Advance(5 * time.Second)
	if err := s.RenewClaim(ctx, r.ID, "a", ea, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Advance(11 * time.Second) // a's claim lapses
	eb, err := s.ClaimRelease(ctx, r.ID, "b", 10*time.Second)
	if err != nil || eb != 2 {
		t.Fatalf("take over: %d %v", eb, err)
	}
	got, _ := s.GetRelease(ctx, r.ID)
	if got.Runner != "b" || got.RunnerEpoch != 2 || !got.RunnerUntil.Equal(c.Now().Add(10*time.Second)) {
		t.Errorf("runner %q epoch %d until %v", got.Runner, got.RunnerEpoch, got.RunnerUntil)
	}
	// a wakes up: every write it makes is refused and changes nothing.
	if err := s.SaveProgress(ctx, r.ID, Progress{State: "Deploy", Step: 2, Epoch: ea}, &Event{State: "Deploy", Step: 2, Message: "a2"}); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale save: %v", err)
	}
	if err := s.AppendEvent(ctx, &Event{ReleaseID: r.ID, State: "Deploy", Step: 2, Message: "a2 again", Epoch: ea}); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale event: %v", err)
	}
	if err := s.RenewClaim(ctx, r.ID, "a", ea, 10*time.Second); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale renew: %v", err)
	}
	if err := s.SaveProgress(ctx, r.ID, Progress{State: "Deploy", Step: 2, Epoch: eb}, &Event{State: "Deploy", Step: 2, Message: "b2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(ctx, &Event{ReleaseID: r.ID, State: "Deploy", Step: 2, Message: "b note", Epoch: eb}); err != nil {
		t.Fatal(err)
	}
	evs, _ := s.ListEvents(ctx, r.ID)
	var msgs []string
	for _, e := range evs {
		msgs = append(msgs, e.Message)
	}
	if len(msgs) != 3 || msgs[0] != "a1" || msgs[1] != "b2" || msgs[2] != "b note" {
		t.Errorf("events %q", msgs)
	}
	// The owner claiming again (a new runner of its own) raises the epoch too.
	if e, err := s.ClaimRelease(ctx, r.ID, "b", 10*time.Second); err != nil || e != 3 {
		t.Fatalf("reclaim: %d %v", e, err)
	}
	if err := s.SaveProgress(ctx, r.ID, Progress{State: "Success", Done: true, Epoch: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimRelease(ctx, r.ID, "a", time.Second); !errors.Is(err, ErrFinished) {
		t.Fatalf("claim finished: %v", err)
	}
	if _, err := s.ClaimRelease(ctx, "nope", "a", time.Second); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim missing: %v", err)
	}
	// Unfenced writes (epoch 0, a server without replicas) are not checked.
	r2 := &Release{ID: NewID(c.Now()), Environment: "e", Service: "s2", Spec: []byte("{}"), Progress: Progress{State: "Validate"}}
	if err := s.CreateRelease(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimRelease(ctx, r2.ID, "a", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveProgress(ctx, r2.ID, Progress{State: "Deploy"}); err != nil {
		t.Fatal(err)
	}
}

// TestUnavailable: a stopped PostgreSQL is reported as unavailable (the API
// answers 503), a statement it refuses is not; once it is back the same
// store works again without reopening.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	s, _ := storeKinds[1].newStore(t)
	c := pgtestShared(t)
	if _, err := s.SQL().ExecContext(ctx, `SELECT * FROM no_such_table`); err == nil || Unavailable(err) {
		t.Fatalf("a refused statement: %v (unavailable %v)", err, Unavailable(err))
	}
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	started := false
	defer func() {
		if !started {
			c.StartServer()
		}
	}()
	_, err := s.GetRelease(ctx, "x")
	if err == nil || !Unavailable(err) {
		t.Fatalf("store down: %v (unavailable %v)", err, Unavailable(err))
	}
	if err := s.Ping(ctx); err == nil || !Unavailable(err) {
		t.Fatalf("ping: %v", err)
	}
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	started = true
	if _, err := s.GetRelease(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after restart: %v", err)
	}
}

func TestConcurrentAudit(t *testing.T) { eachStore(t, testConcurrentAudit) }

// testConcurrentAudit: two servers on one database append audit entries
// concurrently: every append succeeds, and the entries form one chain
// (sequence 1..n, each linked to the one before).
func testConcurrentAudit(t *testing.T, k storeKind) {
	ctx := context.Background()
	loc := k.location(t)
	stores := []*SQLite{k.open(t, loc, nil), k.open(t, loc, nil)}
	const n = 24
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &AuditEntry{Actor: fmt.Sprint("user-", i), Action: "release.deploy", Outcome: "201"}
			errs <- stores[i%2].AppendAudit(ctx, e, func(e *AuditEntry) string { return fmt.Sprintf("h%d<%s", e.Seq, e.PrevHash) })
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, err := stores[0].AuditRows(ctx)
	if err != nil || len(rows) != n {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	prev := ""
	for i, e := range rows {
		if e.Seq != int64(i+1) || e.PrevHash != prev {
			t.Fatalf("entry %d: seq %d prev %q, want prev %q", i+1, e.Seq, e.PrevHash, prev)
		}
		prev = e.Hash
	}
}

// TestClaimPastPausedTransaction: a replica paused in the middle of a
// transaction that locked a release's row (as `kill -STOP` leaves it)
// does not block another's claim of it: PostgreSQL ends the paused
// session after IdleInTransactionTimeout, its locks with it, and the
// paused one's transaction cannot commit when it wakes.
func TestClaimPastPausedTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := storeKinds[1].location(t)
	open := func(idle, ahead time.Duration) *SQLite {
		now := func() time.Time { return time.Now().Add(ahead) }
		s, err := OpenPostgres(ctx, dsn, PostgresOptions{Now: now, IdleInTransactionTimeout: idle, StatementTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	// other's clock is a minute ahead: a's claim has lapsed for it.
	paused, other := open(300*time.Millisecond, 0), open(0, time.Minute)
	r := &Release{ID: NewID(time.Now()), Environment: "e", Service: "s", Spec: []byte("{}"), Progress: Progress{State: "Validate"}}
	if err := paused.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := paused.ClaimRelease(ctx, r.ID, "a", time.Second); err != nil {
		t.Fatal(err)
	}
	tx, err := paused.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE releases SET runner_until = runner_until WHERE id = $1`, r.ID); err != nil {
		t.Fatal(err)
	}
	// a's transaction still holds the row.
	epoch, err := other.ClaimRelease(ctx, r.ID, "b", time.Minute)
	if err != nil || epoch != 2 {
		t.Fatalf("claim past a paused transaction: epoch %d, %v", epoch, err)
	}
	if err := tx.Commit(); err == nil {
		t.Error("the paused session's transaction committed after its session was ended")
	}
	if got, err := other.GetRelease(ctx, r.ID); err != nil || got.Runner != "b" {
		t.Errorf("runner %q, %v", got.Runner, err)
	}
}
