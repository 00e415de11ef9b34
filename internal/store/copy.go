package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// copyTables are the store's tables in the order a copy inserts them
// (rows that others reference first). A table the source holds that is not
// here stops the copy: a new table must be added, never silently left out.
var copyTables = []string{
	"projects", "releases", "release_events", "leases", "kv", "agent_generations",
	"users", "tokens", "audit", "secrets", "secret_versions",
	"service_events", "alarm_states", "notifications",
}

// CopyReport counts the rows a copy moved, per table.
type CopyReport struct {
	Rows map[string]int64
}

// CopyTo copies every row of s into dst, an empty store at the same
// schema version, in one transaction of dst: either all of it is copied or
// nothing is. It refuses a dst that holds releases, users or audit entries.
// Rows are copied as they are, so ids, sequence numbers, hashes and sealed
// secrets stay identical (the audit chain verifies on dst as on s).
func (s *DB) CopyTo(ctx context.Context, dst *DB) (*CopyReport, error) {
	srcTables, err := s.tables(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range srcTables {
		if !slices.Contains(copyTables, t) {
			return nil, fmt.Errorf("the source holds table %s, which the copy does not know: nothing was copied", t)
		}
	}
	for _, t := range []string{"releases", "users", "audit"} {
		var n int64
		if err := dst.db.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("read the target's %s: %w", t, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("the target already holds %d rows of %s: copy into a new, empty database (nothing was copied)", n, t)
		}
	}
	tx, err := dst.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin the copy: %w", err)
	}
	defer tx.Rollback()
	rep := &CopyReport{Rows: map[string]int64{}}
	for _, t := range copyTables {
		cols, err := dst.columns(ctx, t)
		if err != nil {
			return nil, err
		}
		n, err := s.copyTable(ctx, tx, t, cols)
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w (nothing was copied)", t, err)
		}
		rep.Rows[t] = n
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit the copy: %w", err)
	}
	return rep, nil
}

// column is a column of the target table and whether it holds bytes.
type column struct {
	name  string
	bytes bool
}

func (s *DB) copyTable(ctx context.Context, tx *tx, table string, cols []column) (int64, error) {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	list := strings.Join(names, ", ")
	rows, err := s.db.QueryContext(ctx, `SELECT `+list+` FROM `+table)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	insert := `INSERT INTO ` + table + ` (` + list + `) VALUES (` + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + `)`
	var n int64
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		// SQLite keeps what it was given (a []byte in a TEXT column, a
		// string in a BLOB one); PostgreSQL wants the column's type.
		for i, c := range cols {
			switch v := vals[i].(type) {
			case string:
				if c.bytes {
					vals[i] = []byte(v)
				}
			case []byte:
				if !c.bytes {
					vals[i] = string(v)
				}
			}
		}
		if _, err := tx.ExecContext(ctx, insert, vals...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// tables lists the store's own tables.
func (s *DB) tables(ctx context.Context) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'goose_db_version' ORDER BY name`
	if s.db.dialect == dialectPostgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name != 'goose_db_version' ORDER BY table_name`
	}
	return s.strings(ctx, q)
}

// columns lists a table's columns.
func (s *DB) columns(ctx context.Context, table string) ([]column, error) {
	q := `SELECT name, upper(type) = 'BLOB' FROM pragma_table_info(?) ORDER BY cid`
	if s.db.dialect == dialectPostgres {
		q = `SELECT column_name, data_type = 'bytea' FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`
	}
	rows, err := s.db.QueryContext(ctx, q, table)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", table, err)
	}
	defer rows.Close()
	var out []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.bytes); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 && rows.Err() == nil {
		return nil, fmt.Errorf("the target has no table %s", table)
	}
	return out, rows.Err()
}

func (s *DB) strings(ctx context.Context, q string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Counts returns the number of rows of every table a copy moves.
func (s *DB) Counts(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for _, t := range copyTables {
		var n int64
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}
