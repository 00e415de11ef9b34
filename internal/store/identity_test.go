package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestUsersAndTokens(t *testing.T) { eachStore(t, testUsersAndTokens) }

func testUsersAndTokens(t *testing.T, k storeKind) {
	s, _ := k.newStore(t)
	ctx := context.Background()
	if err := s.CreateUser(ctx, &User{Name: "ci", Roles: []string{"staging_deployer"}, CreatedBy: "admin"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &User{Name: "ci"}); !errors.Is(err, ErrExists) {
		t.Fatalf("second user ci: %v, want ErrExists", err)
	}
	u, err := s.GetUser(ctx, "ci")
	if err != nil || len(u.Roles) != 1 || u.Roles[0] != "staging_deployer" || u.CreatedBy != "admin" {
		t.Fatalf("get = %+v, %v", u, err)
	}
	u.Roles, u.Disabled = []string{"read_only"}, true
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.GetUser(ctx, "ci"); !u.Disabled || u.Roles[0] != "read_only" {
		t.Fatalf("after update: %+v", u)
	}
	if err := s.UpdateUser(ctx, &User{Name: "nobody"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing user: %v", err)
	}
	exp := time.Now().Add(time.Hour).UTC()
	if err := s.CreateToken(ctx, &Token{ID: "tok_1", User: "ci", Name: "ci", Hash: "h1", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateToken(ctx, &Token{ID: "tok_2", User: "ci", Hash: "h1"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate hash: %v, want ErrExists", err)
	}
	if err := s.CreateToken(ctx, &Token{ID: "tok_3", User: "nobody", Hash: "h3"}); err == nil {
		t.Fatal("a token of a missing user was stored")
	}
	tok, err := s.TokenByHash(ctx, "h1")
	if err != nil || tok.ID != "tok_1" || !tok.ExpiresAt.Equal(exp) || !tok.RevokedAt.IsZero() {
		t.Fatalf("by hash = %+v, %v", tok, err)
	}
	if _, err := s.TokenByHash(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if err := s.RevokeToken(ctx, "tok_1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "tok_1"); !errors.Is(err, ErrFinished) {
		t.Fatalf("second revoke: %v, want ErrFinished", err)
	}
	if err := s.RevokeToken(ctx, "tok_9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke of a missing token: %v", err)
	}
	list, err := s.ListTokens(ctx, "ci")
	if err != nil || len(list) != 1 || list[0].RevokedAt.IsZero() {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if all, _ := s.ListTokens(ctx, ""); len(all) != 1 {
		t.Fatalf("all tokens = %d", len(all))
	}
}

func TestAuditAppendAndFilter(t *testing.T) { eachStore(t, testAuditAppendAndFilter) }

func testAuditAppendAndFilter(t *testing.T, k storeKind) {
	s, _ := k.newStore(t)
	ctx := context.Background()
	seal := func(e *AuditEntry) string { return e.PrevHash + "+" }
	for _, a := range []struct{ actor, env string }{{"ana", "staging"}, {"ci", "staging"}, {"ana", "production"}} {
		if err := s.AppendAudit(ctx, &AuditEntry{Actor: a.actor, Environment: a.env, Action: "release.deploy"}, seal); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListAudit(ctx, AuditFilter{})
	if err != nil || len(all) != 3 || all[0].Seq != 1 || all[2].Hash != "+++" || all[2].PrevHash != "++" {
		t.Fatalf("all = %+v, %v", all, err)
	}
	if l, _ := s.ListAudit(ctx, AuditFilter{Actor: "ana"}); len(l) != 2 {
		t.Fatalf("by actor: %d", len(l))
	}
	if l, _ := s.ListAudit(ctx, AuditFilter{Environment: "staging", Limit: 1}); len(l) != 1 || l[0].Seq != 2 {
		t.Fatalf("by env, newest 1: %+v", l)
	}
	if l, _ := s.ListAudit(ctx, AuditFilter{Since: time.Now().Add(time.Hour)}); len(l) != 0 {
		t.Fatalf("since the future: %d", len(l))
	}
	// Both databases refuse UPDATE and DELETE; PostgreSQL also TRUNCATE.
	if tr, err := s.AuditTriggers(ctx); err != nil || len(tr) < 2 || !slices.Contains(tr, "audit_no_update") || !slices.Contains(tr, "audit_no_delete") {
		t.Fatalf("triggers = %v, %v", tr, err)
	}
}

// TestIdentityTxIsAtomic: a change that fails leaves neither its user nor
// its audit entry; one that succeeds stores both.
func TestIdentityTxIsAtomic(t *testing.T) { eachStore(t, testIdentityTxIsAtomic) }

func testIdentityTxIsAtomic(t *testing.T, k storeKind) {
	s, _ := k.newStore(t)
	ctx := context.Background()
	seal := func(e *AuditEntry) string { return "h" }
	boom := errors.New("boom")
	err := s.InIdentityTx(ctx, func(tx IdentityTx) error {
		if err := tx.CreateUser(ctx, &User{Name: "ci", Roles: []string{"read_only"}}); err != nil {
			return err
		}
		if err := tx.AppendAudit(ctx, &AuditEntry{Actor: "admin", Action: "user.write"}, seal); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, err := s.GetUser(ctx, "ci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the failed change left its user: %v", err)
	}
	if l, _ := s.ListAudit(ctx, AuditFilter{}); len(l) != 0 {
		t.Fatalf("the failed change left %d audit entries", len(l))
	}
	err = s.InIdentityTx(ctx, func(tx IdentityTx) error {
		if err := tx.CreateUser(ctx, &User{Name: "ci", Roles: []string{"read_only"}}); err != nil {
			return err
		}
		if err := tx.CreateToken(ctx, &Token{ID: "tok_1", User: "ci", Hash: "h1"}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &AuditEntry{Actor: "admin", Action: "user.write"}, seal)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.ListAudit(ctx, AuditFilter{}); len(l) != 1 || l[0].Seq != 1 {
		t.Fatalf("audit = %+v", l)
	}
}

func TestPutIfAbsent(t *testing.T) { eachStore(t, testPutIfAbsent) }

func testPutIfAbsent(t *testing.T, k storeKind) {
	s, _ := k.newStore(t)
	ctx := context.Background()
	prev, stored, err := s.PutIfAbsent(ctx, "ns", "k", []byte("a"))
	if err != nil || !stored || prev != nil {
		t.Fatalf("first: %q %v %v", prev, stored, err)
	}
	prev, stored, err = s.PutIfAbsent(ctx, "ns", "k", []byte("b"))
	if err != nil || stored || string(prev) != "a" {
		t.Fatalf("second: %q %v %v", prev, stored, err)
	}
	// Racing callers: exactly one stores.
	var wg sync.WaitGroup
	wins := make(chan bool, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, stored, err := s.PutIfAbsent(ctx, "ns", "race", []byte{byte(i)})
			if err != nil {
				t.Error(err)
			}
			wins <- stored
		}(i)
	}
	wg.Wait()
	close(wins)
	n := 0
	for w := range wins {
		if w {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d callers stored, want 1", n)
	}
}
