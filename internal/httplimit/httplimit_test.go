package httplimit

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs h behind l on a loopback listener.
func serve(t *testing.T, l Limits, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := l.Server(h)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// echo answers 408 when the body timed out, else the body's length, then
// streams "tick" lines for stream ms when the request asks for it.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if IsBodyTimeout(err) {
		http.Error(w, err.Error(), http.StatusRequestTimeout)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "got %d\n", len(b))
	if r.URL.Query().Get("stream") != "" {
		for range 6 {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			fmt.Fprintln(w, "tick")
		}
	}
}

func TestSlowBodyIsCut(t *testing.T) {
	addr := serve(t, Limits{Header: time.Second, Body: 300 * time.Millisecond, Idle: time.Minute}, http.HandlerFunc(echo))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Headers promise 100 bytes; 3 arrive, then nothing.
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "did not arrive within 300ms") {
		t.Errorf("slow body answered %d %q, want 408 naming the limit", resp.StatusCode, b)
	}
}

// TestStreamAfterBodyIsNotCut: once the body has arrived, a response may
// stream for longer than the body limit.
func TestStreamAfterBodyIsNotCut(t *testing.T) {
	addr := serve(t, Limits{Header: time.Second, Body: 200 * time.Millisecond, Idle: time.Minute}, http.HandlerFunc(echo))
	resp, err := http.Post("http://"+addr+"/?stream=1", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "tick"); got != 6 || !strings.HasPrefix(string(b), "got 5\n") {
		t.Errorf("streamed response %q, want got 5 and 6 ticks", b)
	}
	// A request without a body is not bound at all.
	resp, err = http.Get("http://" + addr + "/?stream=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Count(string(b), "tick") != 6 {
		t.Errorf("GET stream %q", b)
	}
}

// TestIdleConnectionClosed: a keep-alive connection left idle is closed
// after the idle limit.
func TestIdleConnectionClosed(t *testing.T) {
	addr := serve(t, Limits{Header: time.Second, Body: time.Second, Idle: 200 * time.Millisecond}, http.HandlerFunc(echo))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: read %v, want EOF (closed by the server)", err)
	}
}

func TestValidate(t *testing.T) {
	if err := (Limits{Body: -time.Second}).Validate("proxy-"); err == nil || !strings.Contains(err.Error(), "--proxy-body-timeout") {
		t.Errorf("negative body limit: %v", err)
	}
	if err := Default.Validate(""); err != nil {
		t.Error(err)
	}
}
