package proxy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/naming"
)

func TestRoutingByHostAndPath(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	web := newBackend(t, "web-g1/i1", nil)
	api := newBackend(t, "api-g1/i1", nil)
	apiV2 := newBackend(t, "api2-g1/i1", nil)
	mustUpdate(t, p, Config{
		Routes: []Route{
			{Environment: "production", Service: "web", Hosts: []string{"web.production.localhost", "www.example.com"},
				Backends: []Backend{{Group: "web-g1", Weight: 100}}},
			{Environment: "production", Service: "api", Hosts: []string{"www.example.com"}, PathPrefix: "/api",
				Backends: []Backend{{Group: "api-g1", Weight: 1}}},
			{Environment: "production", Service: "api2", Hosts: []string{"www.example.com"}, PathPrefix: "/api/v2",
				Backends: []Backend{{Group: "api2-g1", Weight: 1}}},
		},
		Groups: map[string][]Target{"web-g1": {web.target()}, "api-g1": {api.target()}, "api2-g1": {apiV2.target()}},
	})
	c := p.client(t)
	for _, tc := range []struct{ url, want string }{
		{"http://web.production.localhost/", "web-g1/i1"},
		{"http://WEB.Production.localhost/x", "web-g1/i1"},
		{"http://www.example.com/", "web-g1/i1"},
		{"http://www.example.com/apix", "web-g1/i1"},
		{"http://www.example.com/api", "api-g1/i1"},
		{"http://www.example.com/api/users", "api-g1/i1"},
		{"http://www.example.com/api/v2", "api2-g1/i1"},
		{"http://www.example.com/api/v2/users?q=1", "api2-g1/i1"},
		{"https://www.example.com/api/v2/users", "api2-g1/i1"},
	} {
		resp, _ := get(t, c, tc.url)
		if got := resp.Header.Get("X-Backend"); resp.StatusCode != 200 || got != tc.want {
			t.Errorf("GET %s: %d from %q, want 200 from %q", tc.url, resp.StatusCode, got, tc.want)
		}
	}
}

func TestUnknownHostIs404NamingTheHost(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	resp, body := get(t, p.client(t), "http://nothing.staging.localhost/")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"nothing.staging.localhost"`) {
		t.Fatalf("got %d %q, want 404 naming the host", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain (the host is echoed)", ct)
	}
}

func TestNoHealthyTargetIs503WithRetryAfter(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	mustUpdate(t, p, oneService([]Backend{{Group: "g1", Weight: 1}}, map[string][]Target{"g1": nil}))
	resp, body := get(t, p.client(t), webURL+"/")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d (Retry-After %q) %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if c := p.Counters(webKey); c.Served != 1 || c.Failed != 1 {
		t.Errorf("counters %+v, want 1 served, 1 failed", c)
	}
}

func TestMaintenanceMode(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	b := newBackend(t, "g1/i1", nil)
	cfg := oneService([]Backend{{Group: "g1", Weight: 1}}, map[string][]Target{"g1": {b.target()}})
	cfg.Routes[0].Maintenance = "Back at 14:00 UTC: database upgrade."
	mustUpdate(t, p, cfg)
	c := p.client(t)
	resp, body := get(t, c, webURL+"/")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "database upgrade") || b.hits.Load() != 0 {
		t.Fatalf("got %d %q (backend hits %d), want 503 with the message and no forwarding", resp.StatusCode, body, b.hits.Load())
	}
	cfg.Routes[0].Maintenance = ""
	mustUpdate(t, p, cfg)
	if resp, _ := get(t, c, webURL+"/"); resp.StatusCode != 200 {
		t.Fatalf("after maintenance: %d, want 200", resp.StatusCode)
	}
	waitFor(t, "accounting", 5*time.Second, func() bool { return p.Counters(webKey).Served == 2 })
	if c := p.Counters(webKey); c.Failed != 0 {
		t.Errorf("counters %+v, want 2 served, 0 failed", c)
	}
}

func TestUpdateRejectsInvalidConfigAndKeepsTable(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	b := newBackend(t, "g1/i1", nil)
	good := oneService([]Backend{{Group: "g1", Weight: 1}}, map[string][]Target{"g1": {b.target()}})
	mustUpdate(t, p, good)
	for name, bad := range map[string]Config{
		"unknown group": oneService([]Backend{{Group: "nope", Weight: 1}}, map[string][]Target{}),
		"bad addr":      oneService([]Backend{{Group: "g1", Weight: 1}}, map[string][]Target{"g1": {{Instance: "i", Addr: "nohostport"}}}),
		"neg weight":    oneService([]Backend{{Group: "g1", Weight: -1}}, map[string][]Target{"g1": nil}),
		"host port":     {Routes: []Route{{Environment: "e", Service: "s", Hosts: []string{"a.b:80"}}}},
		"no hosts":      {Routes: []Route{{Environment: "e", Service: "s"}}},
		"dup host": {Routes: []Route{{Environment: "e", Service: "s", Hosts: []string{"a"}},
			{Environment: "e", Service: "t", Hosts: []string{"a"}}}},
		"bad prefix": {Routes: []Route{{Environment: "e", Service: "s", Hosts: []string{"a"}, PathPrefix: "api/"}}},
	} {
		if err := p.Update(bad); err == nil {
			t.Errorf("%s: Update accepted %+v", name, bad)
		}
	}
	if resp, _ := get(t, p.client(t), webURL+"/"); resp.StatusCode != 200 {
		t.Fatalf("table changed by a rejected update: %d", resp.StatusCode)
	}
}

// FuzzRouting checks the compiled lookup against a plain reference: the
// route of a request is the longest path prefix, on a segment boundary, among
// the routes of its host (lowercased, port removed); nothing panics.
func FuzzRouting(f *testing.F) {
	for _, s := range [][2]string{
		{"web.production.localhost", "/"}, {"WWW.EXAMPLE.COM:8080", "/api/v2/x"}, {"www.example.com", "/apix"},
		{"[::1]:80", "/"}, {"", ""}, {"a..b", "//api"}, {"www.example.com.", "/api/"}, {"x:y:z", "/api/v2"},
	} {
		f.Add(s[0], s[1])
	}
	routes := []Route{
		{Environment: "p", Service: "web", Hosts: []string{"web.production.localhost", "www.example.com"}},
		{Environment: "p", Service: "api", Hosts: []string{"www.example.com"}, PathPrefix: "/api"},
		{Environment: "p", Service: "v2", Hosts: []string{"www.example.com"}, PathPrefix: "/api/v2"},
		{Environment: "p", Service: "root", Hosts: []string{"root.example.com"}, PathPrefix: "/"},
		{Environment: "p", Service: "deep", Hosts: []string{"root.example.com"}, PathPrefix: "/a/b"},
	}
	cfg := Config{Routes: routes, Groups: map[string][]Target{}}
	if err := cfg.validate(); err != nil {
		f.Fatal(err)
	}
	reg := newRegistry(nil)
	tbl := compile(&cfg, tableBuilder{service: reg.service,
		target: func(agentapi.RouteKey, string, Target) *target { return nil },
		stats:  func(agentapi.RouteKey, string) *groupStats { return nil }})
	f.Fuzz(func(t *testing.T, host, path string) {
		var got *route
		h, ok := naming.NormalizeHost(host)
		if ok {
			got = tbl.lookup(h, path)
		}
		want := ""
		best := -1
		if ok {
			for _, r := range routes {
				p := strings.TrimSuffix(r.PathPrefix, "/")
				for _, rh := range r.Hosts {
					if rh == h && (p == "" || path == p || strings.HasPrefix(path, p+"/")) && len(p) > best {
						best, want = len(p), r.Service
					}
				}
			}
		}
		switch {
		case got == nil && want != "":
			t.Fatalf("host %q path %q: no route, want %s", host, path, want)
		case got != nil && got.key.Service != want:
			t.Fatalf("host %q path %q: routed to %s, want %q", host, path, got.key, want)
		}
		if ok && (strings.ContainsAny(h, ":/ ") && h[0] != '[' || h != strings.ToLower(h)) {
			t.Fatalf("NormalizeHost(%q) = %q", host, h)
		}
	})
}

// A request that read the table just before an Update removed its whole
// route gets a 503 from the route it had, not a crash.
func TestPickAfterRouteRemoved(t *testing.T) {
	p, err := New(Options{HTTPAddr: Off, HTTPSAddr: Off})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Update(oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {{Instance: "i", Addr: "127.0.0.1:1"}}})); err != nil {
		t.Fatal(err)
	}
	rt := p.table.Load().lookup("web.production.localhost", "/")
	if err := p.Update(Config{}); err != nil {
		t.Fatal(err)
	}
	g, tg, _ := p.pickAcquire(&rt, "web.production.localhost", "/", "", 0)
	if g != nil || tg != nil || rt == nil {
		t.Fatalf("pickAcquire = %v, %v with route %v; want nothing picked and the old route kept", g, tg, rt)
	}
}
