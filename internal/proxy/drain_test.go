package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Requests of 5 seconds, a streamed response and an open WebSocket started
// on the old group before a switch all complete; Drain returns only after
// they did, and only then is the old group stopped.
func TestDrainWaitsForLongRequestsStreamsAndWebSockets(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{DrainTimeout: time.Minute})
	started := make(chan struct{}, 100)
	streamGo := make(chan struct{})
	oldHandler := func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			started <- struct{}{}
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
				return
			}
			fmt.Fprintln(w, "slow done")
		case "/stream":
			fmt.Fprintln(w, "part 1")
			w.(http.Flusher).Flush()
			started <- struct{}{}
			<-streamGo
			fmt.Fprintln(w, "part 2")
		case "/ws":
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			started <- struct{}{}
			for {
				typ, msg, err := c.Read(r.Context())
				if err != nil {
					return
				}
				c.Write(r.Context(), typ, msg)
			}
		}
	}
	old := []*backend{newBackend(t, "old/1", oldHandler), newBackend(t, "old/2", oldHandler)}
	nw := newBackend(t, "new/1", nil)
	groups := map[string][]Target{"old": {old[0].target(), old[1].target()}, "new": {nw.target()}}
	mustUpdate(t, p, oneService([]Backend{{Group: "old", Weight: 1}}, groups))
	c := p.client(t)

	const slow = 10
	var wg sync.WaitGroup
	results := make(chan string, slow+1)
	for range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(webURL + "/slow")
			if err != nil {
				results <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}()
	}
	streamResp, err := c.Get(webURL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(context.Background(), "ws://web.production.localhost/ws", &websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatal(err)
	}
	for range slow + 2 {
		<-started
	}

	// Switch: new requests go to the new group at once.
	mustUpdate(t, p, oneService([]Backend{{Group: "new", Weight: 1}}, groups))
	if resp, _ := get(t, c, webURL+"/"); resp.Header.Get("X-Backend") != "new/1" {
		t.Fatalf("request after the switch reached %s", resp.Header.Get("X-Backend"))
	}

	drained := make(chan error, 1)
	go func() { drained <- p.Drain(context.Background(), "old", nil, 0) }()

	// The WebSocket still works on its old target, and holds the drain.
	if err := ws.Write(context.Background(), websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(context.Background()); err != nil || string(msg) != "ping" {
		t.Fatalf("websocket after switch: %q %v", msg, err)
	}
	wg.Wait() // the 5-second requests
	for range slow {
		if r := <-results; r != "200 slow done" {
			t.Errorf("slow request started before the switch: %s", r)
		}
	}
	close(streamGo)
	b, err := io.ReadAll(streamResp.Body)
	streamResp.Body.Close()
	if err != nil || string(b) != "part 1\npart 2\n" {
		t.Fatalf("stream: %q %v", b, err)
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while a WebSocket was open on the old group", err)
	default:
	}
	ws.Close(websocket.StatusNormalClosure, "")
	if err := <-drained; err != nil {
		t.Fatalf("Drain: %v", err)
	}
	for _, ts := range p.Targets() {
		if ts.Group == "old" {
			t.Errorf("old target still tracked after drain: %+v", ts)
		}
	}
	// Only now is the old group stopped.
	old[0].Close()
	old[1].Close()
}

func TestDrainTimeout(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{DrainTimeout: 200 * time.Millisecond})
	release := make(chan struct{})
	entered := make(chan struct{})
	b := newBackend(t, "g1/1", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	other := newBackend(t, "g2/1", nil)
	groups := map[string][]Target{"g1": {b.target()}, "g2": {other.target()}}
	mustUpdate(t, p, oneService([]Backend{{Group: "g1", Weight: 1}}, groups))
	c := p.client(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := c.Get(webURL + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	mustUpdate(t, p, oneService([]Backend{{Group: "g2", Weight: 1}}, groups))
	err := p.Drain(context.Background(), "g1", []string{"g1/1"}, 0)
	if !errors.Is(err, ErrDrainTimeout) || !strings.Contains(err.Error(), "1 requests still in flight") {
		t.Fatalf("Drain = %v, want ErrDrainTimeout with 1 in flight", err)
	}
	close(release)
	<-done
	if err := p.Drain(context.Background(), "g1", nil, 0); err != nil {
		t.Fatalf("second Drain: %v", err)
	}
	if err := p.Drain(context.Background(), "never-existed", nil, 0); err != nil {
		t.Fatalf("Drain of an unknown group: %v", err)
	}
}

func TestDrainWaitsForRemovalFromTable(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{DrainTimeout: time.Minute})
	b := newBackend(t, "g1/1", nil)
	b2 := newBackend(t, "g1/2", nil)
	cfg := oneService([]Backend{{Group: "g1", Weight: 1}}, map[string][]Target{"g1": {b.target(), b2.target()}})
	mustUpdate(t, p, cfg)
	drained := make(chan error, 1)
	go func() { drained <- p.Drain(context.Background(), "g1", []string{"g1/1"}, 0) }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v while the target is still routed", err)
	case <-time.After(50 * time.Millisecond):
	}
	cfg.Groups["g1"] = []Target{b2.target()}
	mustUpdate(t, p, cfg)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Drain(ctx, "g1", nil, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain with a cancelled context while routed: %v", err)
	}
}
