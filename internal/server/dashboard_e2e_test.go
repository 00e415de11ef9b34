package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/dashboard"
)

// browser is a cookie-keeping HTTP client of the dashboard: what a browser
// does without JavaScript (forms, redirects, cookies).
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, c *cluster) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: "http://" + c.serverAddr, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// get returns a page's status and body.
func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.hc.Get(b.base + path)
	if err != nil {
		b.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post sends a form as the browser would, from the dashboard's own origin.
func (b *browser) post(path string, form url.Values) (int, string, *http.Response) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page")
	}
	return m[1]
}

// loginLink runs `runway dashboard` and returns its link (never printed:
// it holds a login code).
func (c *cluster) loginLink(extra ...string) string {
	c.t.Helper()
	out, err := c.cli(append([]string{"dashboard", "--no-open", "--output", "json"}, extra...)...)
	if err != nil {
		if strings.Contains(out, "rwy_") {
			out = "(output withheld: it holds a token)"
		}
		c.t.Fatalf("runway dashboard failed: %v\n%s", err, out)
	}
	var v struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || !strings.Contains(v.URL, "/ui/login?code=rwy_") {
		c.t.Fatalf("runway dashboard printed no login link (%v)", err)
	}
	return v.URL
}

// login spends a login link in b.
func (b *browser) login(link string) string {
	b.t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		b.t.Fatal(err)
	}
	st, page := b.get(u.RequestURI())
	if st != http.StatusOK || !strings.Contains(page, "Log in as admin") {
		b.t.Fatalf("login link page: %d\n%s", st, noTokens(page))
	}
	st, page, _ = b.post("/ui/login", url.Values{"code": {u.Query().Get("code")}})
	if st != http.StatusOK || !strings.Contains(page, "Projects") {
		b.t.Fatalf("after login: %d\n%s", st, noTokens(page))
	}
	return page
}

// TestDashboard drives the dashboard as a browser without JavaScript does:
// the one-time login, the cookie, the pages with the real server's data,
// a rollback through the confirmation, CSRF and origin checks, a read_only
// user refused by the API whatever it posts, and an idle session revoked.
func TestDashboard(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "1"), "Success")
	v2 := c.deploy(service, "2")
	mustState(t, v2, "Success")

	// Nothing without a session.
	anon := newBrowser(t, c)
	anon.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, p := range []string{"/ui/", "/ui/p/e2e/e/dev/", "/ui/audit", "/ui/r/" + v2.ID} {
		if st, _ := anon.get(p); st != http.StatusSeeOther {
			t.Errorf("GET %s without a session: %d, want 303 to the login page", p, st)
		}
	}
	if st, _ := anon.get("/ui/r/" + v2.ID + "/live"); st != http.StatusUnauthorized {
		t.Errorf("live stream without a session: %d, want 401", st)
	}

	b := newBrowser(t, c)
	link := c.loginLink()
	u, _ := url.Parse(link)
	code := u.Query().Get("code")
	b.login(link)
	// The cookie is the session's and says how it may travel.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(mustReq(t, "POST", b.base+"/ui/login", url.Values{"token": {c.adminToken()}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ck := resp.Header.Get("Set-Cookie")
	for _, want := range []string{dashboard.CookieName + "=rwy_", "Path=/ui/", "HttpOnly", "SameSite=Strict", "Max-Age="} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie lacks %q", want)
		}
	}
	// A login code works once.
	other := newBrowser(t, c)
	if st, page, _ := other.post("/ui/login", url.Values{"code": {code}}); st != http.StatusUnauthorized || !strings.Contains(page, "not valid") {
		t.Errorf("second use of a login code: %d", st)
	}
	// A token that is not a login code is not spent by a link.
	if st, _ := other.get("/ui/login?code=" + c.adminToken()); st != http.StatusUnauthorized {
		t.Errorf("an API token as a login code: %d, want 401", st)
	}
	if _, err := c.api.Whoami(context.Background()); err != nil {
		t.Fatalf("the admin token stopped working: %v", err)
	}

	// The pages show the server's data.
	if _, page := b.get("/ui/"); !strings.Contains(page, `href="/ui/p/e2e/e/dev/"`) {
		t.Errorf("the projects page does not link environment dev:\n%s", noTokens(page))
	}
	st, page := b.get("/ui/p/e2e/e/dev/")
	if st != http.StatusOK || !strings.Contains(page, ">hello<") || !strings.Contains(page, "2 100%") {
		t.Fatalf("environment page: %d\n%s", st, noTokens(page))
	}
	st, page = b.get("/ui/p/e2e/e/dev/s/hello/")
	if st != http.StatusOK || !strings.Contains(page, "Serving <b>2</b>") || strings.Count(page, "Roll back to this") != 1 || !strings.Contains(page, "2/2 healthy") || strings.Count(page, `<span class="badge ok">healthy</span>`) != 2 {
		t.Fatalf("service page: %d\n%s", st, noTokens(page))
	}
	for _, p := range []string{"/ui/r/" + v2.ID, "/ui/p/e2e/e/dev/alarms", "/ui/p/e2e/e/dev/secrets", "/ui/audit", "/ui/p/e2e/e/dev/s/hello/logs?filter=listening"} {
		if st, page := b.get(p); st != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", p, st, noTokens(page))
		}
	}
	if _, page := b.get("/ui/r/" + v2.ID); !strings.Contains(page, "Success") || !strings.Contains(page, "CheckHealthy") {
		t.Errorf("release page lacks its timeline")
	}

	// A rollback: the form asks first, then the API makes the release.
	csrf := csrfOf(t, page)
	form := url.Values{"csrf": {csrf}, "project": {"e2e"}, "environment": {"dev"}, "service": {"hello"}, "to": {v2.ID}, "version": {"2"}}
	form.Set("to", c.releaseOf("1"))
	st, page, _ = b.post("/ui/actions/rollback", form)
	if st != http.StatusOK || !strings.Contains(page, "Roll back hello in dev of e2e to release") {
		t.Fatalf("rollback confirmation: %d\n%s", st, noTokens(page))
	}
	form.Set("confirm", "yes")
	form.Set("request_id", regexp.MustCompile(`name="request_id" value="([0-9A-Z]{26})"`).FindStringSubmatch(page)[1])
	st, page, resp = b.post("/ui/actions/rollback", form)
	if st != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/ui/r/") {
		t.Fatalf("rollback: %d %s\n%s", st, resp.Request.URL, noTokens(page))
	}
	rbID := strings.TrimPrefix(resp.Request.URL.Path, "/ui/r/")
	mustState(t, c.wait(rbID, 90*time.Second), "Success")
	// Sent twice (a double click): one rollback.
	_, _, resp = b.post("/ui/actions/rollback", form)
	if got := strings.TrimPrefix(resp.Request.URL.Path, "/ui/r/"); got != rbID {
		t.Errorf("the same confirmed form made release %s, then %s", rbID, got)
	}

	// Maintenance on from the service page, through its confirmation: the
	// proxy answers 503 with the message; off routes again.
	_, page = b.get("/ui/p/e2e/e/dev/s/hello/")
	mform := url.Values{"csrf": {csrfOf(t, page)}, "project": {"e2e"}, "environment": {"dev"}, "service": {"hello"}, "on": {"1"}, "message": {"back at ten"}}
	if !strings.Contains(page, `id="maintenance-form"`) {
		t.Fatalf("service page lacks the maintenance form:\n%s", noTokens(page))
	}
	if st, page, _ := b.post("/ui/actions/maintenance", mform); st != http.StatusOK || !strings.Contains(page, "Turn maintenance on for hello") {
		t.Fatalf("maintenance confirmation: %d\n%s", st, noTokens(page))
	}
	mform.Set("confirm", "yes")
	if st, page, _ := b.post("/ui/actions/maintenance", mform); st != http.StatusOK || !strings.Contains(page, "Maintenance on: every request is answered 503") {
		t.Fatalf("maintenance on: %d\n%s", st, noTokens(page))
	}
	if st, body := c.viaProxy(service); st != http.StatusServiceUnavailable || !strings.Contains(body, "back at ten") {
		t.Errorf("with maintenance on the proxy answered %d %q", st, body)
	}
	if _, page := b.get("/ui/p/e2e/e/dev/"); !strings.Contains(page, `title="back at ten">maintenance</span>`) {
		t.Errorf("the environment page does not show the maintenance:\n%s", noTokens(page))
	}
	if out, err := c.cli("maintenance", "off", service, "--env", env); err != nil || !strings.Contains(out, "maintenance off for hello in dev") {
		t.Errorf("runway maintenance off: %v\n%s", err, out)
	}
	if st, _ := c.viaProxy(service); st != http.StatusOK {
		t.Errorf("with maintenance off the proxy answered %d", st)
	}

	// Forms need the session's CSRF token and the dashboard's origin.
	bad := url.Values{"release": {rbID}, "confirm": {"yes"}}
	if st, _, _ := b.post("/ui/actions/halt", bad); st != http.StatusForbidden {
		t.Errorf("halt without CSRF token: %d, want 403", st)
	}
	req := mustReq(t, "POST", b.base+"/ui/actions/halt", url.Values{"release": {rbID}, "confirm": {"yes"}, "csrf": {csrf}})
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := b.hc.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("halt from another origin: %v %v, want 403", err, resp)
	}

	// read_only: no buttons, and the API refuses what it posts anyway.
	out, err := c.cli("user", "create", "viewer", "--role", "read_only", "--output", "json")
	if err != nil {
		t.Fatalf("runway user create: %v", err)
	}
	var created apiwire.UserCreated
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	ro := newBrowser(t, c)
	if st, page, _ := ro.post("/ui/login", url.Values{"token": {created.Token}}); st != http.StatusOK || !strings.Contains(page, "viewer (read_only)") {
		t.Fatalf("token login of viewer: %d\n%s", st, noTokens(page))
	}
	_, page = ro.get("/ui/p/e2e/e/dev/s/hello/")
	if strings.Contains(page, "Roll back") || strings.Contains(page, "actions/") || strings.Contains(page, "Maintenance on") {
		t.Errorf("read_only sees action buttons")
	}
	roForm := url.Values{"csrf": {csrfOf(t, page)}, "project": {"e2e"}, "environment": {"dev"}, "service": {"hello"}, "to": {v2.ID}, "confirm": {"yes"}}
	if st, page, _ := ro.post("/ui/actions/rollback", roForm); st != http.StatusForbidden || !strings.Contains(page, "forbidden: release.rollback") {
		t.Errorf("rollback posted by read_only: %d\n%s", st, noTokens(page))
	}
	roM := url.Values{"csrf": {csrfOf(t, page)}, "project": {"e2e"}, "environment": {"dev"}, "service": {"hello"}, "on": {"1"}, "confirm": {"yes"}}
	if st, page, _ := ro.post("/ui/actions/maintenance", roM); st != http.StatusForbidden || !strings.Contains(page, "forbidden: service.maintenance") {
		t.Errorf("maintenance posted by read_only: %d\n%s", st, noTokens(page))
	}
	entries, err := c.api.Audit(context.Background(), apiwire.AuditFilter{Actor: "viewer", Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, e := range entries {
		refused = refused || (e.Action == "release.rollback" && strings.HasPrefix(e.Outcome, "403"))
	}
	if !refused {
		t.Errorf("the refused rollback of viewer is not in the audit log: %+v", entries)
	}

	// Logging out revokes the session at once.
	_, page = b.get("/ui/")
	if _, page, _ := b.post("/ui/logout", url.Values{"csrf": {csrfOf(t, page)}}); !strings.Contains(page, "logged out") {
		t.Errorf("logout page:\n%s", noTokens(page))
	}
	if st, _ := anonWith(b).get("/ui/"); st != http.StatusSeeOther {
		t.Errorf("after logout: %d, want 303", st)
	}
}

// TestDashboardIdle: a session unused for longer than --dashboard-idle is
// revoked on its next request, and one in use is not.
func TestDashboardIdle(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.serverArgs = []string{"--dashboard-idle", "4s"}
	c.server.stop(t, syscall.SIGTERM)
	c.startServer()
	b := anonWith(newBrowser(t, c))
	if st, _, _ := b.post("/ui/login", url.Values{"token": {c.adminToken()}}); st != http.StatusSeeOther {
		t.Fatalf("token login: %d", st)
	}
	if st, _ := b.get("/ui/"); st != http.StatusOK {
		t.Fatalf("right after login: %d", st)
	}
	// Waiting out the limit is the point here: nothing else to wait for.
	<-time.After(5 * time.Second)
	st, _ := b.get("/ui/")
	if st != http.StatusSeeOther {
		t.Fatalf("after 5s idle: %d, want 303 to the login page", st)
	}
	toks, err := c.api.Tokens(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tk := range toks {
		if tk.Name == dashboard.SessionName {
			n++
			if tk.RevokedAt == nil {
				t.Errorf("idle session %s not revoked", tk.ID)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d dashboard sessions of admin, want 1", n)
	}
}

func anonWith(b *browser) *browser {
	nb := *b
	hc := *b.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	nb.hc = &hc
	return &nb
}

func mustReq(t *testing.T, method, u string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

// releaseOf is the id of the service's newest release of version.
func (c *cluster) releaseOf(version string) string {
	c.t.Helper()
	list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Project: projectName, Environment: env, Service: service, Limit: 100})
	if err != nil {
		c.t.Fatal(err)
	}
	for _, r := range list {
		if r.Version == version {
			return r.ID
		}
	}
	c.t.Fatalf("no release of version %s", version)
	return ""
}

// TestDashboardLive reads the live release timeline as the page's
// EventSource does while a canary runs, and halts it from the dashboard:
// the stream ends with FailureClean.
func TestDashboardLive(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	long := strings.Replace(canarySteps, "1500ms", "60s", 1)
	c.writeManifest(manifest{Strategy: "canary", Canary: long, Timeout: "120s"})
	mustState(t, c.deploy(service, "1"), "Success")
	b := newBrowser(t, c)
	b.login(c.loginLink())
	rel := c.submit(service, "2")

	req, _ := http.NewRequest(http.MethodGet, b.base+"/ui/r/"+rel.ID+"/live", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	resp, err := b.hc.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan [2]string, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				events <- [2]string{ev, strings.TrimPrefix(line, "data: ")}
			}
		}
	}()
	next := func(what string) [2]string {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("stream ended waiting for %s", what)
			}
			return e
		case <-ctx.Done():
			t.Fatalf("no event for %s", what)
		}
		return [2]string{}
	}
	// Timelines come as the release moves, until the canary waits in its pause.
	for {
		e := next("the canary's pause")
		if e[0] != "timeline" {
			t.Fatalf("event %q before the release ended", e[0])
		}
		var d struct{ HTML, State string }
		_ = json.Unmarshal([]byte(e[1]), &d)
		if strings.Contains(d.HTML, "weight 30") || strings.Contains(d.HTML, "pause") {
			break
		}
	}
	// Halt from the release page: its form, the confirmation, the API.
	_, page := b.get("/ui/r/" + rel.ID)
	if !strings.Contains(page, `id="halt-form"`) || !strings.Contains(page, `data-live="/ui/r/`+rel.ID+`/live"`) {
		t.Fatalf("release page in progress lacks its halt form or live timeline:\n%s", noTokens(page))
	}
	form := url.Values{"csrf": {csrfOf(t, page)}, "release": {rel.ID}, "reason": {"dashboard e2e"}}
	if st, page, _ := b.post("/ui/actions/halt", form); st != http.StatusOK || !strings.Contains(page, "Halt release") {
		t.Fatalf("halt confirmation: %d\n%s", st, noTokens(page))
	}
	form.Set("confirm", "yes")
	if st, page, _ := b.post("/ui/actions/halt", form); st != http.StatusOK {
		t.Fatalf("halt: %d\n%s", st, noTokens(page))
	}
	for {
		e := next("the end of the release")
		if e[0] == "done" {
			if !strings.Contains(e[1], "FailureClean") {
				t.Fatalf("release ended %s, want FailureClean", e[1])
			}
			break
		}
	}
	if done := c.wait(rel.ID, 30*time.Second); !strings.Contains(done.Error, "dashboard e2e") {
		t.Errorf("release error %q lacks the halt's reason", done.Error)
	}
}

// viaProxy is one request to svc through the agent's proxy.
func (c *cluster) viaProxy(svc string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+c.proxyHTTP+"/", nil)
	req.Host = host(svc)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("request through the proxy: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var tokenRe = regexp.MustCompile(`rwy_[0-9a-f]+`)

// noTokens is a page as a failure may print it: a login page holds its
// code, a token.
func noTokens(page string) string { return tokenRe.ReplaceAllString(page, "rwy_…") }
