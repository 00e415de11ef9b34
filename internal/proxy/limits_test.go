package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/httplimit"
)

// connCounter is a backend that counts its open connections.
type connCounter struct {
	*httptest.Server
	open atomic.Int64
}

func newConnCounter(t *testing.T, h http.HandlerFunc) *connCounter {
	t.Helper()
	c := &connCounter{}
	c.Server = httptest.NewUnstartedServer(h)
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			c.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			c.open.Add(-1)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func (c *connCounter) target(name string) Target {
	return Target{Instance: name, Addr: c.Listener.Addr().String()}
}

// slowBody sends the headers of a POST announcing 1000 bytes and 10 of them,
// then nothing, and returns the status the proxy answered and when.
func slowBody(addr string) (int, time.Duration, error) {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: web.production.localhost\r\nContent-Length: 1000\r\n\r\n0123456789")
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, time.Since(start), err
	}
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), nil
}

// TestSlowBodiesCutAtDeadline: 300 clients that never finish their request
// bodies are answered 408 once --body-timeout passes, not before; the
// connections they pinned to the instance are released, they do not count as
// failed requests, and a normal request is served meanwhile.
func TestSlowBodiesCutAtDeadline(t *testing.T) {
	const clients = 300
	const limit = time.Second
	p := startProxy(t, Options{Limits: httplimit.Limits{Header: 5 * time.Second, Body: limit, Idle: time.Minute}})
	b := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target("g/1")}}))

	type result struct {
		code int
		took time.Duration
		err  error
	}
	results := make(chan result, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, took, err := slowBody(p.http)
			results <- result{code, took, err}
		}()
	}
	waitFor(t, "the slow clients to reach the instance", 10*time.Second, func() bool { return b.open.Load() >= clients/2 })
	if resp, body := get(t, p.client(t), "http://web.production.localhost/"); resp.StatusCode != http.StatusOK {
		t.Errorf("a normal request during the slow bodies: %d %q", resp.StatusCode, body)
	}
	wg.Wait()
	close(results)
	cut, early := 0, 0
	for r := range results {
		if r.err != nil {
			t.Errorf("slow client: %v", r.err)
			continue
		}
		if r.code == http.StatusRequestTimeout {
			cut++
		} else if cut == 0 {
			t.Logf("a slow client got %d after %s", r.code, r.took)
		}
		if r.took < limit {
			early++
		}
	}
	if cut != clients || early != 0 {
		t.Errorf("%d of %d slow clients answered 408, %d before the %s limit; want all, none early", cut, clients, early, limit)
	}
	// Pooled idle connections to the instance may stay; none that carried
	// a cut request may (their request is half sent).
	waitFor(t, "the instance's connections of the cut requests to close", 10*time.Second, func() bool { return b.open.Load() <= 2 })
	if c := p.Counters(agentapi.RouteKey{Environment: "production", Service: "web"}); c.Failed != 0 {
		t.Errorf("slow clients counted as %d failed requests; they are the clients' fault", c.Failed)
	}
}

// TestResponseHeaderTimeout: an instance that does not send its response
// headers in time gets a 504, on the pooled fast path (GET) and on the
// general one (a POST with a body), and the proxy does not send it twice.
func TestResponseHeaderTimeout(t *testing.T) {
	var hits atomic.Int64
	b := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body) // then a closed connection cancels the context
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	})
	p := startProxy(t, Options{ResponseHeaderTimeout: 300 * time.Millisecond})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target("g/1")}}))
	c := p.client(t)
	if resp, body := get(t, c, "http://web.production.localhost/"); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("GET to a silent instance: %d %q, want 504", resp.StatusCode, body)
	}
	resp, err := c.Post("http://web.production.localhost/", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("POST to a silent instance: %d, want 504", resp.StatusCode)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("the instance received %d requests, want 2 (a timed-out request is not sent again)", n)
	}
}

// TestMaxConnsPerTarget: with a cap of 5, a sixth concurrent request to a
// busy instance is answered 503 with Retry-After instead of opening another
// connection to it.
func TestMaxConnsPerTarget(t *testing.T) {
	release := make(chan struct{})
	var inside atomic.Int64
	b := newConnCounter(t, func(w http.ResponseWriter, r *http.Request) {
		inside.Add(1)
		defer inside.Add(-1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprintln(w, "ok")
	})
	p := startProxy(t, Options{MaxConnsPerTarget: 5})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target("g/1")}}))
	c := p.client(t)
	codes := make(chan int, 5)
	for range 5 {
		go func() {
			resp, err := c.Get("http://web.production.localhost/")
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	waitFor(t, "5 requests inside the instance", 10*time.Second, func() bool { return inside.Load() == 5 })
	for range 10 {
		resp, body := get(t, c, "http://web.production.localhost/")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "max-conns-per-target") {
			t.Fatalf("request over the cap: %d %q, want 503 naming the flag", resp.StatusCode, body)
		}
	}
	if n := b.open.Load(); n != 5 {
		t.Errorf("%d connections to the instance, want 5", n)
	}
	close(release)
	for range 5 {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("request under the cap answered %d", code)
		}
	}
}

// TestLimitsSpareWebSockets: a WebSocket outlives the body and response
// header limits many times over.
func TestLimitsSpareWebSockets(t *testing.T) {
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			c.Write(r.Context(), typ, msg)
		}
	})
	p := startProxy(t, Options{Limits: httplimit.Limits{Header: 100 * time.Millisecond, Body: 100 * time.Millisecond, Idle: 100 * time.Millisecond},
		ResponseHeaderTimeout: 100 * time.Millisecond})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://web.production.localhost/ws", &websocket.DialOptions{HTTPClient: p.client(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	for i := range 8 {
		<-time.After(100 * time.Millisecond) // idle between messages, past every limit
		if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if _, got, err := ws.Read(ctx); err != nil || string(got) != "ping" {
			t.Fatalf("read %d: %q %v", i, got, err)
		}
	}
}
