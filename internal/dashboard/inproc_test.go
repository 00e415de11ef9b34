package dashboard

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestAPITransport: a response streams as the handler writes it (the
// header and the first line before the handler ends), the caller's address
// reaches the handler, and the client's context ends the handler's.
func TestAPITransport(t *testing.T) {
	next := make(chan struct{})
	ended := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Remote", r.RemoteAddr)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "first\n")
		_ = http.NewResponseController(w).Flush()
		<-next
		_, _ = io.WriteString(w, "second\n")
		<-r.Context().Done()
		ended <- r.Context().Err()
	})
	ctx, cancel := context.WithTimeout(withRemote(context.Background(), "192.0.2.7:5555"), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://runway.internal/v1/x", nil)
	resp, err := (&http.Client{Transport: apiTransport{h}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Remote") != "192.0.2.7:5555" {
		t.Fatalf("status %d, X-Remote %q", resp.StatusCode, resp.Header.Get("X-Remote"))
	}
	rd := bufio.NewReader(resp.Body)
	if l, err := rd.ReadString('\n'); err != nil || l != "first\n" {
		t.Fatalf("first line before the handler went on: %q, %v", l, err)
	}
	close(next)
	if l, err := rd.ReadString('\n'); err != nil || l != "second\n" {
		t.Fatalf("second line: %q, %v", l, err)
	}
	cancel()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the handler's context did not end")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler did not see the client's context end")
	}
}
