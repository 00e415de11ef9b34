package proxy

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// What a drain does when its timeout passes with WebSockets and streamed
// responses still open on a target: it ends them properly instead of letting
// the instance's stop cut them.
//
//   - A WebSocket gets a close frame 1001 "going away" (RFC 6455 §7.4.1) from
//     the proxy, injected at a frame boundary of the instance-to-client stream
//     (a control frame may come between the fragments of a message, §5.4),
//     then the end of the stream. The client's close reply ends the tunnel;
//     a client that does not answer within goAwayGrace is disconnected.
//   - A streamed response (no Content-Length: chunked HTTP/1.1, HTTP/2)
//     ends as if the instance had finished it (the last chunk, END_STREAM),
//     so the client sees a complete response rather than an error.
//
// Responses with a Content-Length and plain long requests are left alone:
// they cannot end early without being truncated; the instance's graceful
// stop (SIGTERM) lets them finish.

// goAwayGrace: a WebSocket has twice this to finish its current frame and
// get the client's answer to the close frame; Drain waits three times this
// for what it ended to be gone.
const goAwayGrace = 2 * time.Second

// goAwayer is an open WebSocket or stream that can be ended properly.
type goAwayer interface {
	goAway()
}

// track registers g as open on the target until the returned func is called.
func (t *target) track(g goAwayer) (untrack func()) {
	t.openMu.Lock()
	if t.open == nil {
		t.open = map[goAwayer]struct{}{}
	}
	t.open[g] = struct{}{}
	t.openMu.Unlock()
	return func() {
		t.openMu.Lock()
		delete(t.open, g)
		t.openMu.Unlock()
	}
}

// goAway ends the WebSockets and streams open on the target and returns how
// many there were.
func (t *target) goAway() int {
	t.openMu.Lock()
	open := make([]goAwayer, 0, len(t.open))
	for g := range t.open {
		open = append(open, g)
	}
	t.openMu.Unlock()
	for _, g := range open {
		g.goAway()
	}
	return len(open)
}

// wrapBody lets the drain end the response resp of st's request properly.
func wrapBody(st *reqState, req *http.Request, resp *http.Response) {
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols:
		rwc, ok := resp.Body.(io.ReadWriteCloser)
		if !ok {
			return
		}
		b := newTunnel(rwc, strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"), st.rw)
		b.untrack = st.t.track(b)
		resp.Body = b
	case resp.ContentLength < 0 && req.Method != http.MethodHead && resp.Body != nil && resp.Body != http.NoBody:
		b := &stream{rc: resp.Body}
		b.untrack = st.t.track(b)
		resp.Body = b
	}
}

// stream is a streamed response body that the drain can end cleanly.
type stream struct {
	rc      io.ReadCloser
	untrack func()
	mu      sync.Mutex
	away    bool
	once    sync.Once
}

func (s *stream) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if err != nil {
		s.mu.Lock()
		away := s.away
		s.mu.Unlock()
		if away {
			return n, io.EOF // the read was cut by goAway: end the response cleanly
		}
	}
	return n, err
}

func (s *stream) Close() error {
	s.once.Do(s.untrack)
	return s.rc.Close()
}

func (s *stream) goAway() {
	s.mu.Lock()
	s.away = true
	s.mu.Unlock()
	// Unblock a Read waiting for the instance.
	if i, ok := s.rc.(interface{ interrupt() }); ok {
		i.interrupt()
	} else {
		s.rc.Close() // http.Transport's bodies may be closed during a Read
	}
}

// tunnel is the instance side of an upgraded connection, as ReverseProxy
// copies it to the client. For a WebSocket it follows the frames the
// instance sends, so the drain can put a close frame between two of them.
// A pump goroutine reads the instance, so going away never has to cut a
// read short: bytes already on their way are delivered up to the end of
// the frame they belong to.
type tunnel struct {
	rwc     io.ReadWriteCloser
	ws      bool
	rw      *responseWriter // the client side, for a read deadline on its connection
	untrack func()
	once    sync.Once

	chunks  chan []byte   // what the pump read, in order; closed after pumpErr is set
	pumpErr error         // why the pump stopped
	done    chan struct{} // closed by Close: the pump stops
	away    chan struct{} // closed by goAway
	awayMu  sync.Once

	// Only Read touches these (ReverseProxy calls it from one goroutine).
	pending  []byte
	closing  []byte // the close frame still to hand to the client
	finished bool   // the close frame went out: end of the stream
	hdr      [14]byte
	hdrLen   int // header bytes read so far
	hdrNeed  int // header size once known (2 until the second byte)
	// remaining is the number of payload bytes left in the current frame.
	remaining int64
}

func newTunnel(rwc io.ReadWriteCloser, ws bool, rw *responseWriter) *tunnel {
	b := &tunnel{rwc: rwc, ws: ws, rw: rw, chunks: make(chan []byte), done: make(chan struct{}), away: make(chan struct{})}
	go b.pump()
	return b
}

func (b *tunnel) pump() {
	buf := make([]byte, 16<<10)
	for {
		n, err := b.rwc.Read(buf)
		if n > 0 {
			select {
			case b.chunks <- append([]byte(nil), buf[:n]...):
			case <-b.done:
				return
			}
		}
		if err != nil {
			b.pumpErr = err
			close(b.chunks)
			return
		}
	}
}

// closeGoingAway is a server-to-client close frame: FIN + opcode 8, no mask,
// payload status 1001 and the reason "going away".
var closeGoingAway = func() []byte {
	reason := "going away"
	b := []byte{0x88, byte(2 + len(reason))}
	b = binary.BigEndian.AppendUint16(b, 1001)
	return append(b, reason...)
}()

func (b *tunnel) atBoundary() bool { return b.hdrLen == 0 && b.remaining <= 0 }

func (b *tunnel) isAway() bool {
	select {
	case <-b.away:
		return true
	default:
		return false
	}
}

func (b *tunnel) Read(p []byte) (int, error) {
	for {
		if b.finished {
			return 0, io.EOF
		}
		if b.closing != nil {
			n := copy(p, b.closing)
			b.closing = b.closing[n:]
			if len(b.closing) == 0 {
				b.finished = true
			}
			return n, nil
		}
		away := b.isAway()
		if away && (!b.ws || b.atBoundary()) {
			// What the instance sent after the last whole frame is dropped:
			// it is going away.
			b.rwc.Close() // stops the pump
			b.pending = nil
			if !b.ws {
				b.finished = true
				return 0, io.EOF
			}
			b.closing = append([]byte(nil), closeGoingAway...)
			continue
		}
		if len(b.pending) == 0 {
			awayCh := b.away
			if away {
				awayCh = nil // in the middle of a frame: wait for the rest of it
			}
			select {
			case c, ok := <-b.chunks:
				if !ok {
					return 0, b.pumpErr
				}
				b.pending = c
			case <-awayCh:
				continue
			}
		}
		limit := len(p)
		if b.ws {
			limit = b.nextLimit(limit)
		}
		n := copy(p[:limit], b.pending)
		b.pending = b.pending[n:]
		if b.ws {
			b.advance(p[:n])
		}
		return n, nil
	}
}

// nextLimit caps a read so that it never crosses the end of the current
// header or payload: after each read the tunnel knows whether it stands at
// a frame boundary.
func (b *tunnel) nextLimit(limit int) int {
	switch {
	case b.remaining > 0:
		if int64(limit) > b.remaining {
			limit = int(b.remaining)
		}
	default:
		need := b.hdrNeed
		if need == 0 {
			need = 2
		}
		if limit > need-b.hdrLen {
			limit = need - b.hdrLen
		}
	}
	return max(limit, 1)
}

// advance follows the frame headers and payloads in data.
func (b *tunnel) advance(data []byte) {
	for len(data) > 0 {
		if b.remaining > 0 {
			k := min(int64(len(data)), b.remaining)
			b.remaining -= k
			data = data[k:]
			continue
		}
		if b.hdrNeed == 0 {
			b.hdrNeed = 2
		}
		k := copy(b.hdr[b.hdrLen:b.hdrNeed], data)
		b.hdrLen += k
		data = data[k:]
		if b.hdrLen < b.hdrNeed {
			continue
		}
		if b.hdrNeed == 2 {
			need := 2
			switch b.hdr[1] & 0x7f {
			case 126:
				need += 2
			case 127:
				need += 8
			}
			if b.hdr[1]&0x80 != 0 {
				need += 4 // masked (a client's frame; instances should not send them)
			}
			if need > 2 {
				b.hdrNeed = need
				continue
			}
		}
		var size int64
		switch l := b.hdr[1] & 0x7f; l {
		case 126:
			size = int64(binary.BigEndian.Uint16(b.hdr[2:4]))
		case 127:
			size = int64(binary.BigEndian.Uint64(b.hdr[2:10]) & (1<<63 - 1))
		default:
			size = int64(l)
		}
		b.hdrLen, b.hdrNeed, b.remaining = 0, 0, size
	}
}

// Write forwards the client's bytes to the instance, and swallows them once
// the tunnel goes away (the instance side closes; failing the write would
// end the tunnel before the close frame reached the client).
func (b *tunnel) Write(p []byte) (int, error) {
	if b.isAway() {
		return len(p), nil
	}
	n, err := b.rwc.Write(p)
	if err != nil && b.isAway() {
		return len(p), nil
	}
	return n, err
}

func (b *tunnel) Close() error {
	b.once.Do(func() {
		close(b.done)
		b.untrack()
	})
	return b.rwc.Close()
}

// CloseWrite half-closes the instance side when the client finished sending.
func (b *tunnel) CloseWrite() error {
	if cw, ok := b.rwc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("cannot half-close the upgraded connection")
}

func (b *tunnel) goAway() {
	first := false
	b.awayMu.Do(func() {
		close(b.away)
		first = true
	})
	if !first {
		return
	}
	if c := b.rw.hijackedConn(); c != nil {
		// The client answers the close frame and closes; one that does not
		// (or an instance that never finishes its frame) is disconnected
		// after the grace.
		c.SetReadDeadline(time.Now().Add(2 * goAwayGrace))
	}
}

// hijackedConn is the client connection once ReverseProxy hijacked it.
func (w *responseWriter) hijackedConn() net.Conn {
	w.hjMu.Lock()
	defer w.hjMu.Unlock()
	return w.hijacked
}
