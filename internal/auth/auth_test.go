package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/store"
)

func TestTokens(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if a == b || !strings.HasPrefix(a, TokenPrefix) || len(a) != len(TokenPrefix)+64 {
		t.Fatalf("tokens %q %q", a, b)
	}
	if _, err := ParseToken(a); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "rwy_", "abc", "rwy_" + strings.Repeat("g", 64), "rwy_" + strings.Repeat("A", 64), a + "0", "RWY_" + a[4:]} {
		_, err := ParseToken(bad)
		if err == nil {
			t.Errorf("ParseToken(%q) accepted", bad)
		} else if len(bad) > 8 && strings.Contains(err.Error(), bad) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	if h := HashToken(a); len(h) != 64 || h == HashToken(b) || !hashEqual(h, HashToken(a)) {
		t.Fatalf("hash %q", h)
	}
	for header, ok := range map[string]bool{"Bearer " + a: true, "bearer " + a: true, "Basic " + a: false, a: false, "Bearer": false, "": false} {
		if _, err := ParseBearer(header); (err == nil) != ok {
			t.Errorf("ParseBearer(%q) = %v, want ok=%v", header, err, ok)
		}
	}
}

func TestRoles(t *testing.T) {
	for in, want := range map[string]string{
		"global_admin": "global_admin", "read_only": "read_only", "read_only@hello": "read_only@hello",
		"staging_admin": "staging_admin", "production_deployer@shop": "production_deployer@shop",
	} {
		r, err := ParseRole(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRole(%q) = %v, %v", in, r, err)
		}
	}
	for _, bad := range []string{"", "admin", "global_admin@x", "Staging_deployer", "_deployer", "staging_deployer@", "staging_deployer@Bad", "x_owner"} {
		if _, err := ParseRole(bad); err == nil {
			t.Errorf("ParseRole(%q) accepted", bad)
		}
	}
	roles, err := ParseRoles([]string{"staging_deployer", "read_only", "staging_deployer"})
	if err != nil || len(roles) != 2 || roles[0].String() != "read_only" {
		t.Fatalf("ParseRoles = %v, %v", roles, err)
	}
	p := &Principal{User: "ci", Roles: roles}
	if p.Allowed(ActionDeploy, Target{Project: "a", Environment: "production"}) || !p.Allowed(ActionDeploy, Target{Project: "a", Environment: "staging"}) {
		t.Fatal("staging_deployer allowed production, or not staging")
	}
	if got := DeployScopes(roles); len(got) != 1 || got[0] != "staging of every project" {
		t.Fatalf("DeployScopes = %v", got)
	}
}

// FuzzParseBearer: any Authorization header either yields a well-formed
// token or an error that never quotes the header.
func FuzzParseBearer(f *testing.F) {
	f.Add("Bearer rwy_" + strings.Repeat("0a", 32))
	f.Add("Bearer  rwy_x")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("")
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := ParseBearer(header)
		if err != nil {
			if len(header) > 12 && strings.Contains(err.Error(), header) {
				t.Fatalf("error quotes the header: %v", err)
			}
			return
		}
		if _, err := ParseToken(tok); err != nil || !strings.HasPrefix(tok, TokenPrefix) {
			t.Fatalf("accepted %q as token %q", header, tok)
		}
	})
}

// FuzzParseRole: a parsed role renders to a string that parses to itself.
func FuzzParseRole(f *testing.F) {
	for _, s := range []string{"global_admin", "read_only@a", "staging_deployer@shop", "x_admin", "@", "a@b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRole(s)
		if err != nil {
			return
		}
		again, err := ParseRole(r.String())
		if err != nil || again != r {
			t.Fatalf("%q -> %v -> %v, %v", s, r, again, err)
		}
	})
}

// TestBootstrap: the first start makes admin and its token file; a start
// without the file (a restored database) gives admin a new token there; a
// disabled admin gets none.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	file := filepath.Join(dir, "admin.token")
	now := time.Now()
	if created, err := Bootstrap(ctx, st, file, now); err != nil || !created {
		t.Fatalf("first start: %v %v", created, err)
	}
	first, _ := os.ReadFile(file)
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", st.Mode())
	}
	a := &Authenticator{Store: st}
	if p, err := a.Authenticate(ctx, "Bearer "+strings.TrimSpace(string(first))); err != nil || p.User != AdminUser {
		t.Fatalf("admin's token: %v %v", p, err)
	}
	if created, err := Bootstrap(ctx, st, file, now); err != nil || created {
		t.Fatalf("second start: %v %v", created, err)
	}
	if again, _ := os.ReadFile(file); string(again) != string(first) {
		t.Fatal("a second start replaced the token file")
	}
	os.Remove(file)
	if _, err := Bootstrap(ctx, st, file, now); err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(file)
	if err != nil || string(second) == string(first) {
		t.Fatalf("no new token after the file was removed: %v", err)
	}
	u, _ := st.GetUser(ctx, AdminUser)
	u.Disabled = true
	if err := st.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	os.Remove(file)
	if _, err := Bootstrap(ctx, st, file, now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a disabled admin got a token file")
	}
}

// TestBootstrapTogether: servers starting at the same moment on one empty
// store (replicas, each with its own data dir) all start: one makes admin,
// and every one ends with a token file holding a token of admin.
func TestBootstrapTogether(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 8
	// Every replica reads the users before any creates admin: the worst
	// interleaving, made certain.
	together := &listBarrier{Store: st, n: n, all: make(chan struct{})}
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			created[i], errs[i] = Bootstrap(ctx, together, filepath.Join(dir, fmt.Sprintf("replica-%d.token", i)), time.Now())
		})
	}
	wg.Wait()
	makers := 0
	a := &Authenticator{Store: st}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("replica %d did not start: %v", i, errs[i])
		}
		if created[i] {
			makers++
		}
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("replica-%d.token", i)))
		if err != nil {
			t.Fatalf("replica %d has no token file: %v", i, err)
		}
		if p, err := a.Authenticate(ctx, "Bearer "+strings.TrimSpace(string(b))); err != nil || p.User != AdminUser {
			t.Fatalf("replica %d's token: %v %v", i, p, err)
		}
	}
	if makers != 1 {
		t.Fatalf("%d replicas report creating admin, want 1", makers)
	}
}

// listBarrier is a store whose ListUsers answers once n callers are in it.
type listBarrier struct {
	store.Store
	n   int
	mu  sync.Mutex
	in  int
	all chan struct{}
}

func (l *listBarrier) ListUsers(ctx context.Context) ([]*store.User, error) {
	users, err := l.Store.ListUsers(ctx)
	l.mu.Lock()
	l.in++
	if l.in == l.n {
		close(l.all)
	}
	l.mu.Unlock()
	select {
	case <-l.all:
	case <-time.After(10 * time.Second):
		return nil, errors.New("not every replica listed the users within 10 s")
	}
	return users, err
}
