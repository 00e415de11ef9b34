package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/runwayhq/runway/internal/secrets"
)

// The SQLite store keeps sealed secret versions for internal/secrets (the
// secrets.Rows interface); it never sees a value in clear.
var _ secrets.Rows = (*SQLite)(nil)

// InsertSecretVersions implements secrets.Rows.
func (s *SQLite) InsertSecretVersions(ctx context.Context, refs []secrets.Ref, overwrite bool, make func(secrets.Ref, int) (*secrets.Row, error)) ([]*secrets.Row, error) {
	tx, err := s.db.beginSerial(ctx, lockSecrets)
	if err != nil {
		return nil, fmt.Errorf("begin secret put: %w", err)
	}
	defer tx.Rollback()
	now := nanos(s.now())
	var out []*secrets.Row
	for _, ref := range refs {
		var cur int
		var deleted bool
		err := tx.QueryRowContext(ctx, `SELECT current_version, deleted FROM secrets WHERE project = ? AND environment = ? AND service = ? AND key = ?`,
			ref.Project, ref.Environment, ref.Service, ref.Key).Scan(&cur, &deleted)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("read secret %s: %w", ref, err)
		}
		if exists && !deleted && !overwrite {
			return nil, fmt.Errorf("secret %s (%s) already has version %d: pass --overwrite to make version %d: %w", ref.Key, ref.Scope(), cur, cur+1, secrets.ErrExists)
		}
		r, err := make(ref, cur+1)
		if err != nil {
			return nil, err
		}
		if exists {
			_, err = tx.ExecContext(ctx, `UPDATE secrets SET current_version = ?, deleted = 0, changed_at = ?,
				created_at = CASE WHEN deleted = 1 THEN ? ELSE created_at END
				WHERE project = ? AND environment = ? AND service = ? AND key = ?`,
				r.Version, now, now, ref.Project, ref.Environment, ref.Service, ref.Key)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO secrets (project, environment, service, key, current_version, created_at, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				ref.Project, ref.Environment, ref.Service, ref.Key, r.Version, now, now)
		}
		if err != nil {
			return nil, fmt.Errorf("write secret %s: %w", ref, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO secret_versions (project, environment, service, key, version, created_at, created_by, rollback_of, key_id, wrapped_key, ciphertext)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ref.Project, ref.Environment, ref.Service, ref.Key, r.Version, nanos(r.CreatedAt), r.CreatedBy, r.RollbackOf, r.KeyID, r.WrappedKey, r.Ciphertext); err != nil {
			return nil, fmt.Errorf("write secret %s version %d: %w", ref, r.Version, err)
		}
		out = append(out, r)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit secret put: %w", err)
	}
	return out, nil
}

// SecretVersion implements secrets.Rows.
func (s *SQLite) SecretVersion(ctx context.Context, ref secrets.Ref, version int) (*secrets.Row, error) {
	q := `SELECT v.version, v.created_at, v.created_by, v.rollback_of, v.key_id, v.wrapped_key, v.ciphertext
		FROM secret_versions v JOIN secrets s USING (project, environment, service, key)
		WHERE v.project = ? AND v.environment = ? AND v.service = ? AND v.key = ? AND s.deleted = 0 AND `
	args := []any{ref.Project, ref.Environment, ref.Service, ref.Key}
	if version == 0 {
		q += `v.version = s.current_version`
	} else {
		q += `v.version = ?`
		args = append(args, version)
	}
	r := &secrets.Row{Meta: secrets.Meta{Ref: ref}}
	var at int64
	err := s.db.QueryRowContext(ctx, q, args...).Scan(&r.Version, &at, &r.CreatedBy, &r.RollbackOf, &r.KeyID, &r.WrappedKey, &r.Ciphertext)
	if errors.Is(err, sql.ErrNoRows) {
		if version == 0 {
			return nil, fmt.Errorf("secret %s (%s) has no value in %s of project %s: %w", ref.Key, ref.Scope(), ref.Environment, ref.Project, secrets.ErrNotFound)
		}
		return nil, fmt.Errorf("secret %s (%s) has no version %d in %s of project %s: %w", ref.Key, ref.Scope(), version, ref.Environment, ref.Project, secrets.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", ref, err)
	}
	r.CreatedAt = fromNanos(at)
	return r, nil
}

// SecretHistory implements secrets.Rows.
func (s *SQLite) SecretHistory(ctx context.Context, ref secrets.Ref) ([]secrets.Meta, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT v.version, v.created_at, v.created_by, v.rollback_of
		FROM secret_versions v JOIN secrets s USING (project, environment, service, key)
		WHERE v.project = ? AND v.environment = ? AND v.service = ? AND v.key = ? AND s.deleted = 0
		ORDER BY v.version DESC`, ref.Project, ref.Environment, ref.Service, ref.Key)
	if err != nil {
		return nil, fmt.Errorf("read history of secret %s: %w", ref, err)
	}
	defer rows.Close()
	var out []secrets.Meta
	for rows.Next() {
		m := secrets.Meta{Ref: ref}
		var at int64
		if err := rows.Scan(&m.Version, &at, &m.CreatedBy, &m.RollbackOf); err != nil {
			return nil, err
		}
		m.CreatedAt = fromNanos(at)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("secret %s (%s) does not exist in %s of project %s: %w", ref.Key, ref.Scope(), ref.Environment, ref.Project, secrets.ErrNotFound)
	}
	return out, nil
}

// ListSecrets implements secrets.Rows.
func (s *SQLite) ListSecrets(ctx context.Context, project, environment, service string) ([]secrets.Info, error) {
	q := `SELECT service, key, current_version, created_at, changed_at, accessed_at FROM secrets
		WHERE project = ? AND environment = ? AND deleted = 0`
	args := []any{project, environment}
	if service != "" {
		q += ` AND service IN ('', ?)`
		args = append(args, service)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY service, key`, args...)
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	defer rows.Close()
	out := []secrets.Info{}
	for rows.Next() {
		in := secrets.Info{Ref: secrets.Ref{Project: project, Environment: environment}}
		var c, ch, a int64
		if err := rows.Scan(&in.Service, &in.Key, &in.Version, &c, &ch, &a); err != nil {
			return nil, err
		}
		in.CreatedAt, in.ChangedAt, in.AccessedAt = fromNanos(c), fromNanos(ch), fromNanos(a)
		out = append(out, in)
	}
	return out, rows.Err()
}

// TouchSecret implements secrets.Rows.
func (s *SQLite) TouchSecret(ctx context.Context, ref secrets.Ref, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE secrets SET accessed_at = ? WHERE project = ? AND environment = ? AND service = ? AND key = ?`,
		nanos(at), ref.Project, ref.Environment, ref.Service, ref.Key); err != nil {
		return fmt.Errorf("record access of secret %s: %w", ref, err)
	}
	return nil
}

// DeleteSecret implements secrets.Rows: the versions go, the key's row
// stays (deleted) so its version numbers are never reused.
func (s *SQLite) DeleteSecret(ctx context.Context, ref secrets.Ref) error {
	tx, err := s.db.beginSerial(ctx, lockSecrets)
	if err != nil {
		return fmt.Errorf("begin secret delete: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE secrets SET deleted = 1, changed_at = ? WHERE project = ? AND environment = ? AND service = ? AND key = ? AND deleted = 0`,
		nanos(s.now()), ref.Project, ref.Environment, ref.Service, ref.Key)
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", ref, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("secret %s (%s) does not exist in %s of project %s: %w", ref.Key, ref.Scope(), ref.Environment, ref.Project, secrets.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM secret_versions WHERE project = ? AND environment = ? AND service = ? AND key = ?`,
		ref.Project, ref.Environment, ref.Service, ref.Key); err != nil {
		return fmt.Errorf("delete secret %s: %w", ref, err)
	}
	return tx.Commit()
}

// RewrapSecrets implements secrets.Rows.
func (s *SQLite) RewrapSecrets(ctx context.Context, fn func(*secrets.Row) (secrets.Sealed, error)) (int, error) {
	tx, err := s.db.beginSerial(ctx, lockSecrets)
	if err != nil {
		return 0, fmt.Errorf("begin re-wrap: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT project, environment, service, key, version, key_id, wrapped_key, ciphertext FROM secret_versions`)
	if err != nil {
		return 0, err
	}
	var all []*secrets.Row
	for rows.Next() {
		r := &secrets.Row{}
		if err := rows.Scan(&r.Project, &r.Environment, &r.Service, &r.Key, &r.Version, &r.KeyID, &r.WrappedKey, &r.Ciphertext); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range all {
		sealed, err := fn(r)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE secret_versions SET key_id = ?, wrapped_key = ?, ciphertext = ?
			WHERE project = ? AND environment = ? AND service = ? AND key = ? AND version = ?`,
			sealed.KeyID, sealed.WrappedKey, sealed.Ciphertext, r.Project, r.Environment, r.Service, r.Key, r.Version); err != nil {
			return 0, fmt.Errorf("re-wrap secret %s version %d: %w", r.Ref, r.Version, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit re-wrap: %w", err)
	}
	return len(all), nil
}

// SecretKeyIDs implements secrets.Rows.
func (s *SQLite) SecretKeyIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT key_id FROM secret_versions ORDER BY key_id`)
	if err != nil {
		return nil, fmt.Errorf("list master key ids: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
