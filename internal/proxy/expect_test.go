package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestExpectContinueAnsweredByTheProxy: a client that sends Expect:
// 100-continue gets its 100 from the proxy, and the instance gets the
// request without Expect (as behind nginx), with its body.
func TestExpectContinueAnsweredByTheProxy(t *testing.T) {
	type seen struct{ expect, body string }
	got := make(chan seen, 1)
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Header.Get("Expect"), string(body)}
	})
	p := startProxy(t, Options{HTTPSAddr: Off})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {b.target()}}))
	c, err := net.Dial("tcp", p.http)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "POST /a HTTP/1.1\r\nHost: web.production.localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue first, got %v %v", resp, err)
	}
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatal(err)
	}
	if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("want 200, got %v %v", resp, err)
	}
	if s := <-got; s.expect != "" || s.body != "hello" {
		t.Fatalf("the instance saw Expect %q and body %q; want no Expect and \"hello\"", s.expect, s.body)
	}
}
