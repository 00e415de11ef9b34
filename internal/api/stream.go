package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// heartbeat is how often a stream with nothing to say writes a comment, so
// proxies keep it open and a client that went away is noticed.
const heartbeat = 15 * time.Second

// sseStream writes server-sent events (text/event-stream): one
// `event: KIND`, `id: ID` (when the event has one, so a client can continue
// after it) and `data: JSON` per event, flushed at once.
type sseStream struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	rc   *http.ResponseController
	stop chan struct{}
	done chan struct{}
}

func newSSE(w http.ResponseWriter) *sseStream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sseStream{w: w, rc: http.NewResponseController(w), stop: make(chan struct{}), done: make(chan struct{})}
	_ = s.rc.Flush()
	go s.beat()
	return s
}

func (s *sseStream) beat() {
	defer close(s.done)
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			_, _ = fmt.Fprint(s.w, ": keep-alive\n\n")
			_ = s.rc.Flush()
			s.mu.Unlock()
		}
	}
}

// send writes one event; an error means the client is gone.
func (s *sseStream) send(event, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != "" {
		if _, err := fmt.Fprintf(s.w, "id: %s\n", id); err != nil {
			return err
		}
	}
	// JSON has no raw newline, so one data line carries it.
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// close ends the heartbeat; a final `event: error` reports why a stream
// ended early.
func (s *sseStream) close(err error) {
	close(s.stop)
	<-s.done
	if err != nil {
		_ = s.send("error", "", map[string]string{"detail": err.Error()})
	}
}
