package proxy

import (
	"io"
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
