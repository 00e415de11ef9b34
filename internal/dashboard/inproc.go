package dashboard

import (
	"context"
	"io"
	"net/http"
	"sync"
)

// apiTransport sends a client's requests to the API handler in process:
// no socket, no second copy of any rule. The response streams (the API's
// server-sent events pass through it as they are written).
type apiTransport struct {
	h http.Handler
}

type remoteKey struct{}

// withRemote makes the API see addr (the browser's) as the caller's address:
// the audit log and the failed-authentication limit use it.
func withRemote(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

func (t apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	sr := req.Clone(req.Context())
	sr.RequestURI = req.URL.RequestURI()
	sr.RemoteAddr, _ = req.Context().Value(remoteKey{}).(string)
	if sr.RemoteAddr == "" {
		sr.RemoteAddr = "127.0.0.1:0"
	}
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{}), status: http.StatusOK}
	go func() {
		defer func() {
			w.start()
			_ = pw.Close()
		}()
		t.h.ServeHTTP(w, sr)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		_ = pr.Close()
		return nil, req.Context().Err()
	}
	return &http.Response{Status: http.StatusText(w.status), StatusCode: w.status, Header: w.sent, Body: pr, Request: req,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, ContentLength: -1}, nil
}

// pipeWriter is the API handler's ResponseWriter: the header goes out on
// the first write (or flush), the body through a pipe to the client.
type pipeWriter struct {
	header http.Header
	sent   http.Header
	pw     *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
	status int
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.status = code
		w.sent = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) start() { w.WriteHeader(http.StatusOK) }

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.start()
	return w.pw.Write(p)
}

// Flush sends the header; the pipe hands every write over as it is made.
func (w *pipeWriter) Flush() { w.start() }
