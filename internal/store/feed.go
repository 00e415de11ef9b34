package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ServiceEvent is a fact about a service that is not a step of one of its
// releases: an instance started, exited or changed health, a group was
// scaled, a halt was asked for, a project applied. Kind names it
// ("instance.started"); Actor is who or what did it, Target what it was
// done to.
type ServiceEvent struct {
	ID          string
	At          time.Time
	Kind        string
	Project     string
	Environment string
	Service     string
	ReleaseID   string
	Actor       string
	Target      string
	Message     string
}

// FeedEvent is one line of a service's history: a release's event (Kind
// "release", with State and Step) or a ServiceEvent.
type FeedEvent struct {
	ServiceEvent
	State string
	Step  int
}

// FeedFilter selects feed events; zero fields match everything. After is
// the id of the last event already seen (the feed continues after it);
// without After, Last keeps only the newest Last events.
type FeedFilter struct {
	Project     string
	Environment string
	Service     string
	Release     string
	After       string
	Last        int
}

// AppendServiceEvent records e (its ID and At set when empty).
func (s *SQLite) AppendServiceEvent(ctx context.Context, e *ServiceEvent) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if e.ID == "" {
		e.ID = NewID(e.At)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO service_events (id, at, kind, project, environment, service, release_id, actor, target, message) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		e.ID, nanos(e.At), e.Kind, e.Project, e.Environment, e.Service, e.ReleaseID, e.Actor, e.Target, e.Message)
	if err != nil {
		return fmt.Errorf("append service event %s: %w", e.Kind, err)
	}
	return nil
}

// Feed returns the release events and service events f selects, oldest
// first. Both tables' ids come from NewID, so ordering by id is the order
// they were appended in.
func (s *SQLite) Feed(ctx context.Context, f FeedFilter) ([]*FeedEvent, error) {
	var rw, sw []string
	var rargs, sargs []any
	add := func(col string, v string) {
		if v == "" {
			return
		}
		rw = append(rw, "r."+col+" = ?")
		rargs = append(rargs, v)
		sw = append(sw, col+" = ?")
		sargs = append(sargs, v)
	}
	add("project", f.Project)
	if f.Environment != "" {
		// A project's own events (applies) concern each of its
		// environments; a service's filter leaves them out.
		rw = append(rw, "r.environment = ?")
		rargs = append(rargs, f.Environment)
		if f.Service == "" && f.Release == "" {
			sw = append(sw, "(environment = ? OR environment = '')")
		} else {
			sw = append(sw, "environment = ?")
		}
		sargs = append(sargs, f.Environment)
	}
	add("service", f.Service)
	if f.Release != "" {
		rw = append(rw, "e.release_id = ?")
		rargs = append(rargs, f.Release)
		sw = append(sw, "release_id = ?")
		sargs = append(sargs, f.Release)
	}
	if f.After != "" {
		rw = append(rw, "e.id > ?")
		rargs = append(rargs, f.After)
		sw = append(sw, "id > ?")
		sargs = append(sargs, f.After)
	}
	where := func(w []string) string {
		if len(w) == 0 {
			return ""
		}
		return " WHERE " + strings.Join(w, " AND ")
	}
	q := `SELECT e.id, e.at, 'release', r.project, r.environment, r.service, e.release_id, r.created_by, e.release_id, e.message, e.state, e.step
	        FROM release_events e JOIN releases r ON r.id = e.release_id` + where(rw) + `
	      UNION ALL
	      SELECT id, at, kind, project, environment, service, release_id, actor, target, message, '', -1
	        FROM service_events` + where(sw)
	limit := 10000
	if f.After == "" && f.Last > 0 {
		q = `SELECT * FROM (` + q + ` ORDER BY 1 DESC LIMIT ?) AS newest ORDER BY 1`
		limit = f.Last
	} else {
		q += ` ORDER BY 1 LIMIT ?`
	}
	args := append(append(rargs, sargs...), limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []*FeedEvent
	for rows.Next() {
		var e FeedEvent
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Kind, &e.Project, &e.Environment, &e.Service, &e.ReleaseID, &e.Actor, &e.Target, &e.Message, &e.State, &e.Step); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		e.At = fromNanos(at)
		out = append(out, &e)
	}
	return out, rows.Err()
}

// CountReleases returns how many releases ended in each state, and how many
// have not ended.
func (s *SQLite) CountReleases(ctx context.Context) (map[string]int64, int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, done, count(*) FROM releases GROUP BY state, done`)
	if err != nil {
		return nil, 0, fmt.Errorf("count releases: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	var unfinished int64
	for rows.Next() {
		var state string
		var done bool
		var n int64
		if err := rows.Scan(&state, &done, &n); err != nil {
			return nil, 0, fmt.Errorf("count releases: %w", err)
		}
		if done {
			out[state] += n
		} else {
			unfinished += n
		}
	}
	return out, unfinished, rows.Err()
}
