package proxy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
)

// Two projects' services of the same name in the same environment, and a
// service named like another's preview, are separate routes: their
// counters, statistics, sticky cookies and access-log lines never mix.
func TestRouteKeysNeverMix(t *testing.T) {
	t.Parallel()
	var logBuf syncBuffer
	p := startProxy(t, Options{AccessLog: &logBuf})
	a, b := newBackend(t, "a-web/1", nil), newBackend(t, "b-web/1", nil)
	pv, pvPreview := newBackend(t, "pv-new/1", nil), newBackend(t, "pv-preview-r1/1", nil)
	keyA := agentapi.RouteKey{Project: "a", Environment: "development", Service: "web"}
	keyB := agentapi.RouteKey{Project: "b", Environment: "development", Service: "web"}
	keyPvPreview := agentapi.RouteKey{Environment: "development", Service: "pv", Preview: true}
	keyPvDashPreview := agentapi.RouteKey{Environment: "development", Service: "pv-preview"}
	route := func(k agentapi.RouteKey, host, group string) Route {
		return Route{Project: k.Project, Environment: k.Environment, Service: k.Service, Preview: k.Preview,
			Hosts: []string{host}, Sticky: true, Backends: []Backend{{Group: group, Weight: 1}}}
	}
	mustUpdate(t, p, Config{
		Routes: []Route{
			route(keyA, "web.a.test", "a-web"), route(keyB, "web.b.test", "b-web"),
			route(keyPvPreview, "pv.preview.test", "pv-new"), route(keyPvDashPreview, "pv-preview.test", "pv-preview-r1"),
		},
		Groups: map[string][]Target{"a-web": {a.target()}, "b-web": {b.target()}, "pv-new": {pv.target()}, "pv-preview-r1": {pvPreview.target()}},
	})
	c := p.client(t)
	cookies := map[string]string{} // cookie name -> host
	for host, n := range map[string]int{"web.a.test": 3, "web.b.test": 5, "pv.preview.test": 2, "pv-preview.test": 7} {
		for i := range n {
			resp, body := get(t, c, "http://"+host+"/")
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %q", host, resp.StatusCode, body)
			}
			if i == 0 {
				for _, ck := range resp.Cookies() {
					if other, dup := cookies[ck.Name]; dup {
						t.Errorf("host %s sets cookie %s, also set for %s", host, ck.Name, other)
					}
					cookies[ck.Name] = host
				}
			}
		}
	}
	if len(cookies) != 4 {
		t.Errorf("sticky cookies %v: want one per route", cookies)
	}
	want := map[agentapi.RouteKey]struct {
		group string
		n     uint64
	}{keyA: {"a-web", 3}, keyB: {"b-web", 5}, keyPvPreview: {"pv-new", 2}, keyPvDashPreview: {"pv-preview-r1", 7}}
	waitFor(t, "every request accounted", 5*time.Second, func() bool {
		for k, w := range want {
			if p.Counters(k).Served != w.n {
				return false
			}
		}
		return true
	})
	for k, w := range want {
		st := p.Stats(k, time.Minute)
		if len(st) != 1 || st[w.group].Requests != w.n {
			t.Errorf("stats of %s: %+v, want only %s with %d requests", k, st, w.group, w.n)
		}
	}
	if c := p.Counters(agentapi.RouteKey{Environment: "development", Service: "web"}); c.Served != 0 {
		t.Errorf("project-less development/web counted %d requests of projects a and b", c.Served)
	}
	lines := 0
	for _, l := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
		var e accessEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		k := agentapi.RouteKey{Project: e.Project, Environment: e.Environment, Service: e.Service, Preview: e.Preview}
		if w, ok := want[k]; !ok || !strings.HasPrefix(e.Target, w.group+"/") {
			t.Errorf("access log line of %s (host %s) names target %s", k, e.Host, e.Target)
		}
		lines++
	}
	if lines != 17 {
		t.Errorf("%d access log lines, want 17", lines)
	}
	if n := counterValue(t, p.reg, "runway_proxy_requests_total", "b-web/1"); n != 5 {
		t.Errorf("requests of project b's target: %v, want 5", n)
	}
}

// What the proxy cannot serve is refused with a *RouteError naming the
// route and the field, and the table in use stays.
func TestCheckRoutesNamesTheField(t *testing.T) {
	t.Parallel()
	web := agentapi.RouteKey{Environment: "development", Service: "web"}
	r := func(k agentapi.RouteKey, prefix string, hosts ...string) Route {
		return Route{Project: k.Project, Environment: k.Environment, Service: k.Service, Preview: k.Preview, Hosts: hosts, PathPrefix: prefix}
	}
	api := agentapi.RouteKey{Environment: "development", Service: "api"}
	for name, tc := range map[string]struct {
		routes   []Route
		key      agentapi.RouteKey
		field    string
		conflict bool
		msg      string
	}{
		"wildcard":       {[]Route{r(web, "", "ok.test", "*.wild.test")}, web, "hosts[1]", false, "wildcard"},
		"slash is empty": {[]Route{r(web, "", "a.test"), r(api, "/", "a.test")}, api, "hosts[0]", true, "already routed to development/web"},
		"same prefix":    {[]Route{r(web, "/api", "a.test"), r(api, "/api", "b.test", "A.test")}, api, "hosts[1]", true, "already routed"},
		"twice":          {[]Route{r(web, "", "a.test"), r(web, "", "b.test")}, web, "service", true, "twice"},
		"bad prefix":     {[]Route{r(web, "/api/", "a.test")}, web, "path_prefix", false, "trailing"},
		"slash service":  {[]Route{r(agentapi.RouteKey{Environment: "e", Service: "a/b"}, "", "a.test")}, agentapi.RouteKey{Environment: "e", Service: "a/b"}, "service", false, "letters"},
		"hash service":   {[]Route{r(agentapi.RouteKey{Environment: "e", Service: "a#preview"}, "", "a.test")}, agentapi.RouteKey{Environment: "e", Service: "a#preview"}, "service", false, "letters"},
		"bad project":    {[]Route{r(agentapi.RouteKey{Project: "A", Environment: "e", Service: "s"}, "", "a.test")}, agentapi.RouteKey{Project: "A", Environment: "e", Service: "s"}, "project", false, "letters"},
		"no environment": {[]Route{r(agentapi.RouteKey{Service: "s"}, "", "a.test")}, agentapi.RouteKey{Service: "s"}, "environment", false, "required"},
		"no hosts":       {[]Route{r(web, "")}, web, "hosts", false, "no hosts"},
	} {
		err := CheckRoutes(tc.routes)
		var re *RouteError
		if !errors.As(err, &re) || re.Route != tc.key || re.Field != tc.field || re.Conflict != tc.conflict || !strings.Contains(re.Msg, tc.msg) {
			t.Errorf("%s: CheckRoutes = %v (%+v), want %s: %s (conflict %v) saying %q", name, err, re, tc.key, tc.field, tc.conflict, tc.msg)
		}
	}
	// A preview is its own key: it may share nothing but the service name.
	ok := []Route{r(web, "", "web.test"), r(agentapi.RouteKey{Environment: "development", Service: "web", Preview: true}, "", "web-preview.test"),
		r(agentapi.RouteKey{Environment: "development", Service: "web-preview"}, "", "web-preview2.test"),
		r(agentapi.RouteKey{Project: "a", Environment: "development", Service: "web"}, "", "web.a.test")}
	if err := CheckRoutes(ok); err != nil {
		t.Errorf("distinct keys refused: %v", err)
	}

	p := startProxy(t, Options{})
	be := newBackend(t, "g1/i1", nil)
	mustUpdate(t, p, oneService([]Backend{{Group: "g1", Weight: 1}}, map[string][]Target{"g1": {be.target()}}))
	bad := oneService([]Backend{{Group: "g1", Weight: 1}}, map[string][]Target{"g1": {be.target()}})
	bad.Routes = append(bad.Routes, Route{Environment: "production", Service: "other", Hosts: []string{"web.production.localhost"}, PathPrefix: "/"})
	if err := p.Update(bad); err == nil {
		t.Fatal(`a route with prefix "/" next to one with "" on the same host was accepted`)
	}
	if resp, body := get(t, p.client(t), webURL+"/"); resp.StatusCode != 200 || !strings.Contains(body, "g1/i1") {
		t.Fatalf("the refused update changed the table: %d %q", resp.StatusCode, body)
	}
}
