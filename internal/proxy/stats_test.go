package proxy

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStatsMetricsCountersAndAccessLog(t *testing.T) {
	t.Parallel()
	var logBuf syncBuffer
	p := startProxy(t, Options{AccessLog: &logBuf})
	stable := newBackend(t, "stable/1", nil)
	canary := newBackend(t, "canary/1", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mustUpdate(t, p, oneService([]Backend{{Group: "stable", Weight: 3}, {Group: "canary", Weight: 1}},
		map[string][]Target{"stable": {stable.target()}, "canary": {canary.target()}}))
	c := p.client(t)
	before := p.Counters(webKey)
	for range 40 {
		get(t, c, webURL+"/")
	}
	waitFor(t, "the last request to be accounted", 5*time.Second, func() bool {
		return p.Counters(webKey).Served-before.Served == 40
	})
	stats := p.Stats(webKey, time.Minute)
	s, cn := stats["stable"], stats["canary"]
	if s.Requests != 30 || s.Errors != 0 || cn.Requests != 10 || cn.Errors != 10 || cn.ErrorRate != 1 {
		t.Fatalf("stats %+v", stats)
	}
	if s.P50 <= 0 || s.P50 > s.P90 || s.P90 > s.P99 || s.P99 > 10*time.Second {
		t.Fatalf("percentiles %v %v %v", s.P50, s.P90, s.P99)
	}
	after := p.Counters(webKey)
	if after.Served-before.Served != 40 || after.Failed != 0 {
		t.Fatalf("counters before %+v after %+v: want 40 served, 0 failed (a 500 of the service is not a proxy failure)", before, after)
	}
	if n := counterValue(t, p.reg, "runway_proxy_requests_total", "canary/1"); n != 10 {
		t.Errorf("requests_total for canary %v, want 10", n)
	}
	if n := counterValue(t, p.reg, "runway_proxy_request_duration_seconds", "stable/1"); n != 30 {
		t.Errorf("duration histogram count for stable %v, want 30", n)
	}
	if n := counterValue(t, p.reg, "runway_proxy_response_bytes_total", "stable/1"); n != float64(30*len("hello from stable/1\n")) {
		t.Errorf("response bytes %v", n)
	}
	if _, err := p.reg.Gather(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logBuf.String()), "\n")
	if len(lines) != 40 {
		t.Fatalf("%d access log lines, want 40", len(lines))
	}
	var e accessEntry
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil || e.Service != "web" || e.Status == 0 || e.RequestID == "" || e.Target == "" {
		t.Fatalf("access log line %q: %v", lines[0], err)
	}
}

func TestWindowStatsRollOver(t *testing.T) {
	g := newGroupStats()
	t0 := time.Unix(1_000_000, 0)
	for i := range 100 {
		g.record(t0, time.Duration(i+1)*time.Millisecond, i >= 95)
	}
	w := g.window(t0, 10*time.Second)
	if w.Requests != 100 || w.Errors != 5 || w.ErrorRate != 0.05 {
		t.Fatalf("%+v", w)
	}
	within := func(got, want time.Duration) bool { return got >= want && float64(got) <= float64(want)*statsGrowth }
	if !within(w.P50, 50*time.Millisecond) || !within(w.P90, 90*time.Millisecond) || !within(w.P99, 99*time.Millisecond) {
		t.Fatalf("percentiles %v %v %v, want 50/90/99ms within a bucket", w.P50, w.P90, w.P99)
	}
	later := t0.Add(11 * time.Second)
	g.record(later, time.Millisecond, false)
	if w := g.window(later, 10*time.Second); w.Requests != 1 {
		t.Fatalf("window after 11s still holds old requests: %+v", w)
	}
	// A slot reused after a full turn of the ring starts from zero.
	wrapped := t0.Add(time.Duration(statsSlots) * time.Second)
	g.record(wrapped, time.Millisecond, false)
	if w := g.window(wrapped, time.Second); w.Requests != 1 {
		t.Fatalf("recycled slot: %+v", w)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
