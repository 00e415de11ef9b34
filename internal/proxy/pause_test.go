package proxy

import (
	"net/http"
	"testing"
	"time"
)

func TestPauseHoldsRequestsUntilResume(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	b := newBackend(t, "g/1", nil)
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	c := p.client(t)
	p.Pause(webKey, time.Minute)
	if !p.Paused(webKey) {
		t.Fatal("Paused = false after Pause")
	}
	results := make(chan int, 3)
	for range 3 {
		go func() {
			resp, err := c.Get(webURL + "/")
			if err != nil {
				results <- 0
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	svc := p.serviceFor(webKey)
	waitFor(t, "3 held requests", 10*time.Second, func() bool { return svc.held.Load() == 3 })
	if n := b.hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the backend while paused", n)
	}
	p.Resume(webKey)
	for range 3 {
		if code := <-results; code != http.StatusOK {
			t.Fatalf("held request answered %d, want 200", code)
		}
	}
	if p.Paused(webKey) || b.hits.Load() != 3 {
		t.Fatalf("after resume: paused %v, backend hits %d", p.Paused(webKey), b.hits.Load())
	}
}

func TestPauseReleasesAfterMaxHold(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	b := newBackend(t, "g/1", nil)
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	const hold = 300 * time.Millisecond
	start := time.Now()
	p.Pause(webKey, hold)
	resp, _ := get(t, p.client(t), webURL+"/")
	if resp.StatusCode != http.StatusOK || time.Since(start) < hold {
		t.Fatalf("got %d after %s, want 200 after the %s hold", resp.StatusCode, time.Since(start), hold)
	}
	if p.Paused(webKey) {
		t.Fatal("still paused after the hold expired")
	}
}
