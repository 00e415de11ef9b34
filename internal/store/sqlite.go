package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Options tune a SQLite store.
type Options struct {
	// Now is the clock for timestamps and lease expiry; time.Now by default.
	Now func() time.Time
	// BusyTimeout is how long a write waits for another writer; 10 s by default.
	BusyTimeout time.Duration
}

// DB is the Store on a SQL database: one SQLite file, in WAL mode so
// readers never wait for the writer (OpenSQLite), or a PostgreSQL database
// that several servers share (OpenPostgres). The statements are the same
// for both; conn.go holds the few translations.
type DB struct {
	db  *conn
	now func() time.Time
}

// SQLite is the name DB had when SQLite was its only database; the server
// and its tests still use it.
type SQLite = DB

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating it and its directory if needed) the database at
// path and migrates it to the current schema.
func OpenSQLite(ctx context.Context, path string, opts Options) (*SQLite, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	if err := checkFiles(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Write transactions take the write lock at BEGIN, so two of them never
	// deadlock upgrading from a read lock.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if damaged(err) {
			return nil, &DamagedError{Path: path, Problem: err.Error()}
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := quickCheck(ctx, db, path); err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate(ctx, db, dialectSQLite); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate store %s: %w", path, err)
	}
	return &SQLite{db: &conn{DB: db, dialect: dialectSQLite}, now: opts.Now}, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// CreateRelease implements Store.
func (s *SQLite) CreateRelease(ctx context.Context, r *Release) error {
	if r.ID == "" {
		return errors.New("create release: id is empty")
	}
	now := s.now()
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now
	}
	r.UpdatedAt = now
	spec := r.Spec
	if spec == nil {
		spec = []byte("null")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO releases
		(id, project, environment, service, version, created_by, created_at, digest, spec,
		 state, step, step_started_at, plan, error_kind, error, deadline, served, failed, done, updated_at, finished_at)
		VALUES (?,?,?,?,?,?,?,?,?, ?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.Project, r.Environment, r.Service, r.Version, r.CreatedBy, nanos(r.CreatedAt), r.Digest, spec,
		r.State, r.Step, nanos(r.StepStartedAt), r.Plan, r.ErrorKind, r.Error, nanos(r.Deadline),
		r.Served, r.Failed, r.Done, nanos(r.UpdatedAt), nanos(r.FinishedAt))
	if isUnique(err) {
		return fmt.Errorf("create release %s: %w", r.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create release %s: %w", r.ID, err)
	}
	return nil
}

const releaseColumns = `id, project, environment, service, version, created_by, created_at, digest, spec,
	state, step, step_started_at, plan, error_kind, error, deadline, served, failed, done,
	updated_at, finished_at, halt_requested, halt_reason, generation, runner, runner_until, epoch`

func scanRelease(sc interface{ Scan(...any) error }) (*Release, error) {
	var (
		r                                                 Release
		created, stepStarted, deadline, updated, finished int64
		runnerUntil                                       int64
	)
	err := sc.Scan(&r.ID, &r.Project, &r.Environment, &r.Service, &r.Version, &r.CreatedBy, &created, &r.Digest, &r.Spec,
		&r.State, &r.Step, &stepStarted, &r.Plan, &r.ErrorKind, &r.Error, &deadline, &r.Served, &r.Failed, &r.Done,
		&updated, &finished, &r.HaltRequested, &r.HaltReason, &r.Generation, &r.Runner, &runnerUntil, &r.RunnerEpoch)
	if err != nil {
		return nil, err
	}
	r.CreatedAt, r.StepStartedAt, r.Deadline = fromNanos(created), fromNanos(stepStarted), fromNanos(deadline)
	r.UpdatedAt, r.FinishedAt = fromNanos(updated), fromNanos(finished)
	r.RunnerUntil = fromNanos(runnerUntil)
	return &r, nil
}

// GetRelease implements Store.
func (s *SQLite) GetRelease(ctx context.Context, id string) (*Release, error) {
	r, err := scanRelease(s.db.QueryRowContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("release %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get release %s: %w", id, err)
	}
	return r, nil
}

// ListReleases implements Store.
func (s *SQLite) ListReleases(ctx context.Context, f ReleaseFilter) ([]*Release, error) {
	var (
		where []string
		args  []any
	)
	if f.Project != "" {
		where, args = append(where, "project = ?"), append(args, f.Project)
	}
	if f.Environment != "" {
		where, args = append(where, "environment = ?"), append(args, f.Environment)
	}
	if f.Service != "" {
		where, args = append(where, "service = ?"), append(args, f.Service)
	}
	if f.Unfinished {
		where = append(where, "done = 0")
	}
	q := `SELECT ` + releaseColumns + ` FROM releases`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	return s.queryReleases(ctx, q, args...)
}

// LiveReleases implements Store.
func (s *SQLite) LiveReleases(ctx context.Context) ([]*Release, error) {
	return s.queryReleases(ctx, `SELECT `+releaseColumns+` FROM releases WHERE id IN (
		SELECT max(id) FROM releases WHERE state != 'FailureClean' GROUP BY project, environment, service)
		ORDER BY id DESC`)
}

func (s *SQLite) queryReleases(ctx context.Context, q string, args ...any) ([]*Release, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var out []*Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, fmt.Errorf("list releases: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	return out, nil
}

// SaveProgress implements Store.
func (s *SQLite) SaveProgress(ctx context.Context, id string, p Progress, events ...*Event) error {
	now := s.now()
	finished := int64(0)
	if p.Done {
		finished = nanos(now)
		if !p.FinishedAt.IsZero() {
			finished = nanos(p.FinishedAt)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save progress of release %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE releases SET
		state = ?, step = ?, step_started_at = ?, plan = ?, error_kind = ?, error = ?, deadline = ?,
		served = ?, failed = ?, done = ?, updated_at = ?, finished_at = ?,
		generation = COALESCE((SELECT g.generation FROM agent_generations g
			WHERE g.environment = releases.environment AND g.service = releases.service), generation)
		WHERE id = ? AND done = 0 AND (? = 0 OR epoch = ?)`,
		p.State, p.Step, nanos(p.StepStartedAt), p.Plan, p.ErrorKind, p.Error, nanos(p.Deadline),
		p.Served, p.Failed, p.Done, nanos(now), finished, id, p.Epoch, p.Epoch)
	if err != nil {
		return fmt.Errorf("save progress of release %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		tx.Rollback()
		cur, err := s.GetRelease(ctx, id)
		if err != nil {
			return err
		}
		if !cur.Done && p.Epoch != 0 && cur.RunnerEpoch != p.Epoch {
			return fmt.Errorf("save progress of release %s at epoch %d (now %d, run by %s): %w", id, p.Epoch, cur.RunnerEpoch, cur.Runner, ErrFenced)
		}
		return fmt.Errorf("save progress of release %s: %w", id, ErrFinished)
	}
	for _, e := range events {
		e.ReleaseID = id
		if err := s.insertEvent(ctx, tx, e); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save progress of release %s: %w", id, err)
	}
	return nil
}

// RequestHalt implements Store.
func (s *SQLite) RequestHalt(ctx context.Context, id, reason string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE releases SET halt_requested = 1, halt_reason = ? WHERE id = ? AND done = 0`, reason, id)
	if err != nil {
		return fmt.Errorf("halt release %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := s.GetRelease(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("halt release %s: %w", id, ErrFinished)
}

// AppendEvent implements Store.
func (s *SQLite) AppendEvent(ctx context.Context, e *Event) error {
	return s.insertEvent(ctx, s.db, e)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *SQLite) insertEvent(ctx context.Context, db execer, e *Event) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if e.ID == "" {
		e.ID = NewID(e.At)
	}
	if e.Epoch != 0 {
		// Fenced: inserted only while the release's claim is e.Epoch.
		res, err := db.ExecContext(ctx, `INSERT INTO release_events (id, release_id, at, state, step, message, data)
			SELECT ?,?,?,?,?,?,? WHERE EXISTS (SELECT 1 FROM releases WHERE id = ? AND epoch = ?)`,
			e.ID, e.ReleaseID, nanos(e.At), e.State, e.Step, e.Message, e.Data, e.ReleaseID, e.Epoch)
		if err != nil {
			return fmt.Errorf("append event to release %s: %w", e.ReleaseID, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			if _, err := s.GetRelease(ctx, e.ReleaseID); err != nil {
				return err
			}
			return fmt.Errorf("append event to release %s at epoch %d: %w", e.ReleaseID, e.Epoch, ErrFenced)
		}
		return nil
	}
	_, err := db.ExecContext(ctx, `INSERT INTO release_events (id, release_id, at, state, step, message, data) VALUES (?,?,?,?,?,?,?)`,
		e.ID, e.ReleaseID, nanos(e.At), e.State, e.Step, e.Message, e.Data)
	if err != nil {
		if isForeignKey(err) {
			return fmt.Errorf("append event to release %s: %w", e.ReleaseID, ErrNotFound)
		}
		return fmt.Errorf("append event to release %s: %w", e.ReleaseID, err)
	}
	return nil
}

// ListEvents implements Store.
func (s *SQLite) ListEvents(ctx context.Context, releaseID string) ([]*Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, release_id, at, state, step, message, data FROM release_events WHERE release_id = ? ORDER BY id`, releaseID)
	if err != nil {
		return nil, fmt.Errorf("list events of release %s: %w", releaseID, err)
	}
	defer rows.Close()
	var out []*Event
	for rows.Next() {
		var (
			e  Event
			at int64
		)
		if err := rows.Scan(&e.ID, &e.ReleaseID, &at, &e.State, &e.Step, &e.Message, &e.Data); err != nil {
			return nil, fmt.Errorf("list events of release %s: %w", releaseID, err)
		}
		e.At = fromNanos(at)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// AcquireLock implements Store.
func (s *SQLite) AcquireLock(ctx context.Context, key, owner string, ttl time.Duration) (Lease, error) {
	if key == "" || owner == "" || ttl <= 0 {
		return Lease{}, fmt.Errorf("acquire lock: key, owner and a positive ttl are required")
	}
	for {
		l, err := s.acquire(ctx, key, owner, ttl)
		// The holder can release between the attempt and the look-up.
		if errors.Is(err, errRetry) {
			continue
		}
		return l, err
	}
}

var errRetry = errors.New("retry")

func (s *SQLite) acquire(ctx context.Context, key, owner string, ttl time.Duration) (Lease, error) {
	now := s.now()
	// One statement, so two acquirers can never both win: the row is
	// inserted, or taken over when expired, or renewed by its owner; the
	// update is skipped (and nothing returned) when another owner holds it.
	var acq, exp int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO leases (key, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET
			acquired_at = CASE WHEN leases.owner = excluded.owner THEN leases.acquired_at ELSE excluded.acquired_at END,
			owner = excluded.owner,
			expires_at = excluded.expires_at
		WHERE leases.owner = excluded.owner OR leases.expires_at <= ?
		RETURNING acquired_at, expires_at`,
		key, owner, nanos(now), nanos(now.Add(ttl)), nanos(now)).Scan(&acq, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		held, gerr := s.GetLock(ctx, key)
		if errors.Is(gerr, ErrNotFound) {
			return Lease{}, errRetry
		}
		if gerr != nil {
			return Lease{}, fmt.Errorf("acquire lock %s: %w", key, gerr)
		}
		return Lease{}, &LockHeldError{Lease: held}
	}
	if err != nil {
		return Lease{}, fmt.Errorf("acquire lock %s: %w", key, err)
	}
	return Lease{Key: key, Owner: owner, AcquiredAt: fromNanos(acq), ExpiresAt: fromNanos(exp)}, nil
}

// RenewLock implements Store.
func (s *SQLite) RenewLock(ctx context.Context, key, owner string, ttl time.Duration) (Lease, error) {
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE leases SET expires_at = ? WHERE key = ? AND owner = ?`, nanos(now.Add(ttl)), key, owner)
	if err != nil {
		return Lease{}, fmt.Errorf("renew lock %s: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return Lease{}, fmt.Errorf("renew lock %s for %s: %w", key, owner, ErrNotOwner)
	}
	return s.GetLock(ctx, key)
}

// ReleaseLock implements Store.
func (s *SQLite) ReleaseLock(ctx context.Context, key, owner string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM leases WHERE key = ? AND owner = ?`, key, owner)
	if err != nil {
		return fmt.Errorf("release lock %s: %w", key, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("release lock %s for %s: %w", key, owner, ErrNotOwner)
	}
	return nil
}

// GetLock implements Store.
func (s *SQLite) GetLock(ctx context.Context, key string) (Lease, error) {
	var (
		l        Lease
		acq, exp int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT key, owner, acquired_at, expires_at FROM leases WHERE key = ?`, key).Scan(&l.Key, &l.Owner, &acq, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, fmt.Errorf("lock %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("get lock %s: %w", key, err)
	}
	l.AcquiredAt, l.ExpiresAt = fromNanos(acq), fromNanos(exp)
	return l, nil
}

// ListLocks implements Store.
func (s *SQLite) ListLocks(ctx context.Context) ([]Lease, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, owner, acquired_at, expires_at FROM leases ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	defer rows.Close()
	var out []Lease
	for rows.Next() {
		var (
			l        Lease
			acq, exp int64
		)
		if err := rows.Scan(&l.Key, &l.Owner, &acq, &exp); err != nil {
			return nil, fmt.Errorf("list locks: %w", err)
		}
		l.AcquiredAt, l.ExpiresAt = fromNanos(acq), fromNanos(exp)
		out = append(out, l)
	}
	return out, rows.Err()
}

// PutProject implements Store.
func (s *SQLite) PutProject(ctx context.Context, p *Project) error {
	if p.UpdatedAt.IsZero() {
		p.UpdatedAt = s.now()
	}
	var res sql.Result
	var err error
	if p.Version == 1 {
		res, err = s.db.ExecContext(ctx, `INSERT INTO projects (name, source, digest, version, updated_by, updated_at)
			VALUES (?,?,?,?,?,?) ON CONFLICT (name) DO NOTHING`, p.Name, p.Source, p.Digest, p.Version, p.UpdatedBy, nanos(p.UpdatedAt))
	} else {
		res, err = s.db.ExecContext(ctx, `UPDATE projects SET source = ?, digest = ?, version = ?, updated_by = ?, updated_at = ?
			WHERE name = ? AND version = ?`, p.Source, p.Digest, p.Version, p.UpdatedBy, nanos(p.UpdatedAt), p.Name, p.Version-1)
	}
	if err != nil {
		return fmt.Errorf("put project %s: %w", p.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("put project %s version %d: %w", p.Name, p.Version, ErrConflict)
	}
	return nil
}

const projectColumns = `name, source, digest, version, updated_by, updated_at`

func scanProject(sc interface{ Scan(...any) error }) (*Project, error) {
	var p Project
	var at int64
	if err := sc.Scan(&p.Name, &p.Source, &p.Digest, &p.Version, &p.UpdatedBy, &at); err != nil {
		return nil, err
	}
	p.UpdatedAt = fromNanos(at)
	return &p, nil
}

// GetProject implements Store.
func (s *SQLite) GetProject(ctx context.Context, name string) (*Project, error) {
	p, err := scanProject(s.db.QueryRowContext(ctx, `SELECT `+projectColumns+` FROM projects WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("project %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get project %s: %w", name, err)
	}
	return p, nil
}

// ListProjects implements Store.
func (s *SQLite) ListProjects(ctx context.Context) ([]*Project, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []*Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, namespace, key string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE namespace = ? AND key = ?`, namespace, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s/%s: %w", namespace, key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", namespace, key, err)
	}
	return v, nil
}

// Put implements Store.
func (s *SQLite) Put(ctx context.Context, namespace, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		namespace, key, value, nanos(s.now()))
	if err != nil {
		return fmt.Errorf("put %s/%s: %w", namespace, key, err)
	}
	return nil
}

// Delete implements Store; deleting a missing key is not an error.
func (s *SQLite) Delete(ctx context.Context, namespace, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM kv WHERE namespace = ? AND key = ?`, namespace, key); err != nil {
		return fmt.Errorf("delete %s/%s: %w", namespace, key, err)
	}
	return nil
}
