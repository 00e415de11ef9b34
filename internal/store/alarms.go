package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// AlarmState is an alarm's state as the server last evaluated it.
type AlarmState struct {
	Project, Environment, Service, Name string
	State                               string // OK, ALERT, NO_DATA
	Since                               time.Time
	// PendingSince is when the alarm's condition began to hold (it fires
	// once it held for the alarm's `for`); zero when it does not hold.
	PendingSince time.Time
	Value        string
	Detail       []byte // the alarm's definition, JSON
	UpdatedAt    time.Time
}

// AlarmFilter selects alarm states; zero fields match everything.
type AlarmFilter struct {
	Project, Environment, Service string
}

// Notification is a webhook delivery of an alarm's change to a channel.
type Notification struct {
	ID                            string
	CreatedAt                     time.Time
	Project, Environment, Service string
	Alarm, Channel                string
	Payload                       []byte
	State                         string // pending, delivered, failed
	Attempts                      int
	NextAt                        time.Time
	LastError                     string
	DeliveredAt                   time.Time
}

// Notification states.
const (
	NotificationPending   = "pending"
	NotificationDelivered = "delivered"
	NotificationFailed    = "failed"
)

// PutAlarmState records an alarm's state.
func (s *SQLite) PutAlarmState(ctx context.Context, a *AlarmState) error {
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = s.now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO alarm_states (project, environment, service, name, state, since, pending_since, value, detail, updated_at)
		VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (project, environment, service, name) DO UPDATE SET state = excluded.state, since = excluded.since,
			pending_since = excluded.pending_since, value = excluded.value, detail = excluded.detail, updated_at = excluded.updated_at`,
		a.Project, a.Environment, a.Service, a.Name, a.State, nanos(a.Since), nanos(a.PendingSince), a.Value, a.Detail, nanos(a.UpdatedAt))
	if err != nil {
		return fmt.Errorf("record alarm %s: %w", a.Name, err)
	}
	return nil
}

// DeleteAlarmState forgets an alarm (its manifest no longer has it).
func (s *SQLite) DeleteAlarmState(ctx context.Context, project, environment, service, name string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM alarm_states WHERE project = ? AND environment = ? AND service = ? AND name = ?`, project, environment, service, name)
	return err
}

// ListAlarmStates returns the alarm states f selects, by service and name.
func (s *SQLite) ListAlarmStates(ctx context.Context, f AlarmFilter) ([]*AlarmState, error) {
	var where []string
	var args []any
	for col, v := range map[string]string{"project": f.Project, "environment": f.Environment, "service": f.Service} {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	q := `SELECT project, environment, service, name, state, since, pending_since, value, detail, updated_at FROM alarm_states`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY project, environment, service, name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list alarms: %w", err)
	}
	defer rows.Close()
	var out []*AlarmState
	for rows.Next() {
		var a AlarmState
		var since, pending, updated int64
		if err := rows.Scan(&a.Project, &a.Environment, &a.Service, &a.Name, &a.State, &since, &pending, &a.Value, &a.Detail, &updated); err != nil {
			return nil, fmt.Errorf("list alarms: %w", err)
		}
		a.Since, a.PendingSince, a.UpdatedAt = fromNanos(since), fromNanos(pending), fromNanos(updated)
		out = append(out, &a)
	}
	return out, rows.Err()
}

// AddNotification records a delivery to make (n.ID and CreatedAt set when empty).
func (s *SQLite) AddNotification(ctx context.Context, n *Notification) error {
	if n.CreatedAt.IsZero() {
		n.CreatedAt = s.now()
	}
	if n.ID == "" {
		n.ID = NewID(n.CreatedAt)
	}
	if n.State == "" {
		n.State = NotificationPending
	}
	if n.NextAt.IsZero() {
		n.NextAt = n.CreatedAt
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO notifications (id, created_at, project, environment, service, alarm, channel, payload, state, attempts, next_at, last_error, delivered_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`, n.ID, nanos(n.CreatedAt), n.Project, n.Environment, n.Service, n.Alarm, n.Channel, n.Payload, n.State,
		n.Attempts, nanos(n.NextAt), n.LastError, nanos(n.DeliveredAt))
	if err != nil {
		return fmt.Errorf("record notification: %w", err)
	}
	return nil
}

// UpdateNotification records a delivery attempt's outcome.
func (s *SQLite) UpdateNotification(ctx context.Context, n *Notification) error {
	_, err := s.db.ExecContext(ctx, `UPDATE notifications SET state = ?, attempts = ?, next_at = ?, last_error = ?, delivered_at = ? WHERE id = ?`,
		n.State, n.Attempts, nanos(n.NextAt), n.LastError, nanos(n.DeliveredAt), n.ID)
	if err != nil {
		return fmt.Errorf("record notification %s: %w", n.ID, err)
	}
	return nil
}

// NotificationFilter selects notifications: Due (pending and due at or
// before it), or by scope, newest first, at most Limit.
type NotificationFilter struct {
	Due                           time.Time
	Project, Environment, Service string
	Limit                         int
}

// ListNotifications returns the notifications f selects: due ones oldest
// first, else newest first.
func (s *SQLite) ListNotifications(ctx context.Context, f NotificationFilter) ([]*Notification, error) {
	var where []string
	var args []any
	order := "id DESC"
	if !f.Due.IsZero() {
		where = append(where, "state = ?", "next_at <= ?")
		args = append(args, NotificationPending, nanos(f.Due))
		order = "id"
	}
	for col, v := range map[string]string{"project": f.Project, "environment": f.Environment, "service": f.Service} {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	q := `SELECT id, created_at, project, environment, service, alarm, channel, payload, state, attempts, next_at, last_error, delivered_at FROM notifications`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY "+order+" LIMIT ?", append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	defer rows.Close()
	var out []*Notification
	for rows.Next() {
		var n Notification
		var created, next, delivered int64
		if err := rows.Scan(&n.ID, &created, &n.Project, &n.Environment, &n.Service, &n.Alarm, &n.Channel, &n.Payload, &n.State, &n.Attempts, &next, &n.LastError, &delivered); err != nil {
			return nil, fmt.Errorf("list notifications: %w", err)
		}
		n.CreatedAt, n.NextAt, n.DeliveredAt = fromNanos(created), fromNanos(next), fromNanos(delivered)
		out = append(out, &n)
	}
	return out, rows.Err()
}
