package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/httpjson"
)

const token = "rwt_client-test-token-never-shown"

func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:7040", "ftp://x", "http://", "://x"} {
		if _, err := New(u, token); err == nil || !strings.Contains(err.Error(), "want http(s)://host:port") {
			t.Errorf("New(%q) = %v", u, err)
		}
	}
	c, err := New("http://127.0.0.1:7040/", token)
	if err != nil || c.base != "http://127.0.0.1:7040" {
		t.Fatalf("New = %+v, %v", c, err)
	}
}

// recorder is a real HTTP server that keeps the requests it got and answers
// with reply.
type recorder struct {
	mu    sync.Mutex
	reqs  []*http.Request
	body  [][]byte
	reply http.HandlerFunc
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs, rc.body = append(rc.reqs, r), append(rc.body, b)
	rc.mu.Unlock()
	rc.reply(w, r)
}

func serve(t *testing.T, reply http.HandlerFunc) (*Client, *recorder) {
	t.Helper()
	rc := &recorder{reply: reply}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, token)
	if err != nil {
		t.Fatal(err)
	}
	return c, rc
}

// TestRequestShape: a change carries the token, the digest of the body as
// sent, and an id and time the client chose; path parts are escaped.
func TestRequestShape(t *testing.T) {
	c, rc := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			httpjson.Write(w, http.StatusOK, []any{})
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]any{})
	})
	before := time.Now().UTC()
	if err := c.Halt(context.Background(), "01JD/../x", "bad canary"); err != nil {
		t.Fatal(err)
	}
	r, body := rc.reqs[0], rc.body[0]
	if r.Method != http.MethodPost || r.URL.EscapedPath() != "/v1/releases/01JD%2F..%2Fx/halt" {
		t.Errorf("request %s %s", r.Method, r.URL.EscapedPath())
	}
	if r.Header.Get("Authorization") != "Bearer "+token || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", r.Header)
	}
	if got := r.Header.Get(apiwire.DigestHeader); got != apiwire.ContentDigest(body) {
		t.Errorf("digest %q, want that of the body sent %q", got, apiwire.ContentDigest(body))
	}
	var h apiwire.HaltRequest
	if err := httpjson.Decode(body, &h); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if len(h.RequestID) != 26 || h.Reason != "bad canary" || h.RequestedAt.Before(before.Add(-time.Second)) || h.RequestedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("halt request %+v", h)
	}
	// A read has no body and no digest.
	if _, err := c.Releases(context.Background(), apiwire.ReleaseFilter{Project: "acme", Service: "web", Limit: 5}); err != nil {
		t.Fatal(err)
	}
	r = rc.reqs[1]
	if r.Method != http.MethodGet || r.URL.Path != "/v1/releases" || r.URL.Query().Get("project") != "acme" || r.URL.Query().Get("limit") != "5" ||
		r.URL.Query().Has("environment") || r.Header.Get(apiwire.DigestHeader) != "" {
		t.Errorf("list request %s %s %v", r.Method, r.URL, r.Header)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("problem", func(t *testing.T) {
		p := apiwire.Problemf(http.StatusConflict, apiwire.KindHostConflict, "host web.acme.com is served by api")
		c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) { httpjson.WriteProblem(w, p.Status, p) })
		_, err := c.Deploy(ctx, apiwire.DeployRequest{})
		var e *Error
		if !errors.As(err, &e) || e.Status != 409 || e.Kind != apiwire.KindHostConflict || err.Error() != "host web.acme.com is served by api" {
			t.Fatalf("err %#v", err)
		}
		if !IsKind(err, apiwire.KindHostConflict) || IsKind(err, apiwire.KindNotFound) || IsKind(errors.New("x"), apiwire.KindHostConflict) {
			t.Error("IsKind")
		}
	})
	t.Run("not a problem", func(t *testing.T) {
		page := "<html>bad gateway</html>" + strings.Repeat("x", 1<<20)
		c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, page)
		})
		err := c.Health(ctx)
		var e *Error
		if !errors.As(err, &e) || e.Status != 502 || !strings.Contains(err.Error(), "GET /v1/health: 502 Bad Gateway <html>bad gateway</html>") {
			t.Fatalf("err %v", err)
		}
		if len(err.Error()) > maxErrorBody+100 {
			t.Errorf("the error quotes %d bytes of the page", len(err.Error()))
		}
	})
	t.Run("bad response", func(t *testing.T) {
		c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"id":`) })
		if _, err := c.Whoami(ctx); err == nil || !strings.Contains(err.Error(), "decode response of GET /v1/whoami") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c, _ := New("http://"+addr, token)
		err = c.Health(ctx)
		if err == nil || !strings.Contains(err.Error(), "reach Runway server at http://"+addr) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := c.Health(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
}

// TestTokenNeverInErrors: whatever fails, the token is not in the message.
func TestTokenNeverInErrors(t *testing.T) {
	c, _ := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"echo": "no problem body"})
	})
	for _, err := range []error{c.Health(context.Background()), func() error { _, err := c.Whoami(context.Background()); return err }()} {
		if err == nil || strings.Contains(err.Error(), token) {
			t.Fatalf("err %v", err)
		}
	}
}
