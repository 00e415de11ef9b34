package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// serveRaw accepts loopback connections until the test ends and runs
// handle on each (n: its number from 1), closing it afterwards; it returns
// the address and the count of connections.
func serveRaw(t *testing.T, handle func(c net.Conn, n int64)) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns := new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n := conns.Add(1)
			go func() {
				defer c.Close()
				handle(c, n)
			}()
		}
	}()
	return ln.Addr().String(), conns
}

// A target that silently closes keep-alive connections after each response
// (as servers with short idle timeouts do): the next request on the pooled
// connection fails before any answer and is sent again on a new one.
func TestFastPathResendsOnStaleConnection(t *testing.T) {
	t.Parallel()
	addr, conns := serveRaw(t, func(c net.Conn, _ int64) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Path: %s\r\n\r\nok", req.URL.Path)
	})
	p := startProxy(t, Options{})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {{Instance: "i", Addr: addr}}}))
	c := p.client(t)
	for i := range 10 {
		resp, body := get(t, c, fmt.Sprintf("%s/%d", webURL, i))
		if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("X-Path") != fmt.Sprintf("/%d", i) {
			t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, body, resp.Header)
		}
	}
	if n := conns.Load(); n < 10 {
		t.Fatalf("%d connections for 10 requests to a server that closes each", n)
	}
}

// A client that goes away while the target is still answering cancels the
// request upstream, and the half-read connection is not pooled.
func TestFastPathClientGoneCancelsUpstream(t *testing.T) {
	t.Parallel()
	cancelled, entered := make(chan struct{}), make(chan struct{})
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			close(entered)
			<-r.Context().Done()
			close(cancelled)
			return
		}
		io.WriteString(w, "fine")
	})
	p := startProxy(t, Options{})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	c := p.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", webURL+"/hang", nil)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Do(req)
		errc <- err
	}()
	<-entered
	cancel()
	<-errc
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the target's request was not cancelled after the client left")
	}
	waitFor(t, "in-flight to reach 0", 5*time.Second, func() bool { return findTarget(p.Targets(), "g/1").InFlight == 0 })
	if resp, body := get(t, c, webURL+"/"); resp.StatusCode != 200 || body != "fine" {
		t.Fatalf("next request: %d %q", resp.StatusCode, body)
	}
	resp, err := c.Head(webURL + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()
}

// A client that stops reading an endless stream frees the target at once.
func TestFastPathEndlessStreamClientLeaves(t *testing.T) {
	t.Parallel()
	stopped := make(chan struct{})
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		defer close(stopped)
		for {
			if _, err := io.WriteString(w, "tick\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	p := startProxy(t, Options{})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	resp, err := p.client(t).Get(webURL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "tick\n" {
		t.Fatalf("first event %q %v", line, err)
	}
	resp.Body.Close()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the target kept streaming after the client left")
	}
	waitFor(t, "in-flight to reach 0", 5*time.Second, func() bool { return findTarget(p.Targets(), "g/1").InFlight == 0 })
}
