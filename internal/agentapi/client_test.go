package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/httpjson"
)

type transient interface{ Transient() bool }

func isTransient(err error) bool {
	var t transient
	return errors.As(err, &t) && t.Transient()
}

// TestClientTimeouts: a call to an agent that does not answer ends at the
// client's timeout (extended by WithWait) with a transient error that says
// so; refused connections and 5xx are transient, 4xx are not.
func TestClientTimeouts(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/health":
			select { // a stopped agent: nothing comes back
			case <-release:
			case <-r.Context().Done():
			}
		case "/v1/groups/broken":
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(Problem{Type: httpjson.TypeURI("not-found"), Title: "Not Found", Status: http.StatusNotFound, Detail: "no group"})
		}
	}))
	defer srv.Close()
	defer close(release)
	c := NewClient(srv.URL, "token-never-printed-0123456789abcdef")
	c.Timeout = 200 * time.Millisecond

	start := time.Now()
	_, err := c.Health(context.Background())
	var ce *CallError
	if !errors.As(err, &ce) || ce.Timeout != 200*time.Millisecond || !isTransient(err) || !strings.Contains(err.Error(), "did not answer within 200ms") {
		t.Errorf("call to a silent agent: %v, want a transient CallError naming the timeout", err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("the call ended after %s, before its timeout", took)
	}
	if strings.Contains(err.Error(), "token-never-printed") {
		t.Error("the error shows the token")
	}

	start = time.Now()
	_, err = c.Health(WithWait(context.Background(), 300*time.Millisecond))
	if !errors.As(err, &ce) || ce.Timeout != 500*time.Millisecond {
		t.Errorf("call with WithWait: %v, want a timeout of 500ms", err)
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Errorf("the extended call ended after %s, before its timeout", took)
	}

	// The caller's own cancellation is not reported as the agent's silence.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err = c.Health(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("call cancelled by its caller: %v, want the caller's context error", err)
	}

	if _, err := c.Group(context.Background(), "broken"); !isTransient(err) {
		t.Errorf("5xx answer: %v, want transient", err)
	}
	if _, err := c.Group(context.Background(), "missing"); isTransient(err) || !IsNotFound(err) {
		t.Errorf("404 answer: %v, want a permanent not-found", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := NewClient("http://"+addr, "x").Health(context.Background()); !isTransient(err) || !strings.Contains(err.Error(), "is `runway agent` running?") {
		t.Errorf("refused connection: %v, want transient", err)
	}
}
