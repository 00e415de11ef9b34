package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// tcpPair is a connected loopback pair: the dialled end and the accepted one.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// A held write goes out with the next read, which returns the answer.
func TestDeferConnWriteThenRead(t *testing.T) {
	t.Parallel()
	c, s := tcpPair(t)
	d := newDeferConn(c)
	if d.rc == nil {
		t.Fatal("a TCP connection without a RawConn")
	}
	d.hold = true
	for _, part := range []string{"pi", "ng"} {
		if _, err := d.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if string(d.pending) != "ping" {
		t.Fatalf("held %q", d.pending)
	}
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
			errc <- errors.New("server read " + string(buf))
			return
		}
		_, err := s.Write([]byte("pong"))
		errc <- err
	}()
	d.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, err := d.Read(buf)
	if err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if len(d.pending) != 0 {
		t.Fatalf("still held %q", d.pending)
	}
	// Without hold, writes go out at once.
	d.hold = false
	if _, err := d.Write([]byte("now")); err != nil || len(d.pending) != 0 {
		t.Fatalf("write without hold: %v, held %q", err, d.pending)
	}
}

// A held write larger than the socket takes at once is finished by Write.
func TestDeferConnLargeHeldWrite(t *testing.T) {
	t.Parallel()
	c, s := tcpPair(t)
	c.SetWriteBuffer(8192)
	d := newDeferConn(c)
	d.hold = true
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	d.Write(big)
	errc := make(chan error, 1)
	go func() {
		got := make([]byte, len(big))
		if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, big) {
			errc <- errors.New("server got another request")
			return
		}
		_, err := s.Write([]byte("done"))
		errc <- err
	}()
	d.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(io.LimitReader(d, 4))
	if err != nil || string(got) != "done" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// A read whose deadline passed before it began keeps what is held, for
// sendHeld.
func TestDeferConnDeadlineKeepsHeld(t *testing.T) {
	t.Parallel()
	c, s := tcpPair(t)
	d := newDeferConn(c)
	d.hold = true
	d.Write([]byte("answer"))
	d.hold = false
	d.SetReadDeadline(aLongTimeAgo)
	var ne net.Error
	if _, err := d.Read(make([]byte, 8)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read after the deadline: %v", err)
	}
	if err := d.sendHeld(); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "answer" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
}

// A peer that closed the connection while it was idle (a target's idle
// timeout) is noticed by the read after the held write: the reset wakes
// the wait, as a first read would have found the end of the stream.
func TestDeferConnPeerClosedIdle(t *testing.T) {
	t.Parallel()
	c, s := tcpPair(t)
	s.Close()
	// The close has reached c once a read sees the end of the stream.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v", err)
	}
	d := newDeferConn(c)
	d.hold = true
	d.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	d.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := d.Read(make([]byte, 8))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read after writing to a closed peer: %v (want the end of the stream or a reset)", err)
	}
	t.Logf("read after writing to a closed peer: %v", err)
	if !staleConnError(err) {
		t.Fatalf("%v is not taken for a stale connection", err)
	}
}

// A target that half-closes an idle keep-alive connection and lingers
// (reads on, answers nothing, closes later): a pooled connection idle for
// heldIdle or more is written and read plainly, so its end is found at once
// and the request sent again on a new connection.
func TestH1PoolHalfClosedIdleConnection(t *testing.T) {
	t.Parallel()
	addr, conns := serveRaw(t, func(c net.Conn, n int64) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if n == 1 {
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, br) // lingers until the client closes
		}
	})
	pool := newH1Pool((&net.Dialer{}).DialContext, 0)
	t.Cleanup(pool.closeIdle)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 2 {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		resp, err := pool.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "ok" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
		// The pooled connection has been idle for long.
		pool.mu.Lock()
		for _, hc := range pool.idle[addr] {
			hc.idleAt = hc.idleAt.Add(-2 * heldIdle)
		}
		pool.mu.Unlock()
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (the half-closed one, then a new one)", n)
	}
}
