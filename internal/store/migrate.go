package store

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"io/fs"
	"regexp"
	"strings"
	"testing/fstest"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// The schema is one set of goose migrations, migrations/*.sql, written in
// the SQL SQLite and PostgreSQL share (docs/design.md, "One store, two
// databases"). SQLite runs the files as they are. For PostgreSQL they are
// translated when loaded, by three rules only:
//
//   - BLOB becomes BYTEA (the one column type the two name differently);
//   - the lines between "-- +runway sqlite" and "-- +runway end" are
//     dropped (SQLite-only statements: its triggers' syntax, json_extract);
//   - a line "--postgres STATEMENT" becomes "STATEMENT" (to SQLite it is a
//     comment): PostgreSQL's form of what the dropped lines do.
//
// So a migration is written once, and the few statements that cannot be
// common sit side by side in the same file, under the same version.
//
//go:embed migrations/*.sql
var migrations embed.FS

var blobWord = regexp.MustCompile(`\bBLOB\b`)

// migrationFS returns the migrations as dialect d runs them.
func migrationFS(d dialect) (fs.FS, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if d == dialectSQLite {
		return sub, nil
	}
	out := fstest.MapFS{}
	err = fs.WalkDir(sub, ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		src, err := fs.ReadFile(sub, path)
		if err != nil {
			return err
		}
		out[path] = &fstest.MapFile{Data: postgresMigration(src), Mode: 0o444}
		return nil
	})
	return out, err
}

// postgresMigration translates one migration file for PostgreSQL.
func postgresMigration(src []byte) []byte {
	var b bytes.Buffer
	skip := false
	for _, line := range strings.SplitAfter(string(src), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case t == "-- +runway sqlite":
			skip = true
			continue
		case t == "-- +runway end":
			skip = false
			continue
		case skip:
			continue
		case strings.HasPrefix(t, "--postgres "):
			line = strings.TrimPrefix(t, "--postgres ") + "\n"
		case strings.HasPrefix(t, "--"):
			b.WriteString(line)
			continue
		}
		b.WriteString(blobWord.ReplaceAllString(line, "BYTEA"))
	}
	return b.Bytes()
}

// migrate brings db to the current schema. On PostgreSQL a session lock
// (an advisory lock goose takes) makes replicas that start together
// migrate one after the other.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	fsys, err := migrationFS(d)
	if err != nil {
		return err
	}
	gd := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if d == dialectPostgres {
		gd = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, db, fsys, opts...)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}
