package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fast path against the net/http path: the same raw requests go to two
// proxies, one with Options.FastPath, routed to one recording backend; the
// backend must see the same request (method, target, Host, fields, body)
// and the client the same response (status, fields but Date, body,
// trailers, framing) from both.

// diffBackend is a backend that records the last request it got and answers
// in the way its X-Variant field asks for.
type diffBackend struct {
	mu   sync.Mutex
	seen []string
}

func (rec *diffBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s host=%q\n", r.Method, r.RequestURI, r.Proto, r.Host)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vs := r.Header[k]
		if k == "X-Request-Id" && len(vs) == 1 && len(vs[0]) == 32 {
			vs = []string{"<generated>"} // random on both paths when absent
		}
		fmt.Fprintf(&b, "%s: %q\n", k, vs)
	}
	fmt.Fprintf(&b, "body=%q te=%q cl=%d\n", body, r.TransferEncoding, r.ContentLength)
	rec.mu.Lock()
	rec.seen = append(rec.seen, b.String())
	rec.mu.Unlock()
	v, _ := strconv.Atoi(r.Header.Get("X-Variant"))
	h := w.Header()
	if raw := rawVariants[v%nVariants-min(v%nVariants, 15)]; v%nVariants >= 15 {
		// Heads net/http's server would not write, as a target may
		// (h1resp.go parses them), then the end of the connection.
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		head, body, _ := strings.Cut(raw, "\r\n\r\n")
		if !strings.Contains(head, "close") && strings.HasPrefix(head, "HTTP/1.1") {
			// The connection ends after this answer: it says so, or the
			// proxies' pools would meet a closed connection next time.
			head += "\r\nConnection: close"
		}
		if r.Method == http.MethodHead {
			body = "" // as a server answers HEAD
		}
		raw = head + "\r\n\r\n" + body
		bw.WriteString(raw)
		bw.Flush()
		c.Close()
		return
	}
	switch v % nVariants {
	case 0:
		h.Set("Content-Type", "text/plain")
		io.WriteString(w, "hello")
	case 1:
		io.WriteString(w, "<html><body>sniffed</body></html>")
	case 2:
		h.Set("Content-Type", "text/plain")
		io.WriteString(w, "part one,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part two")
	case 3:
		h.Set("Trailer", "X-Sum, X-Other")
		io.WriteString(w, "with trailers")
		w.(http.Flusher).Flush()
		h.Set("X-Sum", "42")
		h.Set("X-Other", "yes")
	case 4:
		// nothing: net/http sends Content-Length: 0
	case 5:
		w.WriteHeader(http.StatusNoContent)
	case 6:
		h.Set("ETag", `"x"`)
		h.Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusNotModified)
	case 7:
		h.Set("Content-Type", "application/octet-stream")
		w.Write(bytes.Repeat([]byte("0123456789abcdef"), 8<<10))
	case 8:
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		io.WriteString(w, "hops")
	case 9:
		c, bw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end")
		bw.Flush()
		c.Close()
	case 10:
		h.Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		h.Del("Link")
		io.WriteString(w, "after hints")
	case 11:
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2")
		w.WriteHeader(299)
		io.WriteString(w, "odd status")
	case 12:
		h.Set("Content-Encoding", "gzip")
		io.WriteString(w, "not really gzip")
	case 13:
		h.Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "data: 2\n\n")
	case 14:
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "broken")
	}
}

// rawVariants are the answers of variants 15 and up, sent as they are but
// for a Connection: close field added to those that lack one.
var rawVariants = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\nhi",
	"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: X-Foo , keep-alive\r\nX-Foo: 1\r\nKeep-Alive: timeout=5\r\nx-foo: 2\r\n\r\nhops",
	"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nETag: \"e\"\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nx-multi: a\r\nX-Multi:  b \r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n" + strings.Repeat("<html>", 100),
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
}

// nVariants is the number of the diffBackend's answers.
var nVariants = 15 + len(rawVariants)

func (rec *diffBackend) take() string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	s := strings.Join(rec.seen, "")
	rec.seen = nil
	return s
}

// describeResponse reads one response and renders what a client sees.
func describeResponse(br *bufio.Reader, method string) (string, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d close=%v te=%q cl=%d\n", resp.Proto, resp.StatusCode, resp.Close, resp.TransferEncoding, resp.ContentLength)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		vs := resp.Header[k]
		if k == "Trailer" { // announced in map order
			var ts []string
			for _, v := range vs {
				for _, t := range strings.Split(v, ",") {
					ts = append(ts, strings.TrimSpace(t))
				}
			}
			slices.Sort(ts)
			vs = ts
		}
		fmt.Fprintf(&b, "%s: %q\n", k, vs)
	}
	_, hasDate := resp.Header["Date"]
	fmt.Fprintf(&b, "date=%v body=%q trailer=%v\n", hasDate, body, resp.Trailer)
	return b.String(), nil
}

type diffRig struct {
	rec        *diffBackend
	fast, slow *testProxy
	tls        bool // over the HTTPS listener (ALPN http/1.1)
}

func (r *diffRig) dial(t testing.TB, tp *testProxy) net.Conn {
	if !r.tls {
		c, err := net.Dial("tcp", tp.http)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pem, err := os.ReadFile(tp.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", tp.https, &tls.Config{RootCAs: pool, ServerName: "web.production.localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newDiffRig(t testing.TB, overTLS bool) *diffRig {
	rec := &diffBackend{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rec}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	cfg := oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {{Instance: "i", Addr: ln.Addr().String()}}})
	r := &diffRig{rec: rec, tls: overTLS}
	for _, fast := range []bool{true, false} {
		opts := Options{HTTPSAddr: Off, FastPath: fastPathMode(fast)}
		if overTLS {
			opts.HTTPSAddr = ""
		}
		tp := startProxy(t, opts)
		if err := tp.Update(cfg); err != nil {
			t.Fatal(err)
		}
		if fast {
			r.fast = tp
		} else {
			r.slow = tp
		}
	}
	return r
}

// exchange sends raw requests on one connection, each after the answer to
// the one before (all at once, pipelined, when raws has one element for
// several methods), and describes what the backend saw and what came back.
func (r *diffRig) exchange(t testing.TB, tp *testProxy, raws []string, methods []string) []string {
	if len(raws) == 1 && len(methods) > 1 {
		return r.pipelined(t, tp, raws[0], methods)
	}
	c := r.dial(t, tp)
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	var out []string
	for i, raw := range raws {
		r.rec.take()
		if _, err := io.WriteString(c, raw); err != nil {
			out = append(out, "write error")
			break
		}
		resp, err := describeResponse(br, methods[i])
		if err != nil {
			out = append(out, "no response: "+errKind(err))
			break
		}
		out = append(out, "backend saw: "+r.rec.take()+"client got: "+resp)
		if strings.Contains(resp, "close=true") {
			break
		}
	}
	return out
}

func (r *diffRig) pipelined(t testing.TB, tp *testProxy, raw string, methods []string) []string {
	c := r.dial(t, tp)
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	r.rec.take()
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	var out []string
	for _, m := range methods {
		resp, err := describeResponse(br, m)
		if err != nil {
			out = append(out, "no response: "+errKind(err))
			break
		}
		out = append(out, "client got: "+resp)
	}
	return append(out, "backend saw: "+r.rec.take())
}

func errKind(err error) string {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "EOF"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "error"
}

func (r *diffRig) compare(t testing.TB, raws, methods []string) {
	t.Helper()
	t0 := time.Now()
	defer func() {
		if d := time.Since(t0); d > time.Second {
			t.Logf("slow %s %q", d, raws)
		}
	}()
	got := r.exchange(t, r.fast, raws, methods)
	want := r.exchange(t, r.slow, raws, methods)
	if !slices.Equal(got, want) {
		t.Fatalf("requests %q:\nfast path:\n%s\nnet/http:\n%s", raws, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func rawRequest(method, target, fields string, variant uint8) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: web.production.localhost\r\nX-Variant: %d\r\n", method, target, variant)
	for _, l := range strings.Split(fields, "\n") {
		if l != "" {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

var diffSeeds = []struct {
	method, target, fields string
}{
	{"GET", "/", ""},
	{"HEAD", "/", ""},
	{"OPTIONS", "/x", ""},
	{"GET", "/a/b?q=1&r=%20", "User-Agent: curl\nAccept: */*"},
	{"GET", "/", "X-Forwarded-For: 10.0.0.1\nX-Forwarded-For: 10.0.0.2\nX-Forwarded-Host: evil\nX-Forwarded-Proto: https\nForwarded: for=1.2.3.4"},
	{"GET", "/", "X-Request-Id: abc\nX-Request-Id: def"},
	{"GET", "/", "X-Request-Id:"},
	{"GET", "/", "Connection: close"},
	{"GET", "/", "Connection: keep-alive, X-Drop\nX-Drop: 1"},
	{"GET", "/", "Keep-Alive: 300\nProxy-Connection: keep-alive\nProxy-Authorization: Basic eA=="},
	{"GET", "/", "user-agent: one\nUser-Agent: two\ncookie: a=b\nCookie: c=d"},
	{"GET", "/", "User-Agent:"},
	{"GET", "/%41b", ""},
	{"GET", "/a\"b", ""},
	{"GET", "http://web.production.localhost/", ""},
	{"GET", "/", "Te: trailers"},
	{"GET", "/", "Expect: 100-continue"},
	{"GET", "/", "Content-Length: 0"},
	{"POST", "/", "Content-Length: 0"},
	{"GET", "/", "Upgrade: websocket\nConnection: Upgrade"},
	{"GET", "/", "X-Odd-Name_1: v  \nx-lower: V"},
}

func TestFastPathMatchesNetHTTP(t *testing.T) {
	t.Parallel()
	t.Run("http", func(t *testing.T) { t.Parallel(); testFastPathMatches(t, newDiffRig(t, false)) })
	t.Run("https", func(t *testing.T) { t.Parallel(); testFastPathMatches(t, newDiffRig(t, true)) })
}

func testFastPathMatches(t *testing.T, r *diffRig) {
	for _, s := range diffSeeds {
		for v := range uint8(nVariants) {
			raw := rawRequest(s.method, s.target, s.fields, v)
			r.compare(t, []string{raw}, []string{s.method})
		}
	}
	// Pipelined and keep-alive sequences, mixing what the fast path serves
	// with what it hands off.
	seq := []string{rawRequest("GET", "/", "", 0), rawRequest("HEAD", "/", "", 2), rawRequest("GET", "/", "", 3),
		rawRequest("POST", "/", "Content-Length: 2", 0)[:0] + "POST / HTTP/1.1\r\nHost: web.production.localhost\r\nContent-Length: 2\r\n\r\nhi",
		rawRequest("GET", "/", "", 1)}
	methods := []string{"GET", "HEAD", "GET", "POST", "GET"}
	r.compare(t, seq, methods)
	r.compare(t, []string{strings.Join(seq, "")}, methods)
	if r.fast.fastServed.Load() == 0 {
		t.Fatal("the fast path served no request")
	}
	if r.slow.fastServed.Load() != 0 {
		t.Fatal("the proxy without FastPath served a request on the fast path")
	}
}

func FuzzFastPathAgainstNetHTTP(f *testing.F) {
	for i, s := range diffSeeds {
		f.Add(s.method, s.target, s.fields, uint8(i))
	}
	r := newDiffRig(f, false)
	f.Fuzz(func(t *testing.T, method, target, fields string, variant uint8) {
		if strings.ContainsAny(method+target, "\r\n") || strings.Contains(fields, "\r") {
			return
		}
		r.compare(t, []string{rawRequest(method, target, fields, variant%uint8(nVariants))}, []string{method})
	})
}

// The fast path is on unless turned off, by the option or, for a default
// option, by RUNWAY_PROXY_FAST_PATH=0.
func TestFastPathDefault(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		mode FastPathMode
		want FastPathMode
	}{{FastPathOn, FastPathOn}, {FastPathOff, FastPathOff}, {FastPathDefault, FastPathOn}} {
		if c.mode == FastPathDefault && os.Getenv("RUNWAY_PROXY_FAST_PATH") == "0" {
			c.want = FastPathOff
		}
		p, err := New(Options{HTTPAddr: Off, HTTPSAddr: Off, FastPath: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		if p.opts.FastPath != c.want {
			t.Errorf("FastPath %d: got %d, want %d", c.mode, p.opts.FastPath, c.want)
		}
	}
}

// A client that half-closes its keep-alive connection right after a
// request, then reads the answer: the fast path finds the end of its stream
// after the answer and closes, although the end of the answer was held
// (deferConn) and the held wait for the next request does not read first
// (so it cannot see a half-close that came before it): that wait lasts
// heldIdle at most, then a plain read finds the end — well before the idle
// timeout (minutes), which the 10 s deadline here would not reach.
func TestFastPathClientHalfCloseEndsConnection(t *testing.T) {
	t.Parallel()
	for _, overTLS := range []bool{false, true} {
		r := newDiffRig(t, overTLS)
		c := r.dial(t, r.fast)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, rawRequest("GET", "/", "", 0)); err != nil {
			t.Fatal(err)
		}
		switch cw := c.(type) {
		case *net.TCPConn:
			cw.CloseWrite()
		case *tls.Conn:
			cw.CloseWrite()
		}
		br := bufio.NewReader(c)
		if _, err := describeResponse(br, "GET"); err != nil {
			t.Fatalf("tls=%v: %v", overTLS, err)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("tls=%v: after a half-close, the proxy's connection: %v (want its end)", overTLS, err)
		}
		c.Close()
		if r.fast.fastServed.Load() == 0 {
			t.Fatal("not served on the fast path")
		}
	}
}
