package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The request-smuggling and framing table: each case is sent, byte for
// byte, to Runway's proxy and to nginx side by side, both in front of the
// same kind of instance (a recorder that parses what it receives with
// net/http, as a Go app would). Runway must be at least as safe as nginx on
// every case: what nginx refuses Runway refuses, and no request the client
// did not send as such (a "smuggled" one) ever reaches an instance.
// `go test -run TestFraming ./internal/proxy -update-framing` rewrites
// docs/http-framing.md, the table of both answers.

var updateFraming = flag.Bool("update-framing", false, "rewrite docs/http-framing.md from TestFramingAgainstNginx")

type framingCase struct {
	name string
	raw  string
	// expect100: the case sends its headers, waits for the interim or
	// final answer, then sends body.
	expect100 bool
	body      string
}

const host = "Host: web.production.localhost\r\n"

var framingCases = []framingCase{
	{name: "plain GET (control)", raw: "GET /a HTTP/1.1\r\n" + host + "\r\n"},
	{name: "Content-Length and Transfer-Encoding: chunked", raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + host + "\r\n"},
	{name: "Transfer-Encoding: chunked then Content-Length", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + host + "\r\n"},
	{name: "duplicate Content-Length, same value", raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "conflicting Content-Length", raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 30\r\n\r\nhelloGET /smuggled HTTP/1.1\r\n\r\n"},
	{name: "Content-Length list \"5, 30\"", raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5, 30\r\n\r\nhelloGET /smuggled HTTP/1.1\r\n\r\n"},
	{name: "Content-Length with a sign \"+5\"", raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello"},
	{name: "negative Content-Length", raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\nGET /smuggled HTTP/1.1\r\n" + host + "\r\n"},
	{name: "Content-Length over 2^63", raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999\r\n\r\nhello"},
	{name: "Transfer-Encoding \"chunked \" (trailing space)", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "Transfer-Encoding: xchunked", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "Transfer-Encoding: chunked, chunked", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "Transfer-Encoding: gzip, chunked", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "Transfer-Encoding: chunked, identity", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "two Transfer-Encoding lines", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "space before the colon (\"Transfer-Encoding : chunked\")", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n" + host + "\r\n"},
	{name: "Transfer-Encoding in HTTP/1.0", raw: "POST /a HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk size overflowing 64 bits", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk size \"0x5\"", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk extension", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n"},
	{name: "chunk data longer than its size", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n"},
	{name: "bare LF line ends", raw: "GET /a HTTP/1.1\nHost: web.production.localhost\n\n"},
	{name: "bare LF in chunked body", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n"},
	{name: "obsolete line folding", raw: "GET /a HTTP/1.1\r\n" + host + "X-Folded: a\r\n b\r\n\r\n"},
	{name: "folded Transfer-Encoding", raw: "POST /a HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\nhello"},
	{name: "NUL in a header value", raw: "GET /a HTTP/1.1\r\n" + host + "X-Bad: a\x00b\r\n\r\n"},
	{name: "space in a header name", raw: "GET /a HTTP/1.1\r\n" + host + "X Bad: a\r\n\r\n"},
	{name: "CR alone in a header value", raw: "GET /a HTTP/1.1\r\n" + host + "X-Bad: a\rb\r\n\r\n"},
	{name: "no Host in HTTP/1.1", raw: "GET /a HTTP/1.1\r\n\r\n"},
	{name: "two Host lines", raw: "GET /a HTTP/1.1\r\n" + host + "Host: other.localhost\r\n\r\n"},
	{name: "header block over 1 MiB", raw: "GET /a HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("a", 1<<20+1) + "\r\n\r\n"},
	{name: "pipelined requests", raw: "GET /a HTTP/1.1\r\n" + host + "\r\nGET /b HTTP/1.1\r\n" + host + "\r\n"},
	{name: "HTTP/1.0 keep-alive, two requests", raw: "GET /a HTTP/1.0\r\n" + host + "Connection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n" + host + "\r\n"},
	{name: "Expect: 100-continue", raw: "POST /a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n", expect100: true, body: "hello"},
	{name: "HTTP/2 preface on the HTTP/1 port", raw: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	{name: "absolute-form target naming another host", raw: "GET http://other.localhost/a HTTP/1.1\r\n" + host + "\r\n"},
	{name: "unknown HTTP version 1.9", raw: "GET /a HTTP/1.9\r\n" + host + "\r\n"},
}

// recorder is the instance: it parses each connection's bytes as requests
// with net/http, answers each with 200 and the request it saw, and keeps
// the list.
type recorder struct {
	ln net.Listener
	mu sync.Mutex
	// seen: "METHOD PATH (N bytes)" per request, in arrival order.
	seen []string
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(c)
		}
	}()
	return r
}

func (r *recorder) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		s := fmt.Sprintf("%s %s (%d bytes)", req.Method, req.URL.RequestURI(), len(body))
		r.mu.Lock()
		r.seen = append(r.seen, s)
		r.mu.Unlock()
		msg := "saw " + s
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s", len(msg), msg); err != nil {
			return
		}
	}
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.seen
	r.seen = nil
	return s
}

// startNginx runs nginx proxying every host to backend on a free loopback
// port, or skips saying why nginx is missing (.ci/run installs it).
func startNginx(t *testing.T, backend string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx not installed (apt-get install -y nginx-light; .ci/run does)")
		}
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  upstream instance { server %[3]s; keepalive 4; }
  server {
    listen %[4]s;
    location / {
      proxy_pass http://instance;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`, user, dir, backend, addr)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-g", "daemon off;")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not listen on %s: %s\n%s", addr, out.String(), b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// answer is what one front did with a case: the status codes the client
// read, in order, and the requests the instance received.
type answer struct {
	statuses []int
	reached  []string
	err      string
}

func (a answer) String() string {
	s := "no answer"
	if len(a.statuses) > 0 {
		parts := make([]string, len(a.statuses))
		for i, c := range a.statuses {
			parts[i] = fmt.Sprint(c)
		}
		s = strings.Join(parts, ", ")
	} else if a.err != "" {
		s = a.err
	}
	if len(a.reached) == 0 {
		return s + "; nothing forwarded"
	}
	return s + "; forwarded " + strings.Join(a.reached, ", ")
}

// send writes c to addr and reads the answers until the front closes the
// connection or stays silent for idle.
func send(t *testing.T, addr string, c framingCase, rec *recorder) answer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	idle := time.Second
	if c.expect100 {
		idle = 5 * time.Second
	}
	var a answer
	br := bufio.NewReader(conn)
	read := func() bool {
		_ = conn.SetReadDeadline(time.Now().Add(idle))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && len(a.statuses) == 0 {
				a.err = "unreadable answer"
			}
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		a.statuses = append(a.statuses, resp.StatusCode)
		return true
	}
	if _, err := io.WriteString(conn, c.raw); err != nil {
		a.err = "connection closed while sending"
	}
	if c.expect100 {
		// The interim 100 (or a final answer) comes before the body.
		if read() && a.statuses[len(a.statuses)-1] == http.StatusContinue {
			_, _ = io.WriteString(conn, c.body)
		}
	}
	for read() {
	}
	// The instance's view settles once the front answered.
	a.reached = rec.take()
	return a
}

// TestFramingAgainstNginx: the table above, Runway beside nginx.
func TestFramingAgainstNginx(t *testing.T) {
	runwayRec, nginxRec := newRecorder(t), newRecorder(t)
	ngx := startNginx(t, nginxRec.ln.Addr().String())
	p := startProxy(t, Options{HTTPSAddr: Off})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {{Instance: "g/1", Addr: runwayRec.ln.Addr().String()}}}))

	var table strings.Builder
	table.WriteString("| case | nginx 1.22 | Runway |\n|---|---|---|\n")
	for _, c := range framingCases {
		n := send(t, ngx, c, nginxRec)
		r := send(t, p.http, c, runwayRec)
		fmt.Fprintf(&table, "| %s | %s | %s |\n", c.name, n, r)
		for _, s := range r.reached {
			if strings.Contains(s, "/smuggled") {
				t.Errorf("%s: Runway forwarded a smuggled request: %s", c.name, r)
			}
		}
		if len(n.reached) == 0 && len(r.reached) > 0 {
			t.Errorf("%s: nginx refused it (%s) but Runway forwarded it (%s)", c.name, n, r)
		}
		if len(r.reached) > len(r.statuses) {
			t.Errorf("%s: the instance saw %d requests for %d answers (%s)", c.name, len(r.reached), len(r.statuses), r)
		}
	}
	t.Log("\n" + table.String())
	if *updateFraming {
		doc := "# HTTP/1.1 framing: Runway beside nginx\n\n" +
			"Each request below is sent byte for byte to Runway's proxy and to nginx 1.22 (Debian 12), each in\n" +
			"front of an instance that parses what it receives with Go's net/http, by `TestFramingAgainstNginx`\n" +
			"(`internal/proxy/framing_test.go`). A cell gives the status codes the client read and the requests\n" +
			"the instance received. The test fails when Runway forwards what nginx refuses, when any request\n" +
			"named `/smuggled` (hidden in another's body) reaches Runway's instance, or when Runway's instance\n" +
			"sees more requests than the client got answers. Regenerate with\n" +
			"`go test -run TestFramingAgainstNginx ./internal/proxy -update-framing`.\n\n" + table.String()
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "http-framing.md"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
