package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// User is a person or machine that calls the API. Roles are role strings
// (internal/auth parses them: "global_admin", "staging_deployer@hello").
type User struct {
	Name      string
	Roles     []string
	Disabled  bool
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Token is an API token of a user. Hash is the SHA-256 of the token (hex);
// the token itself is never stored.
type Token struct {
	ID         string
	User       string
	Name       string
	Hash       string
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	RevokedAt  time.Time // zero: not revoked
	LastUsedAt time.Time
}

// AuditEntry is one entry of the audit log. Seq, PrevHash and Hash are
// assigned by AppendAudit.
type AuditEntry struct {
	Seq           int64
	At            time.Time
	Actor         string
	TokenID       string
	Source        string
	Action        string
	Project       string
	Environment   string
	Target        string
	RequestDigest string
	Outcome       string
	PrevHash      string
	Hash          string
}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Since       time.Time
	Actor       string
	Environment string
	Limit       int
}

// AuditSeal computes an entry's hash once its Seq and PrevHash are set.
type AuditSeal func(e *AuditEntry) string

// IdentityTx is what an identity change may do inside one transaction
// (Store.InIdentityTx): the users and tokens it writes and the audit entry
// that records it are stored together or not at all.
type IdentityTx interface {
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, name string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	UpdateUser(ctx context.Context, u *User) error
	CreateToken(ctx context.Context, t *Token) error
	RevokeToken(ctx context.Context, id string) error
	AppendAudit(ctx context.Context, e *AuditEntry, seal AuditSeal) error
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// idq runs the identity statements on q: the database, or a transaction.
type idq struct {
	q   queryer
	now func() time.Time
}

// InIdentityTx implements Store.
func (s *SQLite) InIdentityTx(ctx context.Context, fn func(IdentityTx) error) error {
	tx, err := s.db.beginSerial(ctx, lockAudit)
	if err != nil {
		return fmt.Errorf("begin identity change: %w", err)
	}
	defer tx.Rollback()
	if err := fn(idq{q: tx, now: s.now}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit identity change: %w", err)
	}
	return nil
}

func (s *SQLite) id() idq { return idq{q: s.db, now: s.now} }

// CreateUser implements Store.
func (s *SQLite) CreateUser(ctx context.Context, u *User) error { return s.id().CreateUser(ctx, u) }

// GetUser implements Store.
func (s *SQLite) GetUser(ctx context.Context, name string) (*User, error) {
	return s.id().GetUser(ctx, name)
}

// ListUsers implements Store.
func (s *SQLite) ListUsers(ctx context.Context) ([]*User, error) { return s.id().ListUsers(ctx) }

// UpdateUser implements Store.
func (s *SQLite) UpdateUser(ctx context.Context, u *User) error { return s.id().UpdateUser(ctx, u) }

// CreateToken implements Store.
func (s *SQLite) CreateToken(ctx context.Context, t *Token) error { return s.id().CreateToken(ctx, t) }

// RevokeToken implements Store.
func (s *SQLite) RevokeToken(ctx context.Context, id string) error {
	return s.id().RevokeToken(ctx, id)
}

// AppendAudit implements Store: in one transaction it reads the last entry,
// numbers e after it, links it to that entry's hash, seals it and inserts it.
func (s *SQLite) AppendAudit(ctx context.Context, e *AuditEntry, seal AuditSeal) error {
	return s.InIdentityTx(ctx, func(tx IdentityTx) error { return tx.AppendAudit(ctx, e, seal) })
}

func (s idq) CreateUser(ctx context.Context, u *User) error {
	now := s.now()
	u.CreatedAt, u.UpdatedAt = now, now
	roles, _ := json.Marshal(nonNil(u.Roles))
	_, err := s.q.ExecContext(ctx, `INSERT INTO users (name, roles, disabled, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?)`,
		u.Name, string(roles), u.Disabled, u.CreatedBy, nanos(now), nanos(now))
	if isUnique(err) {
		return fmt.Errorf("create user %s: %w", u.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create user %s: %w", u.Name, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const userColumns = `name, roles, disabled, created_by, created_at, updated_at`

func scanUser(sc interface{ Scan(...any) error }) (*User, error) {
	var u User
	var roles string
	var created, updated int64
	if err := sc.Scan(&u.Name, &roles, &u.Disabled, &u.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(roles), &u.Roles); err != nil {
		return nil, fmt.Errorf("roles of user %s: %w", u.Name, err)
	}
	u.CreatedAt, u.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &u, nil
}

func (s idq) GetUser(ctx context.Context, name string) (*User, error) {
	u, err := scanUser(s.q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get user %s: %w", name, err)
	}
	return u, nil
}

func (s idq) ListUsers(ctx context.Context) ([]*User, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (s idq) UpdateUser(ctx context.Context, u *User) error {
	u.UpdatedAt = s.now()
	roles, _ := json.Marshal(nonNil(u.Roles))
	res, err := s.q.ExecContext(ctx, `UPDATE users SET roles = ?, disabled = ?, updated_at = ? WHERE name = ?`,
		string(roles), u.Disabled, nanos(u.UpdatedAt), u.Name)
	if err != nil {
		return fmt.Errorf("update user %s: %w", u.Name, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("update user %s: %w", u.Name, ErrNotFound)
	}
	return nil
}

func (s idq) CreateToken(ctx context.Context, t *Token) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	_, err := s.q.ExecContext(ctx, `INSERT INTO tokens (id, user_name, name, hash, created_at, expires_at) VALUES (?,?,?,?,?,?)`,
		t.ID, t.User, t.Name, t.Hash, nanos(t.CreatedAt), nanos(t.ExpiresAt))
	if isUnique(err) {
		return fmt.Errorf("create token %s: %w", t.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create token %s of %s: %w", t.ID, t.User, err)
	}
	return nil
}

const tokenColumns = `id, user_name, name, hash, created_at, expires_at, revoked_at, last_used_at`

func scanToken(sc interface{ Scan(...any) error }) (*Token, error) {
	var t Token
	var created, expires, revoked, used int64
	if err := sc.Scan(&t.ID, &t.User, &t.Name, &t.Hash, &created, &expires, &revoked, &used); err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(revoked), fromNanos(used)
	return &t, nil
}

// TokenByHash implements Store.
func (s *SQLite) TokenByHash(ctx context.Context, hash string) (*Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get token: %w", err)
	}
	return t, nil
}

// GetToken implements Store.
func (s *SQLite) GetToken(ctx context.Context, id string) (*Token, error) {
	return s.id().GetToken(ctx, id)
}

func (s idq) GetToken(ctx context.Context, id string) (*Token, error) {
	t, err := scanToken(s.q.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get token %s: %w", id, err)
	}
	return t, nil
}

// ListTokens implements Store.
func (s *SQLite) ListTokens(ctx context.Context, user string) ([]*Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE ? = '' OR user_name = ? ORDER BY id`, user, user)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []*Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s idq) RevokeToken(ctx context.Context, id string) error {
	res, err := s.q.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, nanos(s.now()), id)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		if _, err := s.GetToken(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("revoke token %s: %w", id, ErrFinished)
	}
	return nil
}

// TouchToken implements Store.
func (s *SQLite) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, nanos(at), id)
	return err
}

const auditColumns = `seq, at, actor, token_id, source, action, project, environment, target, request_digest, outcome, prev_hash, hash`

func scanAudit(sc interface{ Scan(...any) error }) (*AuditEntry, error) {
	var e AuditEntry
	var at int64
	if err := sc.Scan(&e.Seq, &at, &e.Actor, &e.TokenID, &e.Source, &e.Action, &e.Project, &e.Environment, &e.Target,
		&e.RequestDigest, &e.Outcome, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.At = fromNanos(at)
	return &e, nil
}

// AppendAudit numbers e after the last entry, links it to that entry's
// hash, seals and inserts it; the caller's transaction makes that atomic.
func (s idq) AppendAudit(ctx context.Context, e *AuditEntry, seal AuditSeal) error {
	var seq int64
	var prev string
	err := s.q.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("append audit entry: %w", err)
	}
	e.Seq, e.PrevHash = seq+1, prev
	if e.At.IsZero() {
		e.At = s.now()
	}
	e.Hash = seal(e)
	if _, err := s.q.ExecContext(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		e.Seq, nanos(e.At), e.Actor, e.TokenID, e.Source, e.Action, e.Project, e.Environment, e.Target,
		e.RequestDigest, e.Outcome, e.PrevHash, e.Hash); err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	return nil
}

// ListAudit implements Store: entries in seq order (the newest Limit when
// Limit is set).
func (s *SQLite) ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error) {
	q := `SELECT ` + auditColumns + ` FROM audit WHERE at >= ? AND (? = '' OR actor = ?) AND (? = '' OR environment = ?) ORDER BY seq DESC`
	args := []any{nanos(f.Since), f.Actor, f.Actor, f.Environment, f.Environment}
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []*AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		out = append(out, e)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, rows.Err()
}

// AuditRows implements Store: every entry in storage order (rowid), which
// is how `verify` sees a reordered table.
func (s *SQLite) AuditRows(ctx context.Context) ([]*AuditEntry, error) {
	// PostgreSQL's physical order is ctid: the table is append-only, so
	// rows sit in insertion order, and a row rewritten moves to the end.
	order := "rowid"
	if s.db.dialect == dialectPostgres {
		order = "ctid"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY `+order)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	var out []*AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditTriggers implements Store: the names of the triggers on the audit table.
func (s *SQLite) AuditTriggers(ctx context.Context) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit' ORDER BY name`
	if s.db.dialect == dialectPostgres {
		q = `SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit'::regclass AND NOT tgisinternal AND tgenabled <> 'D' ORDER BY tgname`
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read audit triggers: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// PutIfAbsent implements Store: one statement, so of two racing callers
// exactly one stores its value.
func (s *SQLite) PutIfAbsent(ctx context.Context, namespace, key string, value []byte) ([]byte, bool, error) {
	if value == nil {
		value = []byte{}
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO kv (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (namespace, key) DO NOTHING`, namespace, key, value, nanos(s.now()))
	if err != nil {
		return nil, false, fmt.Errorf("put %s/%s: %w", namespace, key, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil, true, nil
	}
	prev, err := s.Get(ctx, namespace, key)
	return prev, false, err
}
