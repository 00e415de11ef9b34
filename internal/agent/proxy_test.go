package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/proxy"
)

// startAgentWithProxy runs an in-process agent with a real embedded proxy on
// free loopback ports; it returns the agent, a client and the proxy's URL.
func startAgentWithProxy(t *testing.T, drain time.Duration) (*proxy.Proxy, *agentapi.Client, string) {
	t.Helper()
	p, c, url, stop := runAgentWithProxy(t, t.TempDir(), drain)
	t.Cleanup(stop)
	return p, c, url
}

// runAgentWithProxy is startAgentWithProxy on data dir dir until stop is
// called (which stops the instances too).
func runAgentWithProxy(t *testing.T, dir string, drain time.Duration) (*proxy.Proxy, *agentapi.Client, string, func()) {
	t.Helper()
	p, err := proxy.New(proxy.Options{HTTPAddr: "127.0.0.1:0", HTTPSAddr: proxy.Off, DrainTimeout: drain})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{DataDir: dir, Listen: "127.0.0.1:0", StopInstances: true, Proxy: p,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	opts.PortMin, opts.PortMax = portRange()
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent Run: %v", err)
			}
		})
	}
	waitFor(t, 30*time.Second, "proxy listening", func() bool { return p.HTTPAddr() != nil })
	return p, agentapi.NewClient(a.URL(), a.Token()), "http://" + p.HTTPAddr().String(), stop
}

// webDev is the route key of service web in development, without a project.
var webDev = agentapi.RouteKey{Environment: "development", Service: "web"}

func proxyGet(url, host string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestDrainBeforeStop switches a route from group a to group b while
// 5-second requests run on a, then deletes a: every slow request completes
// with 200, and a's processes are stopped only after the last one finished.
func TestDrainBeforeStop(t *testing.T) {
	mark := testMark(t)
	p, c, proxyURL := startAgentWithProxy(t, 30*time.Second)
	ctx := context.Background()
	const host = "hello.development.localhost"
	specA, specB := helloSpec("hello-a", mark, 2), helloSpec("hello-b", mark, 2)
	specB.Version = "2.0.0"
	for _, s := range []string{"hello-a", "hello-b"} {
		spec := specA
		if s == "hello-b" {
			spec = specB
		}
		if _, _, err := c.CreateGroup(ctx, spec); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, s+" healthy", func() bool {
			g, err := c.Group(ctx, s)
			return err == nil && g.Counts["healthy"] == 2
		})
	}
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{host},
		Backends: []agentapi.Backend{{Group: "hello-a", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "route to a", func() bool {
		code, body, _ := proxyGet(proxyURL+"/", host)
		return code == 200 && strings.Contains(body, "v1.0.0")
	})
	ga, _ := c.Group(ctx, "hello-a")
	var pids []int
	for _, in := range ga.Instances {
		pids = append(pids, in.PID)
	}

	// Start slow requests on a, and make sure each reached a target.
	const slow = 8
	type result struct {
		code int
		body string
		err  error
		at   time.Time
	}
	results := make(chan result, slow)
	var started sync.WaitGroup
	for i := 0; i < slow; i++ {
		started.Add(1)
		go func() {
			started.Done()
			code, body, err := proxyGet(proxyURL+"/slow?ms=5000", host)
			results <- result{code, body, err, time.Now()}
		}()
	}
	started.Wait()
	waitFor(t, 30*time.Second, "slow requests in flight", func() bool {
		var n int64
		for _, ts := range p.Targets() {
			if ts.Group == "hello-a" {
				n += ts.InFlight
			}
		}
		return n >= slow
	})

	// Switch to b: new requests go to b at once.
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{host},
		Backends: []agentapi.Backend{{Group: "hello-b", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "route to b", func() bool {
		_, body, _ := proxyGet(proxyURL+"/", host)
		return strings.Contains(body, "v2.0.0")
	})
	for i := 0; i < 20; i++ {
		if code, body, err := proxyGet(proxyURL+"/", host); err != nil || code != 200 || !strings.Contains(body, "v2.0.0") {
			t.Fatalf("after the switch: %d %q %v", code, body, err)
		}
	}
	// Delete a and wait: the agent drains it through the proxy first.
	if err := c.DeleteGroup(ctx, "hello-a", true, 0); err != nil {
		t.Fatal(err)
	}
	deletedAt := time.Now()
	var last time.Time
	for i := 0; i < slow; i++ {
		r := <-results
		if r.err != nil || r.code != 200 || !strings.Contains(r.body, "v1.0.0") {
			t.Errorf("slow request: %d %q %v", r.code, r.body, r.err)
		}
		if r.at.After(last) {
			last = r.at
		}
	}
	if deletedAt.Before(last) {
		t.Errorf("group a was deleted at %s, before its last request finished at %s", deletedAt.Format(time.StampMilli), last.Format(time.StampMilli))
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
				t.Errorf("instance pid %d of the deleted group still runs", pid)
			}
		}
	}
}

// TestPathPrefixAndMaintenance routes one host's /api to another service
// through the agent API, then puts a service in maintenance and out again.
func TestPathPrefixAndMaintenance(t *testing.T) {
	mark := testMark(t)
	_, c, proxyURL := startAgentWithProxy(t, 5*time.Second)
	ctx := context.Background()
	const host = "hello.development.localhost"
	web := helloSpec("web-a", mark, 1)
	web.Service = "web"
	api := helloSpec("api-a", mark, 1)
	api.Service, api.Version = "api", "9.0.0"
	for _, s := range []string{"web-a", "api-a"} {
		spec := web
		if s == "api-a" {
			spec = api
		}
		if _, _, err := c.CreateGroup(ctx, spec); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, s+" healthy", func() bool {
			g, err := c.Group(ctx, s)
			return err == nil && g.Counts["healthy"] == 1
		})
	}
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "web", Hosts: []string{host},
		Backends: []agentapi.Backend{{Group: "web-a", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "api", Hosts: []string{host}, PathPrefix: "/slow",
		Backends: []agentapi.Backend{{Group: "api-a", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "api", Hosts: []string{host}, PathPrefix: "slow"}); err == nil {
		t.Fatal("a path prefix without a leading / was accepted")
	}
	waitFor(t, 30*time.Second, "both routes", func() bool {
		_, a, _ := proxyGet(proxyURL+"/", host)
		_, b, _ := proxyGet(proxyURL+"/slow?ms=1", host)
		return strings.Contains(a, "v1.0.0") && strings.Contains(b, "v9.0.0")
	})

	if err := c.SetMaintenance(ctx, webDev, "back at ten"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "maintenance page", func() bool {
		code, body, _ := proxyGet(proxyURL+"/", host)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "back at ten")
	})
	// A route update (as a release makes) keeps the maintenance page on.
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "web", Hosts: []string{host},
		Backends: []agentapi.Backend{{Group: "web-a", Weight: 2}}}); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := proxyGet(proxyURL+"/", host); code != http.StatusServiceUnavailable {
		t.Fatalf("a route update ended maintenance: %d", code)
	}
	if code, body, _ := proxyGet(proxyURL+"/slow?ms=1", host); code != 200 || !strings.Contains(body, "v9.0.0") {
		t.Fatalf("maintenance of web reached api: %d %q", code, body)
	}
	if err := c.SetMaintenance(ctx, webDev, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "maintenance off", func() bool {
		code, body, _ := proxyGet(proxyURL+"/", host)
		return code == 200 && strings.Contains(body, "v1.0.0")
	})
	st, err := c.Stats(ctx, webDev, 30*time.Second)
	if err != nil || st["web-a"].Requests == 0 {
		t.Fatalf("stats of web: %+v %v", st, err)
	}
	if _, err := c.Stats(ctx, webDev, 2*time.Hour); err == nil {
		t.Fatal("a stats window longer than the proxy keeps was accepted")
	}
	cnt, err := c.Counters(ctx, webDev)
	if err != nil || cnt.Served == 0 {
		t.Fatalf("counters of web: %+v %v", cnt, err)
	}
}
