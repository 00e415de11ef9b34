package proxy

import (
	"net"
	"net/http"
	"testing"
)

// Listeners passed in Options (socket activation) are served instead of
// binding the addresses, which are then ignored.
func TestStartServesPassedListeners(t *testing.T) {
	t.Parallel()
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	be := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("from a")) })
	// Addresses that cannot be bound: only the passed sockets may be used.
	p := startProxy(t, Options{HTTPAddr: "192.0.2.1:1", HTTPSAddr: "192.0.2.1:2", HTTPListener: lns[0], HTTPSListener: lns[1]})
	if p.http != lns[0].Addr().String() || p.HTTPSAddr().String() != lns[1].Addr().String() {
		t.Fatalf("proxy serves %s and %s, want the passed %s and %s", p.http, p.HTTPSAddr(), lns[0].Addr(), lns[1].Addr())
	}
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 100}}, map[string][]Target{"g": {be.target()}}))
	for _, url := range []string{webURL + "/", "https://web.production.localhost/"} {
		resp, body := get(t, p.client(t), url)
		if resp.StatusCode != http.StatusOK || body != "from a" {
			t.Errorf("GET %s: %d %q, want 200 \"from a\"", url, resp.StatusCode, body)
		}
	}
}

func TestStartRefusesHTTPSListenerWithoutCA(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, err := New(Options{HTTPAddr: Off, HTTPSListener: ln})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err == nil {
		p.Close()
		t.Fatal("Start with an HTTPS listener and no CA succeeded")
	}
}
