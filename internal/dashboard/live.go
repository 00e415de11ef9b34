package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

// sse writes server-sent events to the browser's EventSource.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newSSE(w http.ResponseWriter) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.Flush()
	return s
}

// send writes one event whose data is v as JSON (one line).
func (s *sse) send(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// releaseLive streams a release's timeline while it runs: the timeline
// partial, rendered again whenever the release changed, and `done` when it
// has ended (the page then reloads into its final form).
func (h *Handler) releaseLive(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	rel, err := s.c.Release(apiCtx(r), id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	out := newSSE(w)
	var last []byte
	t := time.NewTicker(h.opts.LivePoll)
	defer t.Stop()
	beat := time.Now()
	for {
		html, err := h.partial("timeline", rel)
		if err != nil {
			h.opts.Logger.Error("render release timeline", "err", err)
			return
		}
		if !bytes.Equal(html, last) {
			if out.send("timeline", map[string]string{"html": string(html), "state": rel.State}) != nil {
				return
			}
			last, beat = html, time.Now()
		}
		if rel.Done {
			_ = out.send("done", map[string]string{"state": rel.State})
			return
		}
		if time.Since(beat) > 15*time.Second {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || out.rc.Flush() != nil {
				return
			}
			beat = time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		next, err := s.c.Release(apiCtx(r), id)
		if err != nil {
			if r.Context().Err() == nil {
				_ = out.send("failed", map[string]string{"detail": err.Error()})
			}
			return
		}
		rel = next
	}
}

// partial renders one template of partials.html alone.
func (h *Handler) partial(name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	err := h.tmpl["release"].ExecuteTemplate(&buf, name, data)
	return buf.Bytes(), err
}

// logLine is a log line as the page's script shows it (text, never HTML).
type logLine struct {
	Time     string `json:"time"`
	Instance string `json:"instance"`
	Version  string `json:"version"`
	Stream   string `json:"stream"`
	Text     string `json:"text"`
}

// logsLive follows a service's (or a release's) log lines.
func (h *Handler) logsLive(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	lq := apiwire.LogsQuery{Project: r.PathValue("project"), Environment: r.PathValue("env"), Service: r.PathValue("service"),
		Release: q.Get("release"), Filter: q.Get("filter"), Follow: true}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			http.Error(w, "query parameter since: want an RFC 3339 time", http.StatusBadRequest)
			return
		}
		lq.Since = t
	}
	var out *sse
	err := s.c.Logs(apiCtx(r), lq, func(l apiwire.LogLine) error {
		if out == nil {
			out = newSSE(w)
		}
		return out.send("log", logLine{Time: l.Time.UTC().Format("15:04:05.000"), Instance: l.Instance, Version: l.Version, Stream: l.Stream, Text: l.Text})
	})
	if err != nil && r.Context().Err() == nil {
		if out == nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_ = out.send("failed", map[string]string{"detail": err.Error()})
	}
}
