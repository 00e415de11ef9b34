package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
)

// The fast path's reader of a target's response head. http.ReadResponse
// costs about nine allocations per response (the Header map, its strings,
// the Response, the body reader) and was the largest part of the fast
// path's own CPU after the system calls; most responses are plain — an
// HTTP/1.1 status line, a handful of fields, a Content-Length or no body —
// and those are parsed here into buffers the client connection reuses.
//
// Decision: the parser only takes what it is sure of and leaves everything
// else to http.ReadResponse, which then reads the same bytes from the start
// (nothing is consumed until the head is accepted): 1xx and 101 answers,
// Transfer-Encoding (chunked), Trailer, a body delimited by the end of the
// connection, Content-Length given twice or not plain digits, HTTP/1.0,
// obsolete line folding, bare LF line ends, a head larger than the
// connection's read buffer (4 KiB). So the framing of unusual responses is
// net/http's by construction, and FuzzResponseHeadAgainstNetHTTP checks the
// rest: whatever it accepts, http.ReadResponse accepts with the same status,
// fields, length, connection reuse and body bytes.

// upResp is a target's response as the fast path copies it to the client.
type upResp struct {
	code  int
	close bool  // the target closes the connection after this response
	hasCL bool  // the head had a Content-Length
	cl    int64 // its value (net/http's ContentLength for HEAD: -1 without it)
	// bodyLen is what follows the head: 0 for HEAD, 204 and 304.
	bodyLen int64
	// fields in the target's order; names canonical. Connection is left out
	// when the response closes, as http.ReadResponse deletes it then.
	fields  []field
	head    []byte      // the head's bytes, which fields point into
	trailer http.Header // from http.ReadResponse (never for a parsed head)
	body    io.ReadCloser
}

// field returns the first value of the named field (canonical name).
func (u *upResp) field(name string) ([]byte, bool) {
	for i := range u.fields {
		if f := &u.fields[i]; !f.skip && string(f.name) == name {
			return f.value, true
		}
	}
	return nil, false
}

// clBody reads a body of known length from the target's connection.
type clBody struct {
	br     *bufio.Reader
	remain int64
}

func (b *clBody) Read(p []byte) (int, error) {
	if b.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.br.Read(p)
	b.remain -= int64(n)
	if err == io.EOF && b.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *clBody) Close() error { return nil }

// readPlainHead parses the response head at the start of br into u (its
// head and fields buffers reused) and consumes it, for a request of the
// given method. It returns false, with nothing consumed, when the head is
// not one it takes (see above) or the connection failed before a whole head
// was buffered: http.ReadResponse then reads it, and reports the error.
func readPlainHead(br *bufio.Reader, method string, u *upResp) bool {
	var buf []byte
	end := -1
	for {
		b, _ := br.Peek(br.Buffered())
		if end = headEnd(b); end >= 0 {
			buf = b
			break
		}
		if len(b) >= br.Size() {
			return false // larger than the buffer
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return false
		}
	}
	u.head = append(u.head[:0], buf[:end]...)
	if !parsePlainHead(u.head, method, u) {
		return false
	}
	br.Discard(end)
	return true
}

// headEnd is the length of the head at the start of b, up to and with its
// empty line (CRLF or a bare LF: such a head is then left to net/http, but
// it is whole, so no more bytes are waited for), or -1 if b holds no empty
// line yet.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		if j == 0 || j == 1 && b[i] == '\r' {
			return i + j + 1
		}
		i += j + 1
	}
}

// parsePlainHead parses head, ending with its empty line, into u.
func parsePlainHead(head []byte, method string, u *upResp) bool {
	u.fields = u.fields[:0]
	u.trailer = nil
	u.close, u.hasCL, u.cl, u.bodyLen = false, false, 0, 0
	i := bytes.IndexByte(head, '\n')
	if i < 1 || head[i-1] != '\r' {
		return false
	}
	line := head[:i-1]
	if len(line) < 12 || string(line[:9]) != "HTTP/1.1 " || (len(line) > 12 && line[12] != ' ') {
		return false
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 {
		return false // 1xx and 101: net/http's
	}
	for _, c := range line[12:] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	u.code = code
	for rest := head[i+1:]; ; {
		i := bytes.IndexByte(rest, '\n')
		if i < 1 || rest[i-1] != '\r' {
			return false // a bare LF
		}
		line := rest[:i-1]
		rest = rest[i+1:]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return false // obsolete line folding
		}
		name, value, ok := splitField(line)
		if !ok {
			return false
		}
		canonicalizeInPlace(name)
		switch string(name) {
		case "Transfer-Encoding", "Trailer":
			return false
		case "Content-Length":
			if u.hasCL || len(value) == 0 || len(value) > 18 {
				return false
			}
			var n int64
			for _, c := range value {
				if c < '0' || c > '9' {
					return false
				}
				n = n*10 + int64(c-'0')
			}
			u.hasCL, u.cl = true, n
		case "Connection":
			if hasToken(value, "close") {
				u.close = true
			}
		}
		u.fields = append(u.fields, field{name: name, value: value})
	}
	if u.close {
		// http.ReadResponse deletes Connection when it says close (so the
		// fields it lists are not removed as hop-by-hop either).
		k := 0
		for _, f := range u.fields {
			if string(f.name) != "Connection" {
				u.fields[k] = f
				k++
			}
		}
		u.fields = u.fields[:k]
	}
	bodyAllowed := code != 204 && code != 304
	switch {
	case method == http.MethodHead:
		if !u.hasCL {
			u.cl = -1
		}
	case !bodyAllowed:
		u.cl = 0
	case !u.hasCL:
		return false // delimited by the end of the connection: net/http's
	default:
		u.bodyLen = u.cl
	}
	return true
}

// fromResponse fills u from a response http.ReadResponse read (the heads
// parsePlainHead leaves to it), fields in the map's order.
func (u *upResp) fromResponse(resp *http.Response) {
	u.fields = u.fields[:0]
	for k, vs := range resp.Header {
		for _, v := range vs {
			u.fields = append(u.fields, field{name: []byte(k), value: []byte(v)})
		}
	}
	u.code, u.close = resp.StatusCode, resp.Close
	_, u.hasCL = resp.Header["Content-Length"]
	u.cl = resp.ContentLength
	u.trailer = resp.Trailer
	u.body = resp.Body
}
