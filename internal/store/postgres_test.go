package store

import (
	"context"
	"strings"
	"testing"

	"github.com/runwayhq/runway/internal/pgtest"
)

// TestPostgresAuditAppendOnly: on PostgreSQL too the audit table refuses
// UPDATE, DELETE and TRUNCATE, with the same message as on SQLite.
func TestPostgresAuditAppendOnly(t *testing.T) {
	ctx := context.Background()
	s, _ := storeKinds[1].newStore(t)
	e := &AuditEntry{Actor: "admin", Action: "user.create", Outcome: "ok"}
	if err := s.AppendAudit(ctx, e, func(*AuditEntry) string { return "h" }); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit SET actor = 'eve'`, `DELETE FROM audit`, `TRUNCATE audit`} {
		if _, err := s.SQL().ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "the audit log is append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
	rows, err := s.AuditRows(ctx)
	if err != nil || len(rows) != 1 || rows[0].Actor != "admin" {
		t.Fatalf("rows %v %v", rows, err)
	}
}

// TestPostgresMigrationTranslation: the PostgreSQL form of a migration
// keeps common statements, renames BLOB, drops SQLite-only blocks and
// uncomments --postgres lines; SQLite runs the file as written.
func TestPostgresMigrationTranslation(t *testing.T) {
	src := "-- a BLOB comment\n-- +goose Up\nCREATE TABLE t (b BLOB NOT NULL, blobs TEXT);\n-- +runway sqlite\nSELECT json_extract('{}', '$.a');\n-- +runway end\n--postgres SELECT 1;\n"
	got := string(postgresMigration([]byte(src)))
	want := "-- a BLOB comment\n-- +goose Up\nCREATE TABLE t (b BYTEA NOT NULL, blobs TEXT);\nSELECT 1;\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestPostgresErrorsHidePassword: a refused connection names the database
// but never its password.
func TestPostgresErrorsHidePassword(t *testing.T) {
	c := pgtest.Shared(t)
	dsn := strings.Replace(c.URL("nosuchdb"), "postgres@", "postgres:s3cretpw@", 1)
	_, err := OpenPostgres(context.Background(), dsn, PostgresOptions{})
	if err == nil || strings.Contains(err.Error(), "s3cretpw") || !strings.Contains(err.Error(), "nosuchdb") {
		t.Fatalf("error %v", err)
	}
	_, err = OpenPostgres(context.Background(), "postgres://u:s3cretpw@127.0.0.1:notaport/x", PostgresOptions{})
	if err == nil || strings.Contains(err.Error(), "s3cretpw") {
		t.Fatalf("error %v", err)
	}
}
