package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// byteConn is a net.Conn whose reads are data, at most chunk bytes at a
// time (to cut lines and chunks anywhere), and whose writes are dropped.
type byteConn struct {
	data  []byte
	chunk int
}

func (c *byteConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if c.chunk > 0 && n > c.chunk {
		n = c.chunk
	}
	n = copy(p[:n], c.data)
	c.data = c.data[n:]
	return n, nil
}

func (c *byteConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *byteConn) Close() error                     { return nil }
func (c *byteConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *byteConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *byteConn) SetDeadline(time.Time) error      { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }

// guarded reads data through a guardConn (the underlying connection giving
// chunk bytes per read) and returns what net/http would read, the guard, and
// the error that ended it.
func guarded(data []byte, chunk int) ([]byte, *guardConn, error) {
	g := newGuardConn(&byteConn{data: data, chunk: chunk})
	var out bytes.Buffer
	buf := make([]byte, 1+chunk*7)
	for {
		n, err := g.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.Bytes(), g, err
		}
	}
}

func TestGuardPassesValidStreams(t *testing.T) {
	for _, raw := range []string{
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?q=%20 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.0\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5;a=b\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a HTTP/1.1\nHost: x\n\n",
		"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello\x00\r\n garbage",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		for _, chunk := range []int{0, 1, 3} {
			out, g, err := guarded([]byte(raw), chunk)
			if err != io.EOF || string(out) != raw || g.refusal != "" {
				t.Errorf("chunk %d: %q\nread %q, %v (refusal %q)", chunk, raw, out, err, g.refusal)
			}
		}
	}
}

func TestGuardRefuses(t *testing.T) {
	for _, c := range []struct{ raw, why string }{
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "both Content-Length and Transfer-Encoding"},
		{"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", "Content-Length given twice"},
		{"POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding in HTTP/1.0"},
		{"GET /a HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", "obsolete line folding"},
		{"GET /a HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", maxHeadBytes) + "\r\n\r\n", "header block over 64 KiB"},
		{"GET /" + strings.Repeat("a", maxHeadBytes) + " HTTP/1.1\r\nHost: x\r\n\r\n", "header block over 64 KiB"},
		{"GET /a HTTP/1.1\r\n\r\n", "no Host in HTTP/1.1"},
		{"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", "invalid request target"},
		{"GET /a HTTP/2.0\r\nHost: x\r\n\r\n", "unsupported protocol version"},
		{"CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", "CONNECT is not served"},
		{"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "Host given twice"},
	} {
		for _, chunk := range []int{0, 1, 7} {
			out, g, err := guarded([]byte(c.raw), chunk)
			if g.refusal != c.why || err != io.EOF || !bytes.HasSuffix(out, []byte(sentinel)) {
				t.Errorf("chunk %d: %.80q: refusal %q (want %q), %v, read %.80q", chunk, c.raw, g.refusal, c.why, err, out)
			}
			// net/http refuses what it read.
			if _, err := readAll(out); err == nil {
				t.Errorf("%.80q: net/http took the guard's output", c.raw)
			}
		}
	}
	for _, c := range []struct{ raw, why string }{
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", "no CRLF after chunk data"},
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", "chunk-size line without CRLF"},
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", "chunk size too large"},
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "invalid chunk size"},
		{"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n", "obsolete line folding in trailers"},
	} {
		_, g, err := guarded([]byte(c.raw), 2)
		if g.refusal != c.why || !isFramingError(err) {
			t.Errorf("%q: refusal %q (want %q), %v", c.raw, g.refusal, c.why, err)
		}
	}
}

// readAll parses data as a stream of requests with net/http, bodies
// included, and returns how many it read and the error that ended it (nil:
// data ended at a request's end, or at an upgrade request).
func readAll(data []byte) (int, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	for n := 0; ; n++ {
		req, err := http.ReadRequest(br)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return n, err
		}
		if asksUpgrade(req) {
			return n + 1, nil
		}
	}
}

// FuzzGuardAgainstNetHTTP: the differential test. Wherever net/http's parser
// refuses a request of the stream, the guard refuses that request or one
// before it; and how the input is cut into reads never changes what the
// guard lets through.
func FuzzGuardAgainstNetHTTP(f *testing.F) {
	for _, c := range framingCases {
		if len(c.raw) < 4096 {
			f.Add([]byte(c.raw+c.body), uint8(0))
		}
	}
	f.Add([]byte("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		out, g, err := guarded(data, 0)
		if err != io.EOF && !isFramingError(err) {
			t.Fatalf("guard read error %v", err)
		}
		out2, g2, _ := guarded(data, int(chunk%16)+1)
		if !bytes.Equal(out, out2) || g.refusal != g2.refusal {
			t.Fatalf("cut into reads of %d bytes, the guard let %q through (refusal %q), else %q (%q)", chunk%16+1, out2, g2.refusal, out, g.refusal)
		}
		n, nerr := readAll(data)
		if nerr == nil || errors.Is(nerr, io.ErrUnexpectedEOF) {
			return // net/http took it all (or it is cut short)
		}
		if g.refusal == "" && n >= g.ended {
			return // the guard waits for the rest of request n+1: data is cut short
		}
		if g.refusal == "" {
			t.Fatalf("net/http refuses request %d (%v) but the guard let it through: %q", n+1, nerr, data)
		}
		if gn, _ := readAll(out); gn > n {
			t.Fatalf("net/http refuses request %d (%v) but the guard let %d through (refusal %q): %q", n+1, nerr, gn, g.refusal, data)
		}
	})
}

// BenchmarkGuard is the framing guard's cost per request: a keep-alive
// stream of browser-like GETs and a chunked POST read through it in 4 KiB
// reads, as net/http's bufio.Reader reads. It allocates nothing per request.
func BenchmarkGuard(b *testing.B) {
	req := "GET /assets/app.js?v=3 HTTP/1.1\r\nHost: web.production.localhost\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0\r\n" +
		"Accept: */*\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n" +
		"Cookie: runway_sticky=g1; session=0123456789abcdef\r\nSec-Fetch-Mode: no-cors\r\n\r\n" +
		"POST /api/items HTTP/1.1\r\nHost: web.production.localhost\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n" +
		"d\r\n{\"name\":\"a\"}\n\r\n0\r\n\r\n"
	const perRound = 64
	stream := []byte(strings.Repeat(req, perRound))
	conn := &byteConn{}
	g := newGuardConn(conn)
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		conn.data = stream
		for {
			_, err := g.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if g.refusal != "" {
			b.Fatal(g.refusal)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perRound*2), "ns/request")
}
