package audit

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runwayhq/runway/internal/store"
)

// newLog returns a log with n entries and a raw connection to its database,
// to tamper with it as someone with the file would.
func newLog(t *testing.T, n int) (*Log, *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "runway.db")
	st, err := store.OpenSQLite(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l := New(st, filepath.Join(dir, HeadFile))
	for i := 1; i <= n; i++ {
		e := &store.AuditEntry{Actor: "ana", TokenID: "tok_1", Source: "127.0.0.1", Action: "release.deploy",
			Project: "hello", Environment: "staging", Target: fmt.Sprintf("hello/staging/web#%d", i), RequestDigest: "sha-256=x", Outcome: "201"}
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i) {
			t.Fatalf("entry %d got seq %d", i, e.Seq)
		}
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return l, db
}

func exec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestVerifyIntact(t *testing.T) {
	l, _ := newLog(t, 5)
	rep, err := l.Verify(context.Background())
	if err != nil || !rep.OK || rep.Entries != 5 || rep.HeadSeq != 5 {
		t.Fatalf("verify of an intact log = %+v, %v", rep, err)
	}
	empty, _ := newLog(t, 0)
	if rep, err := empty.Verify(context.Background()); err != nil || !rep.OK {
		t.Fatalf("verify of an empty log = %+v, %v", rep, err)
	}
}

// TestTriggersRefuseEdits: without dropping the triggers, the table refuses
// updates and deletes.
func TestTriggersRefuseEdits(t *testing.T) {
	_, db := newLog(t, 2)
	for _, q := range []string{`UPDATE audit SET actor = 'eve' WHERE seq = 1`, `DELETE FROM audit WHERE seq = 2`} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
}

func TestVerifyCatchesTampering(t *testing.T) {
	cases := []struct {
		name    string
		tamper  []string
		badSeq  int64
		problem string
	}{
		{"trigger dropped", []string{`DROP TRIGGER audit_no_update`}, 0, "trigger audit_no_update"},
		{"row edited", []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET actor = 'eve' WHERE seq = 3`, recreateUpdate}, 3, "entry 3 was edited"},
		{"row edited, trigger left dropped", []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET actor = 'eve' WHERE seq = 3`}, 3, "entry 3 was edited: its content does not match its hash; also trigger audit_no_update"},
		{"row edited and rehashed", []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET actor = 'eve', hash = 'x' WHERE seq = 3`, recreateUpdate}, 3, "entry 3 was edited"},
		{"row deleted", []string{`DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE seq = 2`, recreateDelete}, 2, "entry 2 is missing"},
		{"rows reordered", []string{`DROP TRIGGER audit_no_update`,
			`UPDATE audit SET seq = 100 WHERE seq = 2`, `UPDATE audit SET seq = 2 WHERE seq = 4`, `UPDATE audit SET seq = 4 WHERE seq = 100`, recreateUpdate}, 2, "entry 2"},
		{"newest deleted", []string{`DROP TRIGGER audit_no_delete`, `DELETE FROM audit WHERE seq = 5`, recreateDelete}, 5, "truncated"},
		{"table truncated", []string{`DROP TRIGGER audit_no_delete`, `DELETE FROM audit`, recreateDelete}, 1, "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, db := newLog(t, 5)
			for _, q := range c.tamper {
				exec(t, db, q)
			}
			rep, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.BadSeq != c.badSeq || !strings.Contains(rep.Problem, c.problem) {
				t.Fatalf("verify = %+v, want bad entry %d with %q", rep, c.badSeq, c.problem)
			}
		})
	}
}

// TestHeadFileReplaced: a chain extended by hand (rows inserted with valid
// hashes) or a head file rolled back is caught too.
func TestHeadFileReplaced(t *testing.T) {
	l, _ := newLog(t, 3)
	old, err := os.ReadFile(l.headPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), &store.AuditEntry{Actor: "ana", Action: "user.write"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.headPath, old, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(context.Background())
	if err != nil || rep.OK || rep.BadSeq != 4 {
		t.Fatalf("verify with a stale head = %+v, %v; want entry 4 named", rep, err)
	}
}

const (
	recreateUpdate = `CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`
	recreateDelete = `CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`
)

func FuzzParseHead(f *testing.F) {
	f.Add([]byte("3 " + strings.Repeat("ab", 32) + "\n"))
	f.Add([]byte("-1 x"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHead(b)
		if err == nil && (h.Seq < 0 || len(h.Hash) != 64) {
			t.Fatalf("accepted %q as %+v", b, h)
		}
	})
}
