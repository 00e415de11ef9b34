package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/naming"
)

// Shared helpers of the proxy tests: a started proxy on free loopback ports,
// backends that say who they are, and clients that reach the proxy whatever
// host name the URL carries.

type testProxy struct {
	*Proxy
	reg   *prometheus.Registry
	http  string // host:port of the HTTP listener
	https string
}

func startProxy(t testing.TB, opts Options) *testProxy {
	t.Helper()
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = "127.0.0.1:0"
	}
	if opts.HTTPSAddr == "" {
		opts.HTTPSAddr = "127.0.0.1:0"
	}
	if opts.CADir == "" {
		opts.CADir = t.TempDir()
	}
	reg := prometheus.NewRegistry()
	if opts.Registerer == nil {
		opts.Registerer = reg
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	tp := &testProxy{Proxy: p, reg: reg, http: p.HTTPAddr().String()}
	if a := p.HTTPSAddr(); a != nil {
		tp.https = a.String()
	}
	return tp
}

// client returns an HTTP client whose connections all go to the proxy
// (HTTP or HTTPS listener by scheme), so URLs can use the routed host names.
func (tp *testProxy) client(t *testing.T) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(tp.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	d := &net.Dialer{}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if _, port, _ := net.SplitHostPort(addr); port == "443" {
				return d.DialContext(ctx, network, tp.https)
			}
			return d.DialContext(ctx, network, tp.http)
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 100,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func (tp *testProxy) clientWithJar(t *testing.T) *http.Client {
	c := tp.client(t)
	jar, _ := cookiejar.New(nil)
	c.Jar = jar
	return c
}

// backend is a real HTTP server that names its group and instance in the
// X-Backend header and body, and counts the requests it received.
type backend struct {
	*httptest.Server
	name string // group/instance
	hits atomic.Int64
}

func newBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("X-Backend", name)
		if h != nil {
			h(w, r)
			return
		}
		fmt.Fprintf(w, "hello from %s\n", name)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) addr() string { return b.Listener.Addr().String() }

func (b *backend) target() Target {
	return Target{Instance: b.name, Addr: b.addr()}
}

// webKey is the route of oneService.
var webKey = agentapi.RouteKey{Environment: "production", Service: "web"}

// oneService is the config of service "web" in "production" served by groups.
func oneService(backends []Backend, groups map[string][]Target) Config {
	return Config{
		Routes: []Route{{Environment: "production", Service: "web",
			Hosts: []string{naming.Service("web", "production", "")}, Backends: backends}},
		Groups: groups,
	}
}

const webURL = "http://web.production.localhost"

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not a stand-in for the condition
	}
}

func mustUpdate(t *testing.T, p *testProxy, c Config) {
	t.Helper()
	if err := p.Update(c); err != nil {
		t.Fatal(err)
	}
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
