package agent

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/supervisor"
)

// createHealthy creates the groups and waits until each has its instances healthy.
func createHealthy(t *testing.T, c *agentapi.Client, specs ...agentapi.GroupSpec) {
	t.Helper()
	ctx := context.Background()
	for _, s := range specs {
		if _, _, err := c.CreateGroup(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range specs {
		waitFor(t, 30*time.Second, s.Name+" healthy", func() bool {
			g, err := c.Group(ctx, s.Name)
			return err == nil && g.Counts["healthy"] == s.Instances
		})
	}
}

func serviceSpec(name, mark, project, service, version string) agentapi.GroupSpec {
	s := helloSpec(name, mark, 1)
	s.Project, s.Service, s.Version = project, service, version
	return s
}

// waitServes waits until the proxy answers host with a body naming version.
func waitServes(t *testing.T, proxyURL, host, version string) {
	t.Helper()
	waitFor(t, 30*time.Second, host+" serving v"+version, func() bool {
		code, body, _ := proxyGet(proxyURL+"/", host)
		return code == 200 && strings.Contains(body, "v"+version)
	})
}

// TestRoutesOfProjectsPreviewsAndRestart: two projects' "web" in
// "development" and a service "pv-preview" next to the preview of "pv" are
// four routes that each serve their own group through the real proxy, keep
// their own counters, and all serve again after the agent restarts.
func TestRoutesOfProjectsPreviewsAndRestart(t *testing.T) {
	mark := testMark(t)
	dir := t.TempDir()
	ctx := context.Background()
	_, c, proxyURL, stop := runAgentWithProxy(t, dir, 5*time.Second)
	defer func() { stop() }()
	createHealthy(t, c,
		serviceSpec("web-a", mark, "a", "web", "1.0.1"), serviceSpec("web-b", mark, "b", "web", "1.0.2"),
		serviceSpec("pv-r1", mark, "", "pv", "1.0.3"), serviceSpec("pvp-r1", mark, "", "pv-preview", "1.0.4"))
	keyA := agentapi.RouteKey{Project: "a", Environment: "development", Service: "web"}
	keyB := agentapi.RouteKey{Project: "b", Environment: "development", Service: "web"}
	keyPvPreview := agentapi.RouteKey{Environment: "development", Service: "pv", Preview: true}
	keyPvDash := agentapi.RouteKey{Environment: "development", Service: "pv-preview"}
	routes := []struct {
		key     agentapi.RouteKey
		host    string
		group   string
		version string
		n       uint64
	}{
		{keyA, "web.a.test", "web-a", "1.0.1", 3},
		{keyB, "web.b.test", "web-b", "1.0.2", 5},
		{keyPvPreview, "pv.preview.test", "pv-r1", "1.0.3", 2},
		{keyPvDash, "pv-preview.development.localhost", "pvp-r1", "1.0.4", 4},
	}
	for _, r := range routes {
		rt := agentapi.Route{Project: r.key.Project, Environment: r.key.Environment, Service: r.key.Service, Preview: r.key.Preview,
			Hosts: []string{r.host}, Backends: []agentapi.Backend{{Group: r.group, Weight: 1}}}
		if _, err := c.PutRoute(ctx, rt); err != nil {
			t.Fatalf("put %s: %v", r.key, err)
		}
	}
	for _, r := range routes {
		waitServes(t, proxyURL, r.host, r.version)
		got, err := c.Route(ctx, r.key)
		if err != nil || got.Key() != r.key || got.Backends[0].Group != r.group {
			t.Errorf("GET route %s: %+v %v", r.key, got, err)
		}
	}
	if _, err := c.Route(ctx, agentapi.RouteKey{Environment: "development", Service: "web"}); !agentapi.IsNotFound(err) {
		t.Errorf("development/web without a project: %v, want 404", err)
	}
	if _, err := c.Route(ctx, agentapi.RouteKey{Environment: "development", Service: "pv"}); !agentapi.IsNotFound(err) {
		t.Errorf("pv's own route (only its preview exists): %v, want 404", err)
	}
	before := map[agentapi.RouteKey]uint64{}
	for _, r := range routes {
		cnt, err := c.Counters(ctx, r.key)
		if err != nil {
			t.Fatal(err)
		}
		before[r.key] = cnt.Served
	}
	for _, r := range routes {
		for range r.n {
			if code, body, err := proxyGet(proxyURL+"/", r.host); err != nil || code != 200 || !strings.Contains(body, "v"+r.version) {
				t.Fatalf("%s: %d %q %v", r.host, code, body, err)
			}
		}
	}
	for _, r := range routes {
		waitFor(t, 30*time.Second, "counters of "+r.key.String(), func() bool {
			cnt, err := c.Counters(ctx, r.key)
			return err == nil && cnt.Served-before[r.key] == r.n
		})
		st, err := c.Stats(ctx, r.key, time.Minute)
		if err != nil || len(st) != 1 || st[r.group].Requests == 0 {
			t.Errorf("stats of %s: %+v %v, want only group %s", r.key, st, err, r.group)
		}
	}

	// A route sends traffic only to its own project's and service's groups.
	cross := []agentapi.Route{
		{Project: "a", Environment: "development", Service: "web", Hosts: []string{"web.a.test"}, Backends: []agentapi.Backend{{Group: "web-b", Weight: 1}}},
		{Environment: "development", Service: "web", Hosts: []string{"web.none.test"}, Backends: []agentapi.Backend{{Group: "web-a", Weight: 1}}},
		{Environment: "development", Service: "pv-preview", Hosts: []string{"pv-preview.development.localhost"}, Backends: []agentapi.Backend{{Group: "pv-r1", Weight: 1}}},
		{Environment: "development", Service: "pv", Preview: true, Hosts: []string{"pv.preview.test"}, Backends: []agentapi.Backend{{Group: "pvp-r1", Weight: 1}}},
	}
	for _, rt := range cross {
		_, err := c.PutRoute(ctx, rt)
		problemOf(t, err, 400, "backends[0].group")
	}
	// Body and URL must agree on the key.
	for body, field := range map[string]string{
		`{"project":"b","backends":[]}`:  "project",
		`{"preview":true,"backends":[]}`: "preview",
	} {
		req, _ := http.NewRequest(http.MethodPut, c.BaseURL+"/v1/routes/development/web?project=a", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		problemOf(t, agentapi.DecodeProblem(resp), 400, field)
		resp.Body.Close()
	}
	for path, field := range map[string]string{
		"/v1/routes/development/web?project=A":     "project",
		"/v1/routes/development/web?preview=maybe": "preview",
		"/v1/counters/development/web?project=a/b": "project",
	} {
		req, _ := http.NewRequest(http.MethodGet, c.BaseURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		problemOf(t, agentapi.DecodeProblem(resp), 400, field)
		resp.Body.Close()
	}
	for _, r := range routes { // nothing above changed a route
		waitServes(t, proxyURL, r.host, r.version)
	}

	// After a restart every route serves again.
	stop()
	_, c2, proxyURL2, stop2 := runAgentWithProxy(t, dir, 5*time.Second)
	stop = stop2
	rs, err := c2.Routes(ctx)
	if err != nil || len(rs) != len(routes) {
		t.Fatalf("routes after restart: %+v %v", rs, err)
	}
	for _, r := range routes {
		waitServes(t, proxyURL2, r.host, r.version)
	}
}

// TestRouteTheProxyCannotLoadIsRefused: a wildcard host, and a path prefix
// "/" on a host another route serves without a prefix, are refused with a
// 4xx naming the field; the routes file and the proxy's table do not change,
// and other routes' updates keep reaching the proxy.
func TestRouteTheProxyCannotLoadIsRefused(t *testing.T) {
	mark := testMark(t)
	dir := t.TempDir()
	ctx := context.Background()
	_, c, proxyURL, stop := runAgentWithProxy(t, dir, 5*time.Second)
	defer stop()
	web1, web2 := serviceSpec("web-r1", mark, "", "web", "2.0.1"), serviceSpec("web-r2", mark, "", "web", "2.0.2")
	api := serviceSpec("api-r1", mark, "", "api", "2.0.3")
	createHealthy(t, c, web1, web2, api)
	const host = "shop.test"
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "web", Hosts: []string{host},
		Backends: []agentapi.Backend{{Group: "web-r1", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "api", Hosts: []string{"api.test"},
		Backends: []agentapi.Backend{{Group: "api-r1", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	waitServes(t, proxyURL, host, "2.0.1")
	routesFile := filepath.Join(dir, "routes.json")
	saved, err := os.ReadFile(routesFile)
	if err != nil {
		t.Fatal(err)
	}

	refused := []struct {
		route  agentapi.Route
		status int
		field  string
		says   string
	}{
		{agentapi.Route{Environment: "development", Service: "api", Hosts: []string{"api.test", "*.wild.test"}, Backends: []agentapi.Backend{{Group: "api-r1", Weight: 1}}},
			400, "hosts[1]", "wildcard"},
		{agentapi.Route{Environment: "development", Service: "api", Hosts: []string{host}, PathPrefix: "/", Backends: []agentapi.Backend{{Group: "api-r1", Weight: 1}}},
			409, "hosts[0]", "development/web"},
		{agentapi.Route{Environment: "development", Service: "api", Hosts: []string{"api.test"}, PathPrefix: "/api/", Backends: []agentapi.Backend{{Group: "api-r1", Weight: 1}}},
			400, "path_prefix", "trailing"},
		{agentapi.Route{Environment: "development", Service: "api", Hosts: []string{"api.test:8080"}, Backends: []agentapi.Backend{{Group: "api-r1", Weight: 1}}},
			400, "hosts[0]", "port"},
		{agentapi.Route{Environment: "development", Service: "api", Backends: []agentapi.Backend{{Group: "api-r1", Weight: 1}}, Maintenance: strings.Repeat("x", 5000)},
			400, "maintenance", "at most"},
	}
	for _, tc := range refused {
		_, err := c.PutRoute(ctx, tc.route)
		if p := problemOf(t, err, tc.status, tc.field); !strings.Contains(p.Detail, tc.says) {
			t.Errorf("refusal of %+v: %q does not say %q", tc.route, p.Detail, tc.says)
		}
		if b, _ := os.ReadFile(routesFile); !bytes.Equal(b, saved) {
			t.Fatalf("routes file changed by a refused route:\n%s", b)
		}
		got, err := c.Route(ctx, agentapi.RouteKey{Environment: "development", Service: "api"})
		if err != nil || len(got.Hosts) != 1 || got.Hosts[0] != "api.test" || got.PathPrefix != "" {
			t.Errorf("api's route after a refused update: %+v %v", got, err)
		}
	}
	// Another service's route updates still reach the proxy.
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "web", Hosts: []string{host},
		Backends: []agentapi.Backend{{Group: "web-r1", Weight: 0}, {Group: "web-r2", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	waitServes(t, proxyURL, host, "2.0.2")
	waitServes(t, proxyURL, "api.test", "2.0.3")
	if code, _, _ := proxyGet(proxyURL+"/", "x.wild.test"); code != http.StatusNotFound {
		t.Errorf("a host of the refused wildcard route is served: %d", code)
	}
	// A path prefix below the other route's is fine, and "/" is the empty prefix.
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "api", Hosts: []string{host}, PathPrefix: "/slow",
		Backends: []agentapi.Backend{{Group: "api-r1", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "api under /slow", func() bool {
		_, body, _ := proxyGet(proxyURL+"/slow?ms=1", host)
		return strings.Contains(body, "v2.0.3")
	})

	// A routes file the proxy cannot load (as older agents wrote) stops the next agent, naming it.
	stop()
	bad := strings.Replace(string(saved), `"api.test"`, `"*.api.test"`, 1)
	if bad == string(saved) {
		t.Fatalf("no api.test in the routes file:\n%s", saved)
	}
	os.WriteFile(routesFile, []byte(bad), 0o600)
	_, err = New(Options{DataDir: dir, Listen: "127.0.0.1:0"})
	var se *supervisor.StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "routes.json") || !strings.Contains(err.Error(), "wildcard") {
		t.Errorf("routes file with a wildcard host: %v", err)
	}
}

// A routes file written before routes had a project and a preview loads as
// project "" and preview false.
func TestOldRoutesFileLoads(t *testing.T) {
	dir := t.TempDir()
	old := `{
  "format": "runway-agent-routes/1",
  "routes": [
    {"environment": "development", "service": "hello", "hosts": ["hello.localhost"],
     "backends": [{"group": "hello-r1", "weight": 100}], "updated_at": "2026-11-25T13:23:17Z"},
    {"environment": "development", "service": "hello-preview", "hosts": ["hello-preview.development.localhost"], "backends": []}
  ]
}
`
	if err := os.WriteFile(filepath.Join(dir, "routes.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	routes, err := loadRoutes(filepath.Join(dir, "routes.json"))
	if err != nil {
		t.Fatal(err)
	}
	hello, ok := routes[agentapi.RouteKey{Environment: "development", Service: "hello"}]
	if len(routes) != 2 || !ok || hello.Backends[0].Group != "hello-r1" || hello.Project != "" || hello.Preview {
		t.Errorf("old routes file loaded as %+v", routes)
	}
	if _, ok := routes[agentapi.RouteKey{Environment: "development", Service: "hello-preview"}]; !ok {
		t.Errorf("the route of a service named hello-preview is gone: %+v", routes)
	}
}

// An old agent stored a service's preview as the route of
// <service>-preview to the service's groups: the next agent makes it the
// service's preview route, and leaves a service really named so alone.
func TestOldPreviewRouteMigrates(t *testing.T) {
	mark := testMark(t)
	dir := t.TempDir()
	ctx := context.Background()
	_, c := startAgentUntil(t, dir, nil)
	for _, s := range []agentapi.GroupSpec{serviceSpec("hello-r2", mark, "", "hello", "1.0.0"), serviceSpec("pvp-r1", mark, "", "pv-preview", "1.0.0")} {
		s.Instances = 0
		if _, _, err := c.CreateGroup(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	c.stop()
	old := `{"format": "runway-agent-routes/1", "routes": [
  {"environment": "development", "service": "hello-preview", "hosts": ["hello-preview.development.localhost"], "backends": [{"group": "hello-r2", "weight": 100}]},
  {"environment": "development", "service": "pv-preview", "hosts": ["pv-preview.development.localhost"], "backends": [{"group": "pvp-r1", "weight": 100}]}
]}`
	if err := os.WriteFile(filepath.Join(dir, "routes.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	_, c = startAgentUntil(t, dir, nil)
	defer c.stop()
	if r, err := c.Route(ctx, agentapi.RouteKey{Environment: "development", Service: "hello", Preview: true}); err != nil || r.Backends[0].Group != "hello-r2" {
		t.Errorf("hello's preview route: %+v %v", r, err)
	}
	if _, err := c.Route(ctx, agentapi.RouteKey{Environment: "development", Service: "hello-preview"}); !agentapi.IsNotFound(err) {
		t.Errorf("the old hello-preview route is still there: %v", err)
	}
	if r, err := c.Route(ctx, agentapi.RouteKey{Environment: "development", Service: "pv-preview"}); err != nil || r.Preview || r.Backends[0].Group != "pvp-r1" {
		t.Errorf("service pv-preview's route: %+v %v", r, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "routes.json")); !strings.Contains(string(b), `"preview": true`) {
		t.Errorf("the migrated route was not saved:\n%s", b)
	}
}
