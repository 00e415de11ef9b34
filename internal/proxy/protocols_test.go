package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

func TestForwardedHeadersRequestIDAndHopByHop(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	seen := make(chan http.Header, 4)
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		seen <- h
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		fmt.Fprintln(w, "ok")
	})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	c := p.client(t)

	req, _ := http.NewRequest("GET", webURL+"/x", nil) // HTTP/1.1: HTTP/2 has no Connection header
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "drop me")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	for k, want := range map[string]string{
		"Host":              "web.production.localhost",
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Proto": "http",
		"X-Forwarded-Host":  "web.production.localhost",
		"X-Hop":             "",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("backend saw %s %q, want %q", k, got, want)
		}
	}
	if id := h.Get("X-Request-Id"); len(id) != 32 {
		t.Errorf("generated X-Request-Id %q, want 32 hex digits", id)
	}
	if resp.Header.Get("X-Internal") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response headers reached the client: %v", resp.Header)
	}

	req, _ = http.NewRequest("GET", "https://web.production.localhost/", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := <-seen; h.Get("X-Request-Id") != "abc-123" || h.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("backend saw X-Request-Id %q proto %q, want the client's id over https", h.Get("X-Request-Id"), h.Get("X-Forwarded-Proto"))
	}
}

func TestStreamingFlushAndTrailers(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	next := make(chan struct{})
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		fmt.Fprintln(w, "first")
		w.(http.Flusher).Flush()
		<-next // the client must see "first" before this is released
		fmt.Fprintln(w, "second")
		w.Header().Set("X-Checksum", "42")
	})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	for _, url := range []string{webURL + "/", "https://web.production.localhost/"} {
		resp, err := p.client(t).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "first\n" {
			t.Fatalf("%s: first chunk %q %v", url, line, err)
		}
		next <- struct{}{}
		rest, _ := io.ReadAll(br)
		resp.Body.Close()
		if string(rest) != "second\n" || resp.Trailer.Get("X-Checksum") != "42" {
			t.Fatalf("%s (%s): rest %q trailer %v", url, resp.Proto, rest, resp.Trailer)
		}
	}
}

func TestWebSocketThroughProxy(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
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
			c.Write(r.Context(), typ, append([]byte("echo: "), msg...))
		}
	})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	ctx := context.Background()
	ws, resp, err := websocket.Dial(ctx, "ws://web.production.localhost/ws", &websocket.DialOptions{HTTPClient: p.client(t)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for i := range 5 {
		msg := strings.Repeat("x", i*1000)
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := ws.Read(ctx); err != nil || string(got) != "echo: "+msg {
			t.Fatalf("read %d: %v (%d bytes)", i, err, len(got))
		}
	}
	if n := findTarget(p.Targets(), "g/1").InFlight; n != 1 {
		t.Errorf("open WebSocket counts %d in flight, want 1", n)
	}
	if g := counterValue(t, p.reg, "runway_proxy_in_flight_requests", "g/1"); g != 1 {
		t.Errorf("in-flight gauge %v with an open WebSocket, want 1", g)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the WebSocket to leave the in-flight count", 5e9, func() bool { return findTarget(p.Targets(), "g/1").InFlight == 0 })
}

func TestHTTP2OverTLSWithLocalCA(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.Header.Get("X-Forwarded-Proto"))
	})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	resp, body := get(t, p.client(t), "https://web.production.localhost/")
	if resp.ProtoMajor != 2 || resp.TLS == nil {
		t.Fatalf("client spoke %s, want HTTP/2 over TLS", resp.Proto)
	}
	if body != "HTTP/1.1 https" {
		t.Fatalf("backend saw %q, want HTTP/1.1 to the target with X-Forwarded-Proto https", body)
	}
	if cn := resp.TLS.PeerCertificates[0].DNSNames; len(cn) != 1 || cn[0] != "web.production.localhost" {
		t.Fatalf("certificate names %v", cn)
	}
}
