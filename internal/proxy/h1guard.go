package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
)

// The HTTP/1 framing guard: every HTTP/1 connection the proxy serves (plain,
// and TLS when ALPN chose http/1.1) is read through a guardConn before
// net/http's parser sees a byte. The guard parses the stream of requests
// strictly — request line, header lines, Content-Length or chunked framing,
// trailers — and refuses what nginx refuses where net/http is lenient: both
// Content-Length and Transfer-Encoding, Content-Length given twice (even
// with the same value), Transfer-Encoding in HTTP/1.0, obsolete line
// folding, a header block over maxHeadBytes, chunk lines that are not
// exactly "HEX[;ext]\r\n". Each rule keeps net/http's own refusals too, so
// whatever net/http refuses the guard refuses (FuzzGuardAgainstNetHTTP).
//
// Decision: a refused head is replaced, at the point it was found bad, by a
// line net/http cannot parse ("\x00"), then end of stream. net/http then
// answers "400 Bad Request" and closes the connection after the answers it
// owes to the requests before it (pipelining keeps its order), and nothing
// of the bad request reaches a handler, so no instance ever sees it. A body
// whose chunked framing breaks reads as a *framingError: the handler answers
// one 400 and closes (upstreamError), and the instance sees a truncated
// body it cannot take for a request. After a request asking for an upgrade
// (Connection: upgrade) the guard passes the bytes through unparsed — they
// may be a WebSocket's — and the handler closes the connection unless the
// answer is 101 (closeUnlessSwitched), so those bytes are never read as
// requests.
//
// Lines may end in a bare LF, as net/http and nginx accept; a CR anywhere
// else is refused.

// maxHeadBytes bounds a request's line and headers: 64 KiB. nginx's default
// allows 8 KiB per line and 32 KiB in all; browsers send a few KiB; net/http
// alone would take 1 MiB.
const maxHeadBytes = 64 << 10

// maxTrailerBytes bounds a chunked body's trailers with the empty line
// that ends them: net/http's server reads no more than its 4 KiB buffer.
const maxTrailerBytes = 4096

// maxChunkLine bounds a chunk-size line with its extensions (net/http's
// limit is 4 KiB).
const maxChunkLine = 4096

// framingError is what a handler reads from a request body whose chunked
// framing is broken.
type framingError struct{ msg string }

func (e *framingError) Error() string { return "malformed request body: " + e.msg }

func isFramingError(err error) bool {
	var fe *framingError
	return errors.As(err, &fe)
}

type guardState uint8

const (
	gRequestLine guardState = iota
	gHeader
	gBody      // Content-Length bytes left in remain
	gChunkSize // a chunk-size line
	gChunkData // remain bytes of chunk data
	gChunkEnd  // the CRLF after chunk data
	gTrailer   // trailer lines after the last chunk
	gRaw       // after an upgrade request: bytes pass unparsed
	gRefused   // the sentinel, then EOF
	gBodyError // a broken chunked body: err on every read
)

// sentinel is what net/http reads in place of a refused head.
const sentinel = "\x00\r\n\r\n"

// guardConn is a net.Conn whose reads are the client's bytes once checked.
// Only net/http's connection goroutine (and its background read, which it
// serialises) reads it; writes and deadlines go straight to the connection.
type guardConn struct {
	net.Conn
	buf     []byte // [r:v) checked, not yet read; [v:w) read from Conn, not yet checked
	r, v, w int

	st     guardState
	remain int64 // body or chunk bytes left
	sent   int   // bytes of sentinel delivered
	ferr   error

	// The head being read.
	headBytes int
	http10    bool
	nCL, nTE  int
	nHost     int
	clen      int64
	upgrade   bool
	// refusal says why the guard refused; ended counts the requests it
	// saw to their end (tests and the fuzzer read them).
	refusal string
	ended   int

	// oneHead makes check stop right after the end of a head (headDone):
	// the fast path (fastpath.go) then finds exactly one head in [r:v).
	oneHead, headDone bool
}

func newGuardConn(c net.Conn) *guardConn { return &guardConn{Conn: c} }

// guardListener wraps each accepted connection in a guardConn.
type guardListener struct{ net.Listener }

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newGuardConn(c), nil
}

// CloseWrite half-closes a TCP connection (ReverseProxy does after a
// WebSocket's client side ended).
func (g *guardConn) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the connection's own (splice/sendfile) copy for writes.
func (g *guardConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(g.Conn, r) }

func (g *guardConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if g.r < g.v {
			n := copy(p, g.buf[g.r:g.v])
			g.r += n
			return n, nil
		}
		switch g.st {
		case gRefused:
			if g.sent == len(sentinel) {
				return 0, io.EOF
			}
			n := copy(p, sentinel[g.sent:])
			g.sent += n
			return n, nil
		case gBodyError:
			return 0, g.ferr
		}
		if g.v < g.w {
			if g.check() {
				continue
			}
		} else if n, ok, err := g.direct(p); ok {
			return n, err
		}
		if err := g.fill(); err != nil {
			return 0, err
		}
	}
}

// direct reads body bytes (or an upgraded stream) straight into p when
// nothing is buffered: no copy for the bulk of a body.
func (g *guardConn) direct(p []byte) (int, bool, error) {
	switch g.st {
	case gRaw:
		n, err := g.Conn.Read(p)
		return n, true, err
	case gBody, gChunkData:
		if int64(len(p)) > g.remain {
			p = p[:g.remain]
		}
		n, err := g.Conn.Read(p)
		g.remain -= int64(n)
		if g.remain == 0 {
			if g.st == gBody {
				g.st = gRequestLine
				g.ended++
			} else {
				g.st = gChunkEnd
			}
		}
		if n > 0 {
			err = nil // the error comes again on the next read
		}
		return n, true, err
	}
	return 0, false, nil
}

// fill reads more of the connection into buf[w:].
func (g *guardConn) fill() error {
	if g.r == g.v && g.v == g.w && len(g.buf) > 4096 {
		// A large head came and went: do not keep its buffer for the
		// connection's life.
		g.buf, g.r, g.v, g.w = nil, 0, 0, 0
	}
	if g.r == g.v && g.r > 0 {
		// Nothing checked is waiting: move the unchecked tail to the front.
		n := copy(g.buf, g.buf[g.v:g.w])
		g.r, g.v, g.w = 0, 0, n
	}
	if g.w == len(g.buf) {
		size := 2 * len(g.buf)
		if size == 0 {
			size = 4096
		}
		if size > 2*maxHeadBytes {
			size = 2 * maxHeadBytes
		}
		if g.w == size { // a line longer than any limit: check() refuses it
			return errors.New("guard buffer full")
		}
		nb := make([]byte, size)
		copy(nb, g.buf[:g.w])
		g.buf = nb
	}
	n, err := g.Conn.Read(g.buf[g.w:])
	g.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// check advances v over what can be checked in buf[v:w]; false when it needs
// more bytes.
func (g *guardConn) check() bool {
	progress := false
	for g.v < g.w {
		switch g.st {
		case gRaw:
			g.v = g.w
			return true
		case gRefused, gBodyError:
			return true
		case gBody, gChunkData:
			n := int64(g.w - g.v)
			if n > g.remain {
				n = g.remain
			}
			g.v += int(n)
			g.remain -= n
			if g.remain == 0 {
				if g.st == gBody {
					g.st = gRequestLine
				} else {
					g.st = gChunkEnd
				}
			}
			progress = true
			continue
		case gChunkEnd:
			if g.buf[g.v] != '\r' {
				g.bodyError("no CRLF after chunk data")
				return true
			}
			if g.w-g.v < 2 {
				return progress
			}
			if g.buf[g.v+1] != '\n' {
				g.bodyError("no CRLF after chunk data")
				return true
			}
			g.v += 2
			g.st = gChunkSize
			progress = true
			continue
		}
		i := bytes.IndexByte(g.buf[g.v:g.w], '\n')
		if i < 0 {
			if g.tooLong(g.w - g.v) {
				return true
			}
			return progress
		}
		if g.tooLong(i + 1) {
			return true
		}
		line := g.buf[g.v : g.v+i]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		ok := true
		switch g.st {
		case gRequestLine:
			ok = g.requestLine(line)
		case gHeader:
			ok = g.headerLine(line)
		case gChunkSize:
			ok = g.chunkSize(g.buf[g.v : g.v+i])
		case gTrailer:
			// CRLF required: net/http looks for the CRLFCRLF that ends them.
			if i == 0 || g.buf[g.v+i-1] != '\r' {
				g.bodyError("trailer line without CRLF")
				return true
			}
			ok = g.trailerLine(line)
		}
		if !ok {
			return true
		}
		g.headBytes += i + 1
		g.v += i + 1
		progress = true
		if g.oneHead && g.headDone {
			return true
		}
	}
	return progress
}

// tooLong refuses a line of n bytes (so far) that takes the head or the
// chunk line over its limit.
func (g *guardConn) tooLong(n int) bool {
	switch g.st {
	case gChunkSize:
		if n > maxChunkLine {
			g.bodyError("chunk-size line too long")
			return true
		}
	case gTrailer:
		if g.headBytes+n > maxTrailerBytes {
			g.bodyError("trailers over 4 KiB")
			return true
		}
	case gRequestLine:
		if n > maxHeadBytes {
			g.refuse("header block over 64 KiB")
			return true
		}
	default:
		if g.headBytes+n > maxHeadBytes {
			g.refuse("header block over 64 KiB")
			return true
		}
	}
	return false
}

func (g *guardConn) refuse(why string) {
	g.st = gRefused
	g.refusal = why
	// Checked bytes of the refused head stay: net/http reads them, then the
	// sentinel where the bad line was.
	g.w = g.v
}

func (g *guardConn) bodyError(why string) {
	g.st = gBodyError
	g.refusal = why
	g.ferr = &framingError{why}
	g.w = g.v
}

func (g *guardConn) requestLine(line []byte) bool {
	g.headBytes, g.nCL, g.nTE, g.nHost, g.clen, g.upgrade = 0, 0, 0, 0, 0, false
	// method SP request-target SP HTTP/1.d, one space each.
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		g.refuse("malformed request line")
		return false
	}
	for _, c := range line[:sp1] {
		if !isTchar(c) {
			g.refuse("invalid method")
			return false
		}
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		g.refuse("malformed request line")
		return false
	}
	target, proto := rest[:sp2], rest[sp2+1:]
	if len(proto) != 8 || string(proto[:7]) != "HTTP/1." || proto[7] < '0' || proto[7] > '9' {
		g.refuse("unsupported protocol version")
		return false
	}
	g.http10 = proto[7] == '0'
	plain := target[0] == '/'
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			g.refuse("invalid byte in the request target")
			return false
		}
		if c == '%' {
			plain = false
		}
	}
	if string(line[:sp1]) == "CONNECT" {
		// A reverse proxy has no tunnels to open.
		g.refuse("CONNECT is not served")
		return false
	}
	if !plain {
		// What net/http's url.ParseRequestURI refuses (bad escapes, a
		// relative path); rare enough not to matter to speed.
		if _, err := url.ParseRequestURI(string(target)); err != nil {
			g.refuse("invalid request target")
			return false
		}
	}
	g.st = gHeader
	return true
}

func (g *guardConn) headerLine(line []byte) bool {
	if len(line) == 0 {
		return g.endOfHead()
	}
	if line[0] == ' ' || line[0] == '\t' {
		g.refuse("obsolete line folding")
		return false
	}
	name, value, ok := splitField(line)
	if !ok {
		g.refuse("malformed header field")
		return false
	}
	switch {
	case asciiEqualFold(name, "content-length"):
		g.nCL++
		if g.nCL > 1 {
			g.refuse("Content-Length given twice")
			return false
		}
		if len(value) == 0 || len(value) > 18 {
			g.refuse("invalid Content-Length")
			return false
		}
		var n int64
		for _, c := range value {
			if c < '0' || c > '9' {
				g.refuse("invalid Content-Length")
				return false
			}
			n = n*10 + int64(c-'0')
		}
		g.clen = n
	case asciiEqualFold(name, "transfer-encoding"):
		g.nTE++
		if g.nTE > 1 {
			g.refuse("Transfer-Encoding given twice")
			return false
		}
		if !asciiEqualFold(value, "chunked") {
			g.refuse("unsupported Transfer-Encoding")
			return false
		}
	case asciiEqualFold(name, "host"):
		g.nHost++
		if g.nHost > 1 {
			g.refuse("Host given twice")
			return false
		}
		for _, c := range value {
			if !validHostByte[c] {
				g.refuse("invalid Host")
				return false
			}
		}
	case asciiEqualFold(name, "connection"):
		if hasToken(value, "upgrade") {
			g.upgrade = true
		}
	}
	return true
}

func (g *guardConn) endOfHead() bool {
	switch {
	case g.nTE > 0 && g.http10:
		g.refuse("Transfer-Encoding in HTTP/1.0")
		return false
	case g.nTE > 0 && g.nCL > 0:
		g.refuse("both Content-Length and Transfer-Encoding")
		return false
	case g.nHost == 0 && !g.http10:
		g.refuse("no Host in HTTP/1.1")
		return false
	}
	g.headDone = true
	switch {
	case g.upgrade:
		g.st = gRaw
		g.ended++
	case g.nTE > 0:
		g.st, g.headBytes = gChunkSize, 0
	case g.clen > 0:
		g.st, g.remain = gBody, g.clen
	default:
		g.st = gRequestLine
		g.ended++
	}
	return true
}

// chunkSize checks "HEX[;ext]\r" (the line up to its LF: CRLF required,
// net/http refuses a bare LF there too).
func (g *guardConn) chunkSize(raw []byte) bool {
	if len(raw) < 1 || raw[len(raw)-1] != '\r' {
		g.bodyError("chunk-size line without CRLF")
		return false
	}
	line := raw[:len(raw)-1]
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto ext
		}
		if i >= 15 { // 2^60 bytes is plenty and cannot overflow
			g.bodyError("chunk size too large")
			return false
		}
		n = n<<4 | int64(d)
	}
ext:
	if i == 0 {
		g.bodyError("invalid chunk size")
		return false
	}
	if i < len(line) {
		if line[i] != ';' {
			g.bodyError("invalid chunk size")
			return false
		}
		for _, c := range line[i+1:] {
			if c < ' ' && c != '\t' || c == 0x7f {
				g.bodyError("invalid chunk extension")
				return false
			}
		}
	}
	if n == 0 {
		g.st, g.headBytes = gTrailer, 0
	} else {
		g.st, g.remain = gChunkData, n
	}
	return true
}

func (g *guardConn) trailerLine(line []byte) bool {
	if len(line) == 0 {
		g.st = gRequestLine
		g.ended++
		return true
	}
	if line[0] == ' ' || line[0] == '\t' {
		g.bodyError("obsolete line folding in trailers")
		return false
	}
	if _, _, ok := splitField(line); !ok {
		g.bodyError("malformed trailer field")
		return false
	}
	return true
}

// splitField checks "name: value" (name a token, right before the colon;
// value without control bytes but HTAB) and returns the value without its
// surrounding white space.
func splitField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !isTchar(c) {
			return nil, nil, false
		}
	}
	value = line[colon+1:]
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, false
		}
	}
	for len(value) > 0 && (value[0] == ' ' || value[0] == '\t') {
		value = value[1:]
	}
	for len(value) > 0 && (value[len(value)-1] == ' ' || value[len(value)-1] == '\t') {
		value = value[:len(value)-1]
	}
	return name, value, true
}

func isTchar(c byte) bool { return tchar[c] }

var tchar = alnumAnd("!#$%&'*+-.^_`|~")

// alnumAnd is the set of ASCII letters, digits and the bytes of extra.
func alnumAnd(extra string) (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for i := range len(extra) {
		t[extra[i]] = true
	}
	return t
}

// validHostByte: the bytes net/http accepts in a Host header.
var validHostByte = alnumAnd("!$%&'()*+,-.:;=[]_~")

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds token (ASCII
// case-insensitive).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		t, v = nextListItem(v, ',')
		if asciiEqualFold(t, token) {
			return true
		}
	}
	return false
}

// nextListItem splits the first item off a list separated by sep and
// trims its spaces and tabs.
func nextListItem(v []byte, sep byte) (item, rest []byte) {
	if i := bytes.IndexByte(v, sep); i >= 0 {
		item, rest = v[:i], v[i+1:]
	} else {
		item = v
	}
	for len(item) > 0 && (item[0] == ' ' || item[0] == '\t') {
		item = item[1:]
	}
	for len(item) > 0 && (item[len(item)-1] == ' ' || item[len(item)-1] == '\t') {
		item = item[:len(item)-1]
	}
	return item, rest
}
