package agentapi

import (
	"strings"
	"time"
)

// LogLine is one time-stamped line of an instance's stdout or stderr.
type LogLine struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Text   string    `json:"text"`
}

// LogQuery selects the lines ReadLogs returns.
type LogQuery struct {
	// Since drops lines older than this time (zero: all).
	Since time.Time
	// Filter keeps only lines containing this substring.
	Filter string
	// Stream keeps only "stdout" or "stderr" lines ("" for both).
	Stream string
	// Tail keeps only the last N matching existing lines (0: all).
	Tail int
	// Follow keeps reading new lines until the context ends.
	Follow bool
}

// Match reports whether a line passes the query's filters.
func (q LogQuery) Match(l LogLine) bool {
	if !q.Since.IsZero() && l.Time.Before(q.Since) {
		return false
	}
	if q.Stream != "" && l.Stream != q.Stream {
		return false
	}
	return q.Filter == "" || strings.Contains(l.Text, q.Filter)
}

// LogGroup describes the logs kept for one group, live or deleted.
type LogGroup struct {
	Format      string        `json:"format"`
	Group       string        `json:"group"`
	Project     string        `json:"project,omitempty"`
	Service     string        `json:"service"`
	Environment string        `json:"environment"`
	ReleaseID   string        `json:"release_id"`
	Version     string        `json:"version,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	DeletedAt   time.Time     `json:"deleted_at,omitzero"`
	Instances   []LogInstance `json:"instances"`
}

// LogInstance is one instance whose logs are kept.
type LogInstance struct {
	ID        string    `json:"id"`
	Index     int       `json:"index"`
	RemovedAt time.Time `json:"removed_at,omitzero"`
}
