package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// plainHeadSeeds are response heads (and bodies) for the parser's table and
// the fuzzer's corpus: ok says whether readPlainHead takes them itself.
var plainHeadSeeds = []struct {
	raw  string
	head bool // the request was HEAD
	ok   bool
}{
	{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", false, true},
	{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n", false, true},
	{"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, true},
	{"HTTP/1.1 299 odd\r\ncontent-length:  3 \r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nabc", false, true},
	{"HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", false, true},
	{"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n", false, true},
	{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, true},
	{"HTTP/1.1 200 OK\r\n\r\n", true, true},
	{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\nhi", false, true},
	{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Foo\r\nX-Foo: 1\r\n\r\nhi", false, true},
	{"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", false, true},
	{"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 007\r\nX-Empty:\r\n\r\nbroken!", false, true},
	{"HTTP/1.1 200 OK\r\nX-Obs: \x80\xff\r\nContent-Length: 1\r\n\r\nx", false, true},
	// Left to http.ReadResponse.
	{"HTTP/1.1 200 OK\r\n\r\nuntil the end", false, false},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, false},
	{"HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false, false},
	{"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", false, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", false, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", false, false},
	{"HTTP/1.1 200 OK\nContent-Length: 1\n\nx", false, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\nx", false, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\n X-A: 1\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\n: empty\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1  200 OK\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 20 OK\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200\tOK\r\nContent-Length: 1\r\n\r\nx", false, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", false, false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Big: " + strings.Repeat("b", 5000) + "\r\n\r\nx", false, false},
	{"", false, false},
}

func methodOf(head bool) string {
	if head {
		return http.MethodHead
	}
	return http.MethodGet
}

func TestReadPlainHead(t *testing.T) {
	t.Parallel()
	for _, s := range plainHeadSeeds {
		var u upResp
		br := bufio.NewReaderSize(strings.NewReader(s.raw), 4096)
		if got := readPlainHead(br, methodOf(s.head), &u); got != s.ok {
			t.Errorf("%q: readPlainHead %v, want %v", s.raw, got, s.ok)
		}
		checkPlainHead(t, []byte(s.raw), s.head)
	}
}

func FuzzResponseHeadAgainstNetHTTP(f *testing.F) {
	for _, s := range plainHeadSeeds {
		f.Add([]byte(s.raw), s.head)
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		checkPlainHead(t, raw, head)
	})
}

// checkPlainHead parses raw with readPlainHead and with http.ReadResponse:
// a head readPlainHead leaves alone must be left unread; one it takes,
// net/http must take too, with the same status, fields, length, reuse of
// the connection and body bytes, and leave the same bytes after it.
func checkPlainHead(t *testing.T, raw []byte, head bool) {
	t.Helper()
	method := methodOf(head)
	var u upResp
	src := &countingReader{r: bytes.NewReader(raw)}
	br := bufio.NewReaderSize(src, 4096)
	taken := readPlainHead(br, method, &u)
	reads := src.reads
	nsrc := bytes.NewReader(raw)
	nbr := bufio.NewReader(nsrc)
	resp, err := http.ReadResponse(nbr, &http.Request{Method: method})
	if err == nil && len(raw)-nsrc.Len()-nbr.Buffered() <= 4096 && reads > 1 {
		// A target keeps the connection open after its answer: a head
		// that is whole in the first read must not wait for more bytes.
		t.Fatalf("%q: a whole head of %d bytes, but readPlainHead read %d times", raw, len(raw)-nsrc.Len()-nbr.Buffered(), reads)
	}
	if !taken {
		rest, _ := io.ReadAll(br)
		if !bytes.Equal(rest, raw) {
			t.Fatalf("%q: refused but consumed %d bytes", raw, len(raw)-len(rest))
		}
		return
	}
	if err != nil {
		t.Fatalf("%q (%s): taken, but net/http refuses it: %v", raw, method, err)
	}
	if u.code != resp.StatusCode || u.close != resp.Close || u.cl != resp.ContentLength || resp.Trailer != nil || resp.TransferEncoding != nil {
		t.Fatalf("%q (%s): status %d close %v length %d; net/http: %d %v %d trailer %v te %q",
			raw, method, u.code, u.close, u.cl, resp.StatusCode, resp.Close, resp.ContentLength, resp.Trailer, resp.TransferEncoding)
	}
	got := http.Header{}
	for _, f := range u.fields {
		got[string(f.name)] = append(got[string(f.name)], string(f.value))
	}
	if !headersEqual(got, resp.Header) {
		t.Fatalf("%q: fields %q; net/http: %q", raw, got, resp.Header)
	}
	if _, ok := resp.Header["Content-Length"]; ok != u.hasCL {
		t.Fatalf("%q: hasCL %v", raw, u.hasCL)
	}
	body, berr := io.ReadAll(&clBody{br: br, remain: u.bodyLen})
	nbody, nerr := io.ReadAll(resp.Body)
	if !bytes.Equal(body, nbody) || (berr == nil) != (nerr == nil) {
		t.Fatalf("%q: body %q (%v); net/http: %q (%v)", raw, body, berr, nbody, nerr)
	}
	if berr != nil {
		return
	}
	rest, _ := io.ReadAll(br)
	nrest, _ := io.ReadAll(nbr)
	if !bytes.Equal(rest, nrest) {
		t.Fatalf("%q: after the response %q; net/http: %q", raw, rest, nrest)
	}
}

// countingReader counts the reads made of r (the first one takes up to
// the bufio.Reader's 4 KiB; any further one waits, on a connection).
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, vs := range a {
		if !slices.Equal(vs, b[k]) {
			return false
		}
	}
	return true
}
