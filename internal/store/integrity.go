package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ErrDamaged: the database file is unusable (empty beside a WAL that holds
// data, not a database, or failing PRAGMA quick_check). Returned wrapped in
// a *DamagedError; nothing was written.
var ErrDamaged = errors.New("store damaged")

// DamagedError says what is wrong with a database file.
type DamagedError struct {
	Path    string
	Problem string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("the database %s is damaged: %s", e.Path, e.Problem)
}

// Unwrap makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Unwrap() error { return ErrDamaged }

// IsNew reports whether path holds no database yet: missing, or 0 bytes
// (which SQLite opens as an empty database).
func IsNew(path string) bool {
	st, err := os.Stat(path)
	return err != nil && errors.Is(err, os.ErrNotExist) || err == nil && st.Size() == 0
}

// CheckFiles refuses (ErrDamaged) a database that is missing or empty
// while its WAL holds frames; OpenSQLite checks this first too.
func CheckFiles(path string) error { return checkFiles(path) }

// checkFiles refuses a database that is missing or empty while its WAL holds
// frames: the WAL belongs to a database that is gone (a restore that copied
// only one of the files, a truncated file), and SQLite would either drop it
// or apply it to nothing.
func checkFiles(path string) error {
	wal, err := os.Stat(path + "-wal")
	if err != nil || wal.Size() == 0 {
		return nil
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &DamagedError{Path: path, Problem: fmt.Sprintf("it is missing, but %s-wal holds %d bytes of it", filepath.Base(path), wal.Size())}
	case err != nil:
		return fmt.Errorf("open store %s: %w", path, err)
	case st.Size() == 0:
		return &DamagedError{Path: path, Problem: fmt.Sprintf("it is empty (0 bytes), but %s-wal holds %d bytes of it", filepath.Base(path), wal.Size())}
	}
	return nil
}

func damaged(err error) bool {
	s := err.Error()
	return strings.Contains(s, "not a database") || strings.Contains(s, "malformed") || strings.Contains(s, "SQLITE_CORRUPT")
}

// quickCheck runs PRAGMA quick_check and refuses a database that fails it.
func quickCheck(ctx context.Context, db *sql.DB, path string) error {
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		if damaged(err) {
			return &DamagedError{Path: path, Problem: err.Error()}
		}
		return fmt.Errorf("check store %s: %w", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check store %s: %w", path, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		if damaged(err) {
			return &DamagedError{Path: path, Problem: err.Error()}
		}
		return fmt.Errorf("check store %s: %w", path, err)
	}
	if len(problems) > 0 {
		return &DamagedError{Path: path, Problem: "PRAGMA quick_check: " + strings.Join(problems, "; ")}
	}
	return nil
}

// BackupInfo describes a backup made by Backup.
type BackupInfo struct {
	Path     string
	Bytes    int64
	Releases int
}

// Backup writes a consistent copy of the database at src to dest with
// VACUUM INTO, which reads one snapshot (one read transaction) and so may
// run while a server writes to src. dest must not exist; the copy is
// written beside it, checked (quick_check), synced, and renamed into place,
// so dest is either absent or complete. src is never created or migrated.
func Backup(ctx context.Context, src, dest string) (BackupInfo, error) {
	if _, err := os.Stat(dest); err == nil {
		return BackupInfo{}, fmt.Errorf("backup %s already exists: choose a new file name (a backup never overwrites)", dest)
	}
	st, err := os.Stat(src)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("no database at %s: %w (is --data-dir the server's data dir?)", src, unwrapPath(err))
	}
	if st.Size() == 0 {
		if err := checkFiles(src); err != nil {
			return BackupInfo{}, err
		}
		return BackupInfo{}, fmt.Errorf("the database %s is empty: there is nothing to back up", src)
	}
	if err := checkFiles(src); err != nil {
		return BackupInfo{}, err
	}
	db, err := openExisting(src)
	if err != nil {
		return BackupInfo{}, err
	}
	defer db.Close()
	if err := quickCheck(ctx, db, src); err != nil {
		return BackupInfo{}, err
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return BackupInfo{}, err
	}
	raw := make([]byte, 6)
	rand.Read(raw)
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp-"+hex.EncodeToString(raw))
	defer os.Remove(tmp)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return BackupInfo{}, fmt.Errorf("back up %s to %s: %w", src, dest, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return BackupInfo{}, err
	}
	cp, err := openExisting(tmp)
	if err != nil {
		return BackupInfo{}, err
	}
	info := BackupInfo{Path: dest}
	err = quickCheck(ctx, cp, dest)
	if err == nil {
		err = cp.QueryRowContext(ctx, `SELECT count(*) FROM releases`).Scan(&info.Releases)
	}
	cp.Close()
	if err != nil {
		return BackupInfo{}, fmt.Errorf("check the backup: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return BackupInfo{}, err
	}
	if err := os.Link(tmp, abs); err != nil {
		// Link, not rename: a dest created meanwhile is never replaced.
		return BackupInfo{}, fmt.Errorf("write backup %s: %w", dest, err)
	}
	if err := syncFile(filepath.Dir(abs)); err != nil {
		return BackupInfo{}, err
	}
	if st, err := os.Stat(abs); err == nil {
		info.Bytes = st.Size()
	}
	return info, nil
}

// openExisting opens a database file that must exist (never creating it).
func openExisting(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "rw")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		if damaged(err) {
			return nil, &DamagedError{Path: path, Problem: err.Error()}
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
