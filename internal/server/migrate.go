package server

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/runwayhq/runway/internal/audit"
	"github.com/runwayhq/runway/internal/dirlock"
	"github.com/runwayhq/runway/internal/store"
)

// MigrateReport is what `runway server migrate` did.
type MigrateReport struct {
	Rows         map[string]int64
	AuditEntries int
	// KeyIDs are the master keys the copied secrets are sealed under: the
	// servers on the new store need the same key.
	KeyIDs []string
}

// Migrate copies the state of the embedded server in dataDir (its SQLite
// database) into the empty PostgreSQL database dsn: every table, row for
// row, in one transaction. The audit chain is verified before (a chain
// that does not verify is not copied) and after, on the copy, against the
// same head file; the row counts must match. The server of dataDir must be
// stopped (its data dir lock is taken); its database is only read, so
// starting it again without --store is the way back (docs/operations.md).
func Migrate(ctx context.Context, dataDir, dsn string) (*MigrateReport, error) {
	if !store.IsPostgresURL(dsn) {
		return nil, fmt.Errorf("--to %s: want a postgres:// URL of a new, empty database", store.RedactURL(dsn))
	}
	lock, err := dirlock.Acquire(dataDir, "runway server migrate")
	if err != nil {
		return nil, fmt.Errorf("%w (stop the server first: migrate copies a stopped server's state)", err)
	}
	defer lock.Release()
	dbPath := filepath.Join(dataDir, DatabaseFile)
	if store.IsNew(dbPath) {
		return nil, fmt.Errorf("no database at %s: is --from the data dir of a server?", dbPath)
	}
	src, err := store.OpenSQLite(ctx, dbPath, store.Options{})
	if err != nil {
		return nil, withRecovery(err, dataDir)
	}
	defer src.Close()
	head := filepath.Join(dataDir, audit.HeadFile)
	before, err := audit.New(src, head).Verify(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify the audit log of %s: %w", dbPath, err)
	}
	if !before.OK {
		return nil, fmt.Errorf("the audit log of %s does not verify: %s. Nothing was copied; see `runway audit verify` in docs/operations.md", dbPath, before.Problem)
	}
	dst, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{StatementTimeout: -1, IdleInTransactionTimeout: -1})
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	rep, err := src.CopyTo(ctx, dst)
	if err != nil {
		return nil, err
	}
	want, err := src.Counts(ctx)
	if err != nil {
		return nil, err
	}
	got, err := dst.Counts(ctx)
	if err != nil {
		return nil, err
	}
	for t, n := range want {
		if got[t] != n {
			return nil, fmt.Errorf("the copy holds %d rows of %s, the source %d: do not use the copy (drop the database and run migrate again)", got[t], t, n)
		}
	}
	after, err := audit.New(dst, head).Verify(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify the copied audit log: %w", err)
	}
	if !after.OK || after.Entries != before.Entries {
		return nil, fmt.Errorf("the copied audit log does not verify (%s, %d of %d entries): do not use the copy (drop the database and run migrate again)", after.Problem, after.Entries, before.Entries)
	}
	ids, err := dst.SecretKeyIDs(ctx)
	if err != nil {
		return nil, err
	}
	return &MigrateReport{Rows: rep.Rows, AuditEntries: after.Entries, KeyIDs: ids}, nil
}
