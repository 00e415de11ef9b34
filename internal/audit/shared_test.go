package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/runwayhq/runway/internal/pgtest"
	"github.com/runwayhq/runway/internal/store"
)

// TestSharedLogOnPostgres: two servers append to one PostgreSQL audit
// table, each with its own head file; both verify the whole chain, and an
// entry one of them appended, rewritten in the table, fails both.
func TestSharedLogOnPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Database(t)
	var logs []*Log
	var stores []*store.DB
	for i := range 2 {
		st, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
		logs = append(logs, NewShared(st, filepath.Join(t.TempDir(), fmt.Sprint(i)+"-"+HeadFile)))
	}
	for i := range 6 {
		e := &store.AuditEntry{Actor: "ana", Action: "release.deploy", Target: fmt.Sprintf("web#%d", i), Outcome: "201"}
		if err := logs[i%2].Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d got seq %d", i+1, e.Seq)
		}
	}
	for i, l := range logs {
		rep, err := l.Verify(ctx)
		if err != nil || !rep.OK || rep.Entries != 6 {
			t.Fatalf("server %d: %+v %v", i, rep, err)
		}
	}
	db := stores[0].SQL()
	for _, q := range []string{`ALTER TABLE audit DISABLE TRIGGER audit_no_update`,
		`UPDATE audit SET actor = 'eve', hash = 'x' WHERE seq = 5`, `ALTER TABLE audit ENABLE TRIGGER audit_no_update`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range logs {
		rep, err := l.Verify(ctx)
		if err != nil || rep.OK || rep.BadSeq != 5 {
			t.Errorf("server %d after entry 5 was rewritten: %+v %v", i, rep, err)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}
