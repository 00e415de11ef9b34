package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A drain that times out with an idle WebSocket, a WebSocket whose instance
// floods messages, and a streamed response still open on the old group ends
// all three properly: the WebSockets get a close frame 1001 "going away"
// (after whole messages only, never a broken frame), the stream ends cleanly
// after what was sent. The drain's own timeout applies, not the proxy's.
func TestDrainTimeoutClosesWebSocketsAndStreams(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{DrainTimeout: time.Hour})
	started := make(chan string, 10)
	testDone := make(chan struct{})
	old := newBackend(t, "old/1", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			fmt.Fprintln(w, "part 1")
			w.(http.Flusher).Flush()
			started <- "stream"
			// Not r.Context(): the server cancels it when it sees the
			// request body's connection idle or closed, which may come
			// before the drain; the stream must stay open until then.
			<-testDone
		case "/ws", "/flood":
			c, err := websocket.Accept(w, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			started <- r.URL.Path
			if r.URL.Path == "/flood" {
				msg := []byte(strings.Repeat("x", 70_000)) // 64-bit length header, many reads per frame
				for {
					if err := c.Write(r.Context(), websocket.MessageBinary, msg); err != nil {
						return
					}
				}
			}
			for {
				if _, _, err := c.Read(r.Context()); err != nil {
					return
				}
			}
		}
	})
	t.Cleanup(func() { close(testDone) }) // before the backend's Close, which waits for its handlers
	nw := newBackend(t, "new/1", nil)
	groups := map[string][]Target{"old": {old.target()}, "new": {nw.target()}}
	mustUpdate(t, p, oneService([]Backend{{Group: "old", Weight: 1}}, groups))
	c := p.client(t)

	streamResp, err := c.Get(webURL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer streamResp.Body.Close()
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, "ws://web.production.localhost/ws", &websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	flood, _, err := websocket.Dial(ctx, "ws://web.production.localhost/flood", &websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.CloseNow()
	flood.SetReadLimit(1 << 20)
	for range 3 {
		<-started
	}
	wsErr := make(chan error, 1)
	go func() {
		_, _, err := ws.Read(ctx)
		wsErr <- err
	}()
	floodErr := make(chan error, 1)
	floodMsgs := make(chan int, 1)
	go func() {
		n := 0
		for {
			_, m, err := flood.Read(ctx)
			if err != nil {
				floodMsgs <- n
				floodErr <- err
				return
			}
			if len(m) != 70_000 {
				floodErr <- fmt.Errorf("message %d has %d bytes", n, len(m))
				floodMsgs <- n
				return
			}
			n++
		}
	}()

	mustUpdate(t, p, oneService([]Backend{{Group: "new", Weight: 1}}, groups))
	err = p.Drain(ctx, "old", nil, 300*time.Millisecond)
	if !errors.Is(err, ErrDrainTimeout) || !strings.Contains(err.Error(), "3 WebSockets and streams ended") {
		t.Fatalf("Drain = %v, want ErrDrainTimeout with 3 ended", err)
	}
	if err := <-wsErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("idle WebSocket ended with %v, want a close frame 1001 going away", err)
	}
	n := <-floodMsgs
	if err := <-floodErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("flooding WebSocket ended with %v after %d whole messages, want a close frame 1001 going away", err, n)
	}
	if n == 0 {
		t.Errorf("the flooding WebSocket got no message before its close")
	}
	for _, resp := range []*http.Response{streamResp} {
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "part 1\n" {
			t.Errorf("stream %s ended with %q, %v; want \"part 1\\n\" and a clean end", resp.Request.URL.Path, b, err)
		}
	}
	waitFor(t, "the old target to be forgotten", 10*time.Second, func() bool {
		for _, ts := range p.Targets() {
			if ts.Group == "old" {
				return false
			}
		}
		return true
	})
}

// frame builds a server-to-client WebSocket frame with an n-byte payload.
func frame(opcode byte, n int, masked bool) []byte {
	b := []byte{0x80 | opcode}
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if masked {
		b = append(b, 1, 2, 3, 4)
	}
	return append(b, make([]byte, n)...)
}

// The tunnel knows where frames end whatever the read sizes: with 7-, 16-
// and 64-bit lengths, empty payloads and masks, fed in pieces of every size
// from 1 byte, it stands at a boundary exactly at the end of each frame.
func TestTunnelFollowsFrames(t *testing.T) {
	var stream []byte
	var ends []int
	for _, f := range [][]byte{frame(1, 5, false), frame(2, 300, false), frame(9, 0, false), frame(2, 70_000, false), frame(1, 3, true), frame(0, 125, false), frame(2, 126, false)} {
		stream = append(stream, f...)
		ends = append(ends, len(stream))
	}
	isEnd := map[int]bool{0: true}
	for _, e := range ends {
		isEnd[e] = true
	}
	for _, piece := range []int{1, 2, 3, 7, 100, 4096, len(stream)} {
		b := &tunnel{ws: true}
		for off := 0; off < len(stream); {
			n := min(piece, len(stream)-off, b.nextLimit(piece))
			b.advance(stream[off : off+n])
			off += n
			if b.atBoundary() != isEnd[off] {
				t.Fatalf("pieces of %d: at offset %d boundary = %v, want %v", piece, off, b.atBoundary(), isEnd[off])
			}
		}
	}
}
