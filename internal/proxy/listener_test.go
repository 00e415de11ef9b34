package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Listeners passed in Options (socket activation) are served instead of
// binding the addresses, which are then ignored.
func TestStartServesPassedListeners(t *testing.T) {
	t.Parallel()
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	be := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("from a")) })
	// Addresses that cannot be bound: only the passed sockets may be used.
	p := startProxy(t, Options{HTTPAddr: "192.0.2.1:1", HTTPSAddr: "192.0.2.1:2", HTTPListener: lns[0], HTTPSListener: lns[1]})
	if p.http != lns[0].Addr().String() || p.HTTPSAddr().String() != lns[1].Addr().String() {
		t.Fatalf("proxy serves %s and %s, want the passed %s and %s", p.http, p.HTTPSAddr(), lns[0].Addr(), lns[1].Addr())
	}
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 100}}, map[string][]Target{"g": {be.target()}}))
	for _, url := range []string{webURL + "/", "https://web.production.localhost/"} {
		resp, body := get(t, p.client(t), url)
		if resp.StatusCode != http.StatusOK || body != "from a" {
			t.Errorf("GET %s: %d %q, want 200 \"from a\"", url, resp.StatusCode, body)
		}
	}
}

func TestStartRefusesHTTPSListenerWithoutCA(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := New(Options{HTTPAddr: Off, HTTPSListener: ln})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err == nil {
		p.Close()
		t.Fatal("Start with an HTTPS listener and no CA succeeded")
	}
}

// A connection the proxy accepted just before it began to stop, whose
// request arrives after, is answered: http.Server.Shutdown alone drops such
// a request without an answer (EOF), which a graceful agent restart must
// not do.
func TestShutdownAnswersAcceptedConnection(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("from a")) })
	p := startProxy(t, Options{HTTPSAddr: Off})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 100}}, map[string][]Target{"g": {be.target()}}))
	conn, err := net.Dial("tcp", p.http)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, "the connection accepted", 10*time.Second, func() bool {
		p.stopper.mu.Lock()
		defer p.stopper.mu.Unlock()
		return len(p.stopper.fresh) == 1
	})
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stopped <- p.Shutdown(ctx)
	}()
	// The request goes out once the proxy no longer accepts.
	waitFor(t, "the listener closed", 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", p.http, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: web.production.localhost\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("request on a connection accepted before the stop: %v, want an answer", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "from a" {
		t.Errorf("answer %d %q, want 200 \"from a\"", resp.StatusCode, body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
