package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestWebSocketOverTLS: a WebSocket over HTTPS (ALPN http/1.1, so through
// the framing guard, which passes the upgraded stream unparsed) echoes.
func TestWebSocketOverTLS(t *testing.T) {
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if err := c.Write(context.Background(), typ, msg); err != nil {
				return
			}
		}
	})
	p := startProxy(t, Options{})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	client := p.client(t)
	tr := client.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	client.Transport = tr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://web.production.localhost/ws", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	// Messages that look like HTTP requests and framing errors are data.
	for _, m := range []string{"hello", "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", "\x00\r\n\r\n"} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil || string(got) != m {
			t.Fatalf("echo of %q: %q, %v", m, got, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// TestRefusedUpgradeClosesTheConnection: the guard passes the bytes after
// an upgrade request unparsed, so when the instance does not switch
// protocols the proxy closes the connection: what followed (here a request
// hidden after it) never reaches the instance, on the plain and the TLS
// listener.
func TestRefusedUpgradeClosesTheConnection(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Write([]byte("no upgrade here"))
	})
	p := startProxy(t, Options{})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	raw := "GET /a HTTP/1.1\r\nHost: web.production.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" +
		"GET /smuggled HTTP/1.1\r\nHost: web.production.localhost\r\n\r\n"
	dial := map[string]func() (net.Conn, error){
		"http": func() (net.Conn, error) { return net.Dial("tcp", p.http) },
		"https": func() (net.Conn, error) {
			return tls.Dial("tcp", p.https, &tls.Config{InsecureSkipVerify: true, ServerName: "web.production.localhost", NextProtos: []string{"http/1.1"}})
		},
	}
	for name, d := range dial {
		c, err := d()
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusOK || !resp.Close {
			t.Fatalf("%s: want one 200 with Connection: close, got %v %v", name, resp, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		if resp, err := http.ReadResponse(br, nil); err == nil {
			t.Fatalf("%s: a second answer %d on the connection", name, resp.StatusCode)
		}
		c.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 2 || paths[0] != "/a" || paths[1] != "/a" {
		t.Fatalf("the instance saw %v, want /a once per listener", paths)
	}
}
