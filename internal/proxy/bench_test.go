package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServeHTTP is the whole request path in process: route lookup,
// balancing, forwarding over a pooled connection to a real backend, and
// accounting. Its allocations are what the proxy adds per request.
func BenchmarkServeHTTP(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Hello, World!"))
	}))
	defer backend.Close()
	p, err := New(Options{HTTPAddr: Off, HTTPSAddr: Off})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	err = p.Update(oneService([]Backend{{Group: "g", Weight: 1}},
		map[string][]Target{"g": {{Instance: "i", Addr: backend.Listener.Addr().String()}}}))
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", webURL+"/", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := &discardWriter{h: http.Header{}}
		p.ServeHTTP(w, req)
		if w.code != 0 && w.code != 200 {
			b.Fatal(w.code)
		}
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }

// BenchmarkProxyHTTP1 is a keep-alive client on loopback TCP against the
// proxy's HTTP listener, with and without the fast path (fastpath.go), to a
// real backend in process. The client parses nothing it does not need, so
// allocations are the proxy's and the backend's (the same in both).
func BenchmarkProxyHTTP1(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Hello, World!"))
	}))
	defer backend.Close()
	for _, mode := range []struct {
		name string
		fast bool
	}{{"net-http", false}, {"fast-path", true}} {
		b.Run(mode.name, func(b *testing.B) {
			p := startProxy(b, Options{HTTPSAddr: Off, FastPath: fastPathMode(mode.fast)})
			err := p.Update(oneService([]Backend{{Group: "g", Weight: 1}},
				map[string][]Target{"g": {{Instance: "i", Addr: backend.Listener.Addr().String()}}}))
			if err != nil {
				b.Fatal(err)
			}
			c, err := net.Dial("tcp", p.http)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET / HTTP/1.1\r\nHost: web.production.localhost\r\nUser-Agent: bench\r\n\r\n")
			br := bufio.NewReaderSize(c, 4096)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := readSmallResponse(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// readSmallResponse reads one 200 response with a Content-Length.
func readSmallResponse(br *bufio.Reader) error {
	n := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first && !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
			return fmt.Errorf("status line %q", line)
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(k) == "Content-Length" {
			n = 0
			for _, c := range bytes.TrimSpace(v) {
				n = n*10 + int(c-'0')
			}
		}
	}
	if n < 0 {
		return fmt.Errorf("no Content-Length")
	}
	_, err := br.Discard(n)
	return err
}
