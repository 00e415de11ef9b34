package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock for lease expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, path string, c *clock) *SQLite {
	t.Helper()
	opts := Options{}
	if c != nil {
		opts.Now = c.Now
	}
	s, err := OpenSQLite(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestReleases(t *testing.T) { eachStore(t, testReleases) }

func testReleases(t *testing.T, k storeKind) {
	ctx := context.Background()
	s, c := k.newStore(t)
	mk := func(env, svc string) *Release {
		c.Advance(time.Millisecond)
		r := &Release{ID: NewID(c.Now()), Environment: env, Service: svc, Version: "v1", CreatedBy: "ana",
			Digest: "sha256:x", Spec: []byte(`{"name":"` + svc + `"}`), Progress: Progress{State: "Validate"}}
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := mk("staging", "web")
	b := mk("staging", "api")
	cc := mk("production", "web")

	if err := s.CreateRelease(ctx, &Release{ID: a.ID, Progress: Progress{State: "x"}}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate id: %v", err)
	}
	got, err := s.GetRelease(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Service != "web" || got.Version != "v1" || got.CreatedBy != "ana" || string(got.Spec) != `{"name":"web"}` ||
		!got.CreatedAt.Equal(a.CreatedAt) || got.State != "Validate" || got.Done {
		t.Errorf("got %+v", got)
	}
	if _, err := s.GetRelease(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing release: %v", err)
	}

	list := func(f ReleaseFilter) []string {
		rs, err := s.ListReleases(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		return ids
	}
	if ids := list(ReleaseFilter{}); fmt.Sprint(ids) != fmt.Sprint([]string{cc.ID, b.ID, a.ID}) {
		t.Errorf("all releases newest first: %v", ids)
	}
	if ids := list(ReleaseFilter{Service: "web"}); len(ids) != 2 {
		t.Errorf("service filter: %v", ids)
	}
	if ids := list(ReleaseFilter{Environment: "staging", Service: "web"}); len(ids) != 1 || ids[0] != a.ID {
		t.Errorf("env+service filter: %v", ids)
	}
	if ids := list(ReleaseFilter{Limit: 1}); len(ids) != 1 || ids[0] != cc.ID {
		t.Errorf("limit: %v", ids)
	}

	// Halt is kept across progress writes; a finished release is frozen.
	if err := s.RequestHalt(ctx, a.ID, "operator"); err != nil {
		t.Fatal(err)
	}
	p := Progress{State: "Deploy", Step: 3, StepStartedAt: c.Now(), Plan: []byte(`{"deploy":[]}`),
		Deadline: c.Now().Add(time.Minute), Served: 10, Failed: 1}
	if err := s.SaveProgress(ctx, a.ID, p); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetRelease(ctx, a.ID)
	if got.State != "Deploy" || got.Step != 3 || !got.StepStartedAt.Equal(p.StepStartedAt) || string(got.Plan) != `{"deploy":[]}` ||
		!got.Deadline.Equal(p.Deadline) || got.Served != 10 || got.Failed != 1 || !got.HaltRequested || got.HaltReason != "operator" {
		t.Errorf("after progress: %+v", got)
	}
	p.State, p.Done, p.ErrorKind, p.Error = "FailureClean", true, "Halted", "halted by operator"
	if err := s.SaveProgress(ctx, a.ID, p); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetRelease(ctx, a.ID)
	if !got.Done || got.FinishedAt.IsZero() || got.ErrorKind != "Halted" {
		t.Errorf("finished: %+v", got)
	}
	if err := s.SaveProgress(ctx, a.ID, Progress{State: "Deploy"}); !errors.Is(err, ErrFinished) {
		t.Errorf("progress after finish: %v", err)
	}
	if err := s.RequestHalt(ctx, a.ID, ""); !errors.Is(err, ErrFinished) {
		t.Errorf("halt after finish: %v", err)
	}
	if err := s.SaveProgress(ctx, "nope", p); !errors.Is(err, ErrNotFound) {
		t.Errorf("progress of missing release: %v", err)
	}
	if err := s.RequestHalt(ctx, "nope", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("halt of missing release: %v", err)
	}
	if ids := list(ReleaseFilter{Unfinished: true}); len(ids) != 2 {
		t.Errorf("unfinished: %v", ids)
	}
}

func TestEvents(t *testing.T) { eachStore(t, testEvents) }

func testEvents(t *testing.T, k storeKind) {
	ctx := context.Background()
	s, c := k.newStore(t)
	r := &Release{ID: NewID(c.Now()), Environment: "e", Service: "s", Progress: Progress{State: "Validate"}}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Same timestamp: order still follows appends (monotonic ids).
	for i := range 20 {
		if err := s.AppendEvent(ctx, &Event{ReleaseID: r.ID, State: "Deploy", Step: i, Message: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.ListEvents(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 20 {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if e.Step != i || e.Message != fmt.Sprint(i) || !e.At.Equal(c.Now()) {
			t.Errorf("event %d = %+v", i, e)
		}
	}
	if err := s.AppendEvent(ctx, &Event{ReleaseID: "nope", State: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("event of missing release: %v", err)
	}

	// Progress and its events are written together, or not at all.
	done := Progress{State: "Success", Done: true}
	if err := s.SaveProgress(ctx, r.ID, done, &Event{State: "Success", Step: -1, Message: "→ Success"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveProgress(ctx, r.ID, done, &Event{State: "Success", Step: -1, Message: "again"}); !errors.Is(err, ErrFinished) {
		t.Fatalf("progress after finish: %v", err)
	}
	evs, _ = s.ListEvents(ctx, r.ID)
	if len(evs) != 21 || evs[20].Message != "→ Success" || evs[20].ReleaseID != r.ID {
		t.Errorf("events after progress: %d, last %+v", len(evs), evs[len(evs)-1])
	}
}

func TestLeases(t *testing.T) { eachStore(t, testLeases) }

func testLeases(t *testing.T, k storeKind) {
	ctx := context.Background()
	s, c := k.newStore(t)
	const key = "staging/web"

	l, err := s.AcquireLock(ctx, key, "r1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l.Owner != "r1" || !l.ExpiresAt.Equal(c.Now().Add(time.Minute)) {
		t.Errorf("lease %+v", l)
	}
	acquired := l.AcquiredAt

	// Another owner conflicts and learns who holds it.
	_, err = s.AcquireLock(ctx, key, "r2", time.Minute)
	var held *LockHeldError
	if !errors.Is(err, ErrLockHeld) || !errors.As(err, &held) || held.Lease.Owner != "r1" {
		t.Fatalf("conflict: %v", err)
	}
	if held.Error() == "" {
		t.Error("empty message")
	}

	// The owner re-acquiring renews and keeps acquired_at.
	c.Advance(30 * time.Second)
	l, err = s.AcquireLock(ctx, key, "r1", time.Minute)
	if err != nil || !l.AcquiredAt.Equal(acquired) || !l.ExpiresAt.Equal(c.Now().Add(time.Minute)) {
		t.Fatalf("re-acquire: %+v %v", l, err)
	}

	// Renew by the owner extends; by anyone else fails.
	c.Advance(30 * time.Second)
	if l, err = s.RenewLock(ctx, key, "r1", time.Minute); err != nil || !l.ExpiresAt.Equal(c.Now().Add(time.Minute)) {
		t.Fatalf("renew: %+v %v", l, err)
	}
	if _, err := s.RenewLock(ctx, key, "r2", time.Minute); !errors.Is(err, ErrNotOwner) {
		t.Errorf("renew by other: %v", err)
	}
	// Still held one nanosecond before expiry.
	c.Advance(time.Minute - time.Nanosecond)
	if _, err := s.AcquireLock(ctx, key, "r2", time.Minute); !errors.Is(err, ErrLockHeld) {
		t.Errorf("before expiry: %v", err)
	}
	// At expiry another owner takes over.
	c.Advance(time.Nanosecond)
	l, err = s.AcquireLock(ctx, key, "r2", time.Minute)
	if err != nil || l.Owner != "r2" || !l.AcquiredAt.Equal(c.Now()) {
		t.Fatalf("takeover: %+v %v", l, err)
	}
	// The former owner can neither renew nor release it.
	if _, err := s.RenewLock(ctx, key, "r1", time.Minute); !errors.Is(err, ErrNotOwner) {
		t.Errorf("renew after takeover: %v", err)
	}
	if err := s.ReleaseLock(ctx, key, "r1"); !errors.Is(err, ErrNotOwner) {
		t.Errorf("release by former owner: %v", err)
	}
	// An expired lease nobody took is still its owner's to renew.
	c.Advance(2 * time.Minute)
	if _, err := s.RenewLock(ctx, key, "r2", time.Minute); err != nil {
		t.Errorf("renew of expired, untaken lease: %v", err)
	}
	if _, err := s.AcquireLock(ctx, "other", "r3", time.Minute); err != nil {
		t.Fatal(err)
	}
	ls, err := s.ListLocks(ctx)
	if err != nil || len(ls) != 2 || ls[0].Key != "other" || ls[1].Owner != "r2" {
		t.Errorf("list: %+v %v", ls, err)
	}
	if err := s.ReleaseLock(ctx, key, "r2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetLock(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Errorf("after release: %v", err)
	}
	if err := s.ReleaseLock(ctx, key, "r2"); !errors.Is(err, ErrNotOwner) {
		t.Errorf("double release: %v", err)
	}
	// Free again: anyone acquires.
	if _, err := s.AcquireLock(ctx, key, "r4", time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		key, owner string
		ttl        time.Duration
	}{{"", "o", time.Second}, {"k", "", time.Second}, {"k", "o", 0}} {
		if _, err := s.AcquireLock(ctx, bad.key, bad.owner, bad.ttl); err == nil {
			t.Errorf("acquire %+v succeeded", bad)
		}
	}
}

func TestKV(t *testing.T) { eachStore(t, testKV) }

func testKV(t *testing.T, k storeKind) {
	ctx := context.Background()
	s, _ := k.newStore(t)
	if _, err := s.Get(ctx, "svc", "web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get missing: %v", err)
	}
	for _, v := range []string{"one", "two"} {
		if err := s.Put(ctx, "svc", "web", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "other", "web", nil); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "svc", "web"); err != nil || string(v) != "two" {
		t.Errorf("get: %q %v", v, err)
	}
	if v, err := s.Get(ctx, "other", "web"); err != nil || len(v) != 0 {
		t.Errorf("namespaces are separate: %q %v", v, err)
	}
	if err := s.Delete(ctx, "svc", "web"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "svc", "web"); err != nil {
		t.Errorf("delete missing: %v", err)
	}
	if _, err := s.Get(ctx, "svc", "web"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
}

func TestReopenKeepsDataAndMigratesOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "runway.db")
	s, err := OpenSQLite(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "n", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLock(ctx, "k", "o", time.Hour); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := open(t, path, nil)
	if v, err := s2.Get(ctx, "n", "k"); err != nil || string(v) != "v" {
		t.Errorf("after reopen: %q %v", v, err)
	}
	if l, err := s2.GetLock(ctx, "k"); err != nil || l.Owner != "o" {
		t.Errorf("lease after reopen: %+v %v", l, err)
	}
	var mode string
	if err := s2.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q %v", mode, err)
	}
}

// TestConcurrentLeases races acquirers through two connections pools on one
// file (as two server processes would): exactly one wins each round.
func TestConcurrentLeases(t *testing.T) { eachStore(t, testConcurrentLeases) }

func testConcurrentLeases(t *testing.T, k storeKind) {
	ctx := context.Background()
	path := k.location(t)
	stores := []*SQLite{k.open(t, path, nil), k.open(t, path, nil)}
	const rounds, racers = 15, 8
	for round := range rounds {
		key := fmt.Sprintf("env/svc-%d", round)
		var (
			wg      sync.WaitGroup
			winners atomic.Int32
			errs    = make(chan error, racers)
		)
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := stores[i%2].AcquireLock(ctx, key, fmt.Sprintf("owner-%d", i), time.Minute)
				switch {
				case err == nil:
					winners.Add(1)
				case !errors.Is(err, ErrLockHeld):
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := winners.Load(); n != 1 {
			t.Fatalf("round %d: %d winners", round, n)
		}
	}
}

func TestConcurrentWrites(t *testing.T) { eachStore(t, testConcurrentWrites) }

func testConcurrentWrites(t *testing.T, k storeKind) {
	ctx := context.Background()
	path := k.location(t)
	a, b := k.open(t, path, nil), k.open(t, path, nil)
	const n = 6
	var ids []string
	for range n {
		r := &Release{ID: NewID(time.Now()), Environment: "e", Service: "s", Progress: Progress{State: "Validate"}}
		if err := a.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*SQLite{a, b}[i%2]
			for step := range 20 {
				if err := s.SaveProgress(ctx, id, Progress{State: "Deploy", Step: step}); err != nil {
					errs <- err
					return
				}
				if err := s.AppendEvent(ctx, &Event{ReleaseID: id, State: "Deploy", Step: step, Message: "step"}); err != nil {
					errs <- err
					return
				}
				if _, err := s.ListReleases(ctx, ReleaseFilter{Unfinished: true}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range ids {
		r, err := b.GetRelease(ctx, id)
		if err != nil || r.Step != 19 {
			t.Errorf("release %s: step %d %v", id, r.Step, err)
		}
		evs, _ := a.ListEvents(ctx, id)
		if len(evs) != 20 {
			t.Errorf("release %s: %d events", id, len(evs))
		}
	}
}

func TestNewIDSortsInCreationOrder(t *testing.T) {
	now := time.Now()
	var ids []string
	for range 1000 {
		ids = append(ids, NewID(now))
	}
	if !sort.StringsAreSorted(ids) {
		t.Error("ids made in one millisecond are not sorted")
	}
	// A time read earlier, passed in later, still sorts after.
	later := NewID(now.Add(time.Second))
	if earlier := NewID(now); earlier < later {
		t.Errorf("an id made after %s sorts before it: %s", later, earlier)
	}
}
