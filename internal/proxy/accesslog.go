package proxy

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// accessLog writes one JSON object per finished request.
type accessLog struct {
	mu sync.Mutex
	w  io.Writer
}

type accessEntry struct {
	Time        time.Time `json:"time"`
	RequestID   string    `json:"request_id,omitempty"`
	Remote      string    `json:"remote"`
	Method      string    `json:"method"`
	Host        string    `json:"host"`
	Path        string    `json:"path"`
	Proto       string    `json:"proto"`
	Status      int       `json:"status"`
	DurationMS  float64   `json:"duration_ms"`
	BytesIn     int64     `json:"bytes_in"`
	BytesOut    int64     `json:"bytes_out"`
	Project     string    `json:"project,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Service     string    `json:"service,omitempty"`
	Preview     bool      `json:"preview,omitempty"`
	Group       string    `json:"group,omitempty"`
	Target      string    `json:"target,omitempty"`
	Retried     bool      `json:"retried,omitempty"`
	Error       string    `json:"error,omitempty"`
}

func (l *accessLog) write(e *accessEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(b)
}
