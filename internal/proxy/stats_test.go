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

// TestStatsSecond: a second's traffic per group, as a publisher outside
// the proxy reads it (internal/kubeproxy): the counts of that second only,
// latency counts adding up to its requests with the open bucket at its
// floor, nothing for a second without traffic or one the slots recycled.
func TestStatsSecond(t *testing.T) {
	g := newGroupStats()
	t0 := time.Unix(1_900_000_000, 0)
	g.record(t0, 3*time.Millisecond, false)
	g.record(t0.Add(300*time.Millisecond), 3*time.Millisecond, true)
	g.record(t0.Add(900*time.Millisecond), time.Hour, false) // the open bucket
	g.record(t0.Add(time.Second), time.Millisecond, false)
	p := &Proxy{reg: newRegistry(nil)}
	k := webKey
	p.reg.stats[statsKey{k, "web-1"}] = g
	preview := newGroupStats()
	preview.record(t0, time.Millisecond, false)
	pk := k
	pk.Preview = true
	p.reg.stats[statsKey{pk, "web-1"}] = preview

	got := p.StatsSecond(t0.Unix())
	if len(got) != 1 || got[0].Group != "web-1" || got[0].Route != k || got[0].Requests != 3 || got[0].Errors != 1 {
		t.Fatalf("second 0: %+v; want web-1's 3 requests, 1 error (the preview route's left out)", got)
	}
	var n uint64
	for i, l := range got[0].Latency {
		n += l.N
		if i > 0 && l.Bound <= got[0].Latency[i-1].Bound {
			t.Errorf("latency bounds not ascending: %+v", got[0].Latency)
		}
	}
	last := got[0].Latency[len(got[0].Latency)-1]
	if n != 3 || last.Bound != statsBounds[statsBuckets-2] || last.N != 1 {
		t.Errorf("latency counts %+v: want 3 in all, the hour at the open bucket's floor %s", got[0].Latency, statsBounds[statsBuckets-2])
	}
	if got := p.StatsSecond(t0.Unix() + 1); len(got) != 1 || got[0].Requests != 1 {
		t.Errorf("second 1: %+v", got)
	}
	if got := p.StatsSecond(t0.Unix() + 2); len(got) != 0 {
		t.Errorf("a second without traffic: %+v", got)
	}
	// 300 s later the slot is the same; the second it holds is not.
	if got := p.StatsSecond(t0.Unix() + statsSlots); len(got) != 0 {
		t.Errorf("a second the slots do not hold: %+v", got)
	}
}

// TestStatsSecondAfterLeaving: a group that leaves the table keeps its
// last seconds for StatsSecond a while (a publisher reads a second after
// it ended), and one that comes back goes on with the same statistics.
func TestStatsSecondAfterLeaving(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	a, b := newBackend(t, "a/1", nil), newBackend(t, "b/1", nil)
	onlyA, onlyB := map[string][]Target{"a": {a.target()}}, map[string][]Target{"b": {b.target()}}
	mustUpdate(t, p, oneService([]Backend{{Group: "a", Weight: 1}}, onlyA))
	c := p.client(t)
	start := time.Now().Unix()
	for range 5 {
		get(t, c, webURL+"/")
	}
	waitFor(t, "the last request to be accounted", 5*time.Second, func() bool { return p.Counters(webKey).Served == 5 })
	mustUpdate(t, p, oneService([]Backend{{Group: "b", Weight: 1}}, onlyB))
	count := func() uint64 {
		var n uint64
		for sec := start; sec <= time.Now().Unix(); sec++ {
			for _, gs := range p.StatsSecond(sec) {
				if gs.Group == "a" {
					n += gs.Requests
				}
			}
		}
		return n
	}
	if n := count(); n != 5 {
		t.Errorf("group a after it left the table: %d requests in its seconds, want 5", n)
	}
	mustUpdate(t, p, oneService([]Backend{{Group: "a", Weight: 1}}, onlyA))
	if n := count(); n != 5 {
		t.Errorf("group a back in the table: %d requests in its seconds, want 5", n)
	}
}
