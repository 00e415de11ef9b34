package k8stest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPodNet: a process of the namespace listening on a pod's address is
// reached through Dial; another pod address is unreachable at once (no
// route: nothing leaves the namespace); Forward reaches a listener of the
// machine from inside.
func TestPodNet(t *testing.T) {
	n := NewPodNet(t)
	if err := n.AddAddr("10.244.3.7"); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	var err error
	if ierr := n.in(func() { ln, err = net.Listen("tcp", "10.244.3.7:8080") }); ierr != nil || err != nil {
		t.Fatal(ierr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pod") })}
	go srv.Serve(ln)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: n.Dial}, Timeout: 10 * time.Second}
	resp, err := client.Get("http://10.244.3.7:8080/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "pod" {
		t.Errorf("body %q", body)
	}
	start := time.Now()
	if _, err := n.Dial(context.Background(), "tcp", "10.244.3.8:8080"); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("dial of an address no process holds: %v, want network unreachable", err)
	}
	t.Logf("unreachable in %s", time.Since(start))

	host, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	go func() {
		c, err := host.Accept()
		if err == nil {
			io.WriteString(c, "machine")
			c.Close()
		}
	}()
	fwd, err := n.Forward(host.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.Dial(context.Background(), "tcp", fwd)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "machine" {
		t.Errorf("through Forward: %q", got)
	}
	// The namespace's loopback is not the machine's: the machine's listener
	// is not there.
	if c, err := n.Dial(context.Background(), "tcp", host.Addr().String()); err == nil {
		c.Close()
		t.Errorf("the machine's listener %s reached inside the namespace", host.Addr())
	}
}
