package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ClaimRelease implements Store: one statement, so of two replicas racing
// for a release exactly one wins, and every claim raises the epoch.
func (s *DB) ClaimRelease(ctx context.Context, id, owner string, ttl time.Duration) (int64, error) {
	if owner == "" || ttl <= 0 {
		return 0, errors.New("claim release: an owner and a positive ttl are required")
	}
	now := s.now()
	var epoch int64
	err := s.db.QueryRowContext(ctx, `UPDATE releases SET runner = ?, runner_until = ?, epoch = epoch + 1
		WHERE id = ? AND done = 0 AND (runner = '' OR runner = ? OR runner_until <= ?)
		RETURNING epoch`, owner, nanos(now.Add(ttl)), id, owner, nanos(now)).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		cur, gerr := s.GetRelease(ctx, id)
		if gerr != nil {
			return 0, gerr
		}
		if cur.Done {
			return 0, fmt.Errorf("claim release %s: %w", id, ErrFinished)
		}
		return 0, &LockHeldError{Lease: Lease{Key: "release/" + id, Owner: cur.Runner, ExpiresAt: cur.RunnerUntil}}
	}
	if err != nil {
		return 0, fmt.Errorf("claim release %s: %w", id, err)
	}
	return epoch, nil
}

// RenewClaim implements Store.
func (s *DB) RenewClaim(ctx context.Context, id, owner string, epoch int64, ttl time.Duration) error {
	res, err := s.db.ExecContext(ctx, `UPDATE releases SET runner_until = ? WHERE id = ? AND runner = ? AND epoch = ? AND done = 0`,
		nanos(s.now().Add(ttl)), id, owner, epoch)
	if err != nil {
		return fmt.Errorf("renew the claim of release %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("renew the claim of release %s at epoch %d: %w", id, epoch, ErrFenced)
	}
	return nil
}
