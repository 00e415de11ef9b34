package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/secrets"
	"github.com/runwayhq/runway/internal/store"
)

// inProc is the real API (backend and identity over one SQLite store) on a
// loopback httptest server; nothing runs releases (the engine is closed).
type inProc struct {
	t     *testing.T
	b     *backend
	url   string
	admin string // admin's token
	dir   string
}

func newInProc(t *testing.T, tune ...func(*api.Options)) *inProc {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	drivers := engine.Drivers{"local": nil}
	eng := engine.New(st, drivers, engine.Options{})
	eng.Close() // nothing runs
	vault, err := openVault(context.Background(), st, Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{st: st, eng: eng, drivers: drivers, limits: TargetLimits(), log: slog.New(slog.DiscardHandler), secrets: vault}
	tokenFile := filepath.Join(dir, AdminTokenFile)
	if _, err := auth.Bootstrap(context.Background(), b.st, tokenFile, time.Now()); err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	opts := api.Options{Backend: b, Identity: NewIdentity(b.st, filepath.Join(dir, "audit.head"), nil), Secrets: &secretService{b: b, vault: vault}}
	for _, f := range tune {
		f(&opts)
	}
	h := api.New(opts)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &inProc{t: t, b: b, url: srv.URL, admin: strings.TrimSpace(string(tok)), dir: dir}
}

// user creates a user with roles (disabled if asked) and returns a token of it.
func (p *inProc) user(name string, disabled bool, roles ...string) string {
	p.t.Helper()
	ctx := context.Background()
	if err := p.b.st.CreateUser(ctx, &store.User{Name: name, Roles: roles, Disabled: disabled, CreatedBy: "test"}); err != nil {
		p.t.Fatal(err)
	}
	tok, _, err := auth.Issue(ctx, p.b.st, name, name, time.Time{}, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

// do sends a request the way internal/client does (digest of the body) and
// returns the status and the problem's kind and detail, if any.
func (p *inProc) do(method, path, token string, body any) (int, string, string) {
	p.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	return p.raw(method, path, token, raw, apiwire.ContentDigest(raw))
}

func (p *inProc) raw(method, path, token string, body []byte, dig string) (int, string, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method != http.MethodGet {
		req.Header.Set(apiwire.DigestHeader, dig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var prob apiwire.Problem
	_ = json.Unmarshal(b, &prob)
	return resp.StatusCode, prob.Kind, prob.Detail
}

func fresh() (string, time.Time) { return ulid.Make().String(), time.Now().UTC() }

// TestRouteRoleMatrix walks every route of the server API (auth.Rules, which
// is exactly what api.New registers) × every kind of caller and checks
// allow/deny against the expectation written here, independently of the
// rules' code: a new route, or a new action, without an expectation fails.
func TestRouteRoleMatrix(t *testing.T) {
	// The refused callers fail to authenticate on every route: no rate limit here.
	p := newInProc(t, func(o *api.Options) { o.AuthFailLimit = 1 << 20 })
	ctx := context.Background()
	const project, env = "hello", "staging"
	src := "project \"hello\" {}\nenvironment \"staging\" {}\nenvironment \"production\" {}\n"
	if _, err := p.b.ApplyProject(ctx, project, apiwire.ApplyProjectRequest{Source: src}, "admin"); err != nil {
		t.Fatal(err)
	}
	rel := &store.Release{ID: store.NewID(time.Now()), Project: project, Environment: env, Service: "hello", Spec: []byte("{}"), Progress: store.Progress{State: "Validate"}}
	if err := p.b.st.CreateRelease(ctx, rel); err != nil {
		t.Fatal(err)
	}
	if err := p.b.st.CreateUser(ctx, &store.User{Name: "victim", Roles: []string{"read_only"}, CreatedBy: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.b.secrets.Put(ctx, map[secrets.Ref][]byte{{Project: project, Environment: env, Service: "hello", Key: "KEY"}: []byte("v")}, "test", false); err != nil {
		t.Fatal(err)
	}

	callers := map[string]string{
		"admin":            p.admin,
		"read_only":        p.user("reader", false, "read_only"),
		"staging_admin":    p.user("stadmin", false, "staging_admin"),
		"staging_deployer": p.user("deployer", false, "staging_deployer"),
		"prod_deployer":    p.user("proddeployer", false, "production_deployer"),
		"scoped_here":      p.user("scoped", false, "staging_deployer@hello"),
		"scoped_other":     p.user("otherproj", false, "staging_deployer@other"),
		"disabled":         p.user("gone", true, "global_admin"),
		"no_token":         "",
	}
	expired, _, err := auth.Issue(ctx, p.b.st, "admin", "old", time.Now().Add(-time.Minute), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	callers["expired"] = expired
	revoked, rt, err := auth.Issue(ctx, p.b.st, "admin", "revoked", time.Time{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.b.st.RevokeToken(ctx, rt.ID); err != nil {
		t.Fatal(err)
	}
	callers["revoked"] = revoked

	everyone := []string{"admin", "read_only", "staging_admin", "staging_deployer", "prod_deployer", "scoped_here", "scoped_other"}
	inStaging := []string{"admin", "staging_admin", "staging_deployer", "scoped_here"}
	reads := append(inStaging, "read_only")
	projectReaders := []string{"admin", "read_only", "staging_admin", "staging_deployer", "prod_deployer", "scoped_here"}
	admins := []string{"admin", "read_only"}
	// allowed is the expectation, written out route by route: the callers
	// allowed on project hello, environment staging.
	allowed := map[string][]string{
		"GET /v1/health":              append(everyone, "disabled", "no_token", "expired", "revoked"),
		"GET /v1/whoami":              everyone,
		"GET /v1/projects":            everyone,
		"GET /v1/projects/{project}":  projectReaders,
		"PUT /v1/projects/{project}":  {"admin"},
		"POST /v1/releases":           inStaging,
		"GET /v1/releases":            reads,
		"GET /v1/releases/{id}":       reads,
		"POST /v1/releases/{id}/halt": inStaging,
		"POST /v1/rollbacks":          inStaging,
		"GET /v1/projects/{project}/environments/{env}/services/{service}": reads,
		"GET /v1/users":               admins,
		"POST /v1/users":              {"admin"},
		"GET /v1/users/{name}":        admins,
		"PATCH /v1/users/{name}":      {"admin"},
		"GET /v1/tokens":              everyone,
		"POST /v1/tokens":             everyone,
		"POST /v1/tokens/{id}/revoke": everyone,
		"GET /v1/audit":               admins,
		"GET /v1/audit/verify":        admins,
		// Secret values: the environment's admins only; what may be shown
		// of secrets (keys, versions): like releases.
		"GET /v1/projects/{project}/environments/{env}/secrets":                 reads,
		"PUT /v1/projects/{project}/environments/{env}/secrets":                 {"admin", "staging_admin"},
		"GET /v1/projects/{project}/environments/{env}/secrets/{key}":           {"admin", "staging_admin"},
		"GET /v1/projects/{project}/environments/{env}/secrets/{key}/history":   reads,
		"POST /v1/projects/{project}/environments/{env}/secrets/{key}/rollback": {"admin", "staging_admin"},
		"POST /v1/projects/{project}/environments/{env}/secrets/{key}/delete":   {"admin", "staging_admin"},
		"POST /v1/secrets/rotate-master-key":                                    {"admin"},
		"GET /v1/events":                                                        reads,
		"GET /v1/projects/{project}/environments/{env}/services/{service}/logs": reads,
		"GET /v1/projects/{project}/environments/{env}/overview":                reads,
		"GET /metrics":          admins,
		"GET /v1/alarms":        reads,
		"GET /v1/notifications": reads,
		// Like a halt: the environment's deployers.
		"POST /v1/projects/{project}/environments/{env}/services/{service}/maintenance": inStaging,
	}
	if len(allowed) != len(auth.Rules) {
		t.Errorf("%d expectations for %d routes", len(allowed), len(auth.Rules))
	}
	names := make([]string, 0, len(callers))
	for n := range callers {
		names = append(names, n)
	}
	sort.Strings(names)
	seq := 0
	for _, rule := range auth.Rules {
		want, ok := allowed[rule.Route()]
		if !ok {
			t.Errorf("route %s has no expectation in TestRouteRoleMatrix; add one", rule.Route())
			continue
		}
		for _, who := range names {
			seq++
			path := strings.NewReplacer("{project}", project, "{env}", env, "{service}", "hello", "{id}", rel.ID, "{name}", "victim", "{key}", "KEY").Replace(rule.Pattern)
			var body any
			id, at := fresh()
			switch rule.Route() {
			case "PUT /v1/projects/{project}":
				body = apiwire.ApplyProjectRequest{Source: src, BaseVersion: 1, RequestID: id, RequestedAt: at}
			case "POST /v1/releases":
				body = apiwire.DeployRequest{Project: project, Environment: env, Service: "hello", Version: "1",
					Sources: []apiwire.SourceFile{{Name: "hello.service.hcl", Content: "service \"hello\" {\n  command = [\"hello\"]\n}\n"}}, ProjectSource: src,
					Dir: t.TempDir(), RequestID: id, RequestedAt: at}
			case "PUT /v1/projects/{project}/environments/{env}/secrets":
				body = apiwire.SecretPutRequest{Service: "hello", Values: map[string]string{fmt.Sprintf("K%d", seq): "v"}, Salt: "s", RequestID: id, RequestedAt: at}
			case "POST /v1/projects/{project}/environments/{env}/secrets/{key}/rollback":
				body = apiwire.SecretRollbackRequest{Service: "hello", To: 1, RequestID: id, RequestedAt: at}
			case "POST /v1/projects/{project}/environments/{env}/secrets/{key}/delete":
				// A secret of its own for each caller, so each allowed
				// delete has one to delete.
				key := fmt.Sprintf("DEL%d", seq)
				if _, err := p.b.secrets.Put(ctx, map[secrets.Ref][]byte{{Project: project, Environment: env, Service: "hello", Key: key}: []byte("v")}, "test", false); err != nil {
					t.Fatal(err)
				}
				path = strings.Replace(path, "/secrets/KEY/", "/secrets/"+key+"/", 1)
				body = apiwire.SecretDeleteRequest{Service: "hello", RequestID: id, RequestedAt: at}
			case "POST /v1/secrets/rotate-master-key":
				body = apiwire.RotateMasterKeyRequest{RequestID: id, RequestedAt: at}
			case "POST /v1/releases/{id}/halt":
				body = apiwire.HaltRequest{RequestID: id, RequestedAt: at}
			case "POST /v1/projects/{project}/environments/{env}/services/{service}/maintenance":
				body = apiwire.MaintenanceRequest{On: true, RequestID: id, RequestedAt: at}
			case "POST /v1/rollbacks":
				body = apiwire.RollbackRequest{Project: project, Environment: env, Service: "hello", RequestID: id, RequestedAt: at}
			case "POST /v1/users":
				body = apiwire.CreateUserRequest{Name: fmt.Sprintf("new-%d", seq), Roles: []string{"read_only"}, RequestID: id, RequestedAt: at}
			case "PATCH /v1/users/{name}":
				body = apiwire.UpdateUserRequest{AddRoles: []string{"read_only"}, RequestID: id, RequestedAt: at}
			case "POST /v1/tokens":
				body = apiwire.CreateTokenRequest{Name: "x", RequestID: id, RequestedAt: at}
			case "POST /v1/tokens/{id}/revoke":
				// A token of the caller's own user, made for this request.
				owner := "admin"
				if pr, err := p.b.st.TokenByHash(ctx, auth.HashToken(callers[who])); err == nil {
					owner = pr.User
				}
				_, extra, err := auth.Issue(ctx, p.b.st, owner, "extra", time.Time{}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				path = "/v1/tokens/" + extra.ID + "/revoke"
				body = apiwire.RevokeTokenRequest{RequestID: id, RequestedAt: at}
			default:
				if rule.Method != http.MethodGet {
					t.Fatalf("route %s: the matrix test has no request body for it; add one", rule.Route())
				}
				if rule.Pattern == "/v1/releases" || rule.Pattern == "/v1/events" || rule.Pattern == "/v1/alarms" || rule.Pattern == "/v1/notifications" {
					path += "?project=" + project + "&environment=" + env
				}
				if strings.Contains(rule.Pattern, "/secrets") {
					path += "?service=hello"
				}
			}
			status, kind, detail := p.do(rule.Method, path, callers[who], body)
			denied := status == http.StatusUnauthorized || status == http.StatusForbidden
			if contains(want, who) == denied {
				t.Errorf("%s as %s: %d %s %q; want allowed=%v", rule.Route(), who, status, kind, detail, contains(want, who))
			}
			if status == http.StatusForbidden && (kind != "Forbidden" || !strings.Contains(detail, "forbidden: "+string(rule.Action)) || !strings.Contains(detail, "needs role")) {
				t.Errorf("%s as %s: refusal %s %q does not say what is needed", rule.Route(), who, kind, detail)
			}
			if strings.Contains(detail, "rwy_") {
				t.Errorf("%s as %s: a token in the answer", rule.Route(), who)
			}
		}
	}
}

// TestForbiddenMessages: what a staging deployer sees when it reaches for
// production, user management or the audit log.
func TestForbiddenMessages(t *testing.T) {
	p := newInProc(t)
	tok := p.user("ci", false, "staging_deployer")
	id, at := fresh()
	status, _, detail := p.do("POST", "/v1/rollbacks", tok, apiwire.RollbackRequest{Project: "hello", Environment: "production", Service: "web", RequestID: id, RequestedAt: at})
	want := "forbidden: release.rollback in environment production of project hello needs role production_deployer, production_admin or global_admin; ci has staging_deployer"
	if status != 403 || detail != want {
		t.Errorf("rollback in production: %d %q\nwant %q", status, detail, want)
	}
	if status, _, detail := p.do("GET", "/v1/users", tok, nil); status != 403 || !strings.Contains(detail, "forbidden: user.read needs role read_only or global_admin; ci has staging_deployer") {
		t.Errorf("user list: %d %q", status, detail)
	}
	if status, _, detail := p.do("GET", "/v1/audit", tok, nil); status != 403 || !strings.Contains(detail, "forbidden: audit.read needs role read_only or global_admin") {
		t.Errorf("audit: %d %q", status, detail)
	}
	// Project scope: a role of project a does not reach project b.
	scoped := p.user("ci-a", false, "staging_deployer@a")
	id, at = fresh()
	status, _, detail = p.do("POST", "/v1/rollbacks", scoped, apiwire.RollbackRequest{Project: "b", Environment: "staging", Service: "web", RequestID: id, RequestedAt: at})
	if status != 403 || !strings.Contains(detail, "of project b needs role staging_deployer") || !strings.Contains(detail, "ci-a has staging_deployer@a") {
		t.Errorf("project-scoped role on another project: %d %q", status, detail)
	}
}

// TestReplayRefusals: a reused id, a stale time and a body altered after its
// digest was computed are three different refusals; the same request again
// answers what it made.
func TestReplayRefusals(t *testing.T) {
	p := newInProc(t)
	req := helloRequest(t, p.b)
	req.RequestID, req.RequestedAt = ulid.Make().String(), time.Now().UTC()
	first, kind, detail := p.do("POST", "/v1/releases", p.admin, req)
	if first != 201 {
		t.Fatalf("deploy: %d %s %s", first, kind, detail)
	}
	rel, err := p.b.st.Get(context.Background(), nsRequests, req.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	// The same request again (a retry may refresh its time): the same release.
	again := req
	again.RequestedAt = req.RequestedAt.Add(time.Second)
	if status, kind, detail := p.do("POST", "/v1/releases", p.admin, again); status != 201 {
		t.Fatalf("the same request again: %d %s %s", status, kind, detail)
	}
	other := req
	other.Version = "2"
	if status, kind, detail := p.do("POST", "/v1/releases", p.admin, other); status != 409 || kind != "RequestIDReused" || !strings.Contains(detail, string(rel)) {
		t.Errorf("id reused with another body: %d %s %q, want 409 RequestIDReused naming release %s", status, kind, detail, rel)
	}
	stale := req
	stale.RequestID, stale.RequestedAt = ulid.Make().String(), time.Now().Add(-time.Hour).UTC()
	if status, kind, _ := p.do("POST", "/v1/releases", p.admin, stale); status != 400 || kind != "StaleRequest" {
		t.Errorf("an hour-old request: %d %s, want 400 StaleRequest", status, kind)
	}
	// The body altered after the client computed its digest.
	fresh := req
	fresh.RequestID = ulid.Make().String()
	body, _ := json.Marshal(fresh)
	altered := bytes.Replace(body, []byte(`"version":"1"`), []byte(`"version":"6"`), 1)
	if status, kind, _ := p.raw("POST", "/v1/releases", p.admin, altered, apiwire.ContentDigest(body)); status != 400 || kind != "DigestMismatch" {
		t.Errorf("altered body: %d %s, want 400 DigestMismatch", status, kind)
	}
	if status, kind, _ := p.raw("POST", "/v1/releases", p.admin, body, ""); status != 400 || kind != "DigestMissing" {
		t.Errorf("no digest: %d %s, want 400 DigestMissing", status, kind)
	}
	// A non-idempotent change (a token) is not made twice by a repeat.
	tr := apiwire.CreateTokenRequest{Name: "once", RequestID: ulid.Make().String(), RequestedAt: time.Now().UTC()}
	if status, _, _ := p.do("POST", "/v1/tokens", p.admin, tr); status != 201 {
		t.Fatalf("token create: %d", status)
	}
	if status, kind, _ := p.do("POST", "/v1/tokens", p.admin, tr); status != 409 || kind != "RequestIDReused" {
		t.Errorf("token create repeated: %d %s, want 409 RequestIDReused", status, kind)
	}
	// Every one of these was audited, and the chain verifies.
	entries, err := p.b.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil || len(entries) != 8 {
		t.Fatalf("%d audit entries (%v), want 8", len(entries), err)
	}
	outcomes := []string{}
	for _, e := range entries {
		outcomes = append(outcomes, e.Outcome)
	}
	if got := strings.Join(outcomes, ","); got != "201 Created,201 Created,409 RequestIDReused,400 StaleRequest,400 DigestMismatch,400 DigestMissing,201 Created,409 RequestIDReused" {
		t.Errorf("audit outcomes: %s", got)
	}
}

// TestFailedAuthRateLimit: failed authentications from one address are
// refused with 429 and Retry-After once over the limit, even with a good
// token then.
func TestFailedAuthRateLimit(t *testing.T) {
	p := newInProc(t)
	bad := "rwy_" + strings.Repeat("0", 64)
	for i := 0; i < 10; i++ {
		if status, _, _ := p.do("GET", "/v1/whoami", bad, nil); status != 401 {
			t.Fatalf("attempt %d: %d, want 401", i, status)
		}
	}
	req, _ := http.NewRequest("GET", p.url+"/v1/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+p.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after 10 failures: %d Retry-After %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestTokenLifecycle: expiry, revocation on the next request, disabled
// users, and the last admin kept.
func TestTokenLifecycle(t *testing.T) {
	p := newInProc(t)
	id, at := fresh()
	var created apiwire.UserCreated
	body, _ := json.Marshal(apiwire.CreateUserRequest{Name: "ci", Roles: []string{"staging_deployer"}, ExpiresIn: "720h", RequestID: id, RequestedAt: at})
	req, _ := http.NewRequest("POST", p.url+"/v1/users", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.admin)
	req.Header.Set(apiwire.DigestHeader, apiwire.ContentDigest(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.HasPrefix(created.Token, "rwy_") || created.TokenInfo.ExpiresAt == nil {
		t.Fatalf("create user: %d %+v", resp.StatusCode, created.TokenInfo)
	}
	if st, _ := p.b.st.TokenByHash(context.Background(), auth.HashToken(created.Token)); st == nil || st.Hash == created.Token {
		t.Fatal("the token is not stored as its hash")
	}
	if status, _, _ := p.do("GET", "/v1/whoami", created.Token, nil); status != 200 {
		t.Fatalf("whoami of the new user: %d", status)
	}
	id, at = fresh()
	if status, _, _ := p.do("POST", "/v1/tokens/"+created.TokenInfo.ID+"/revoke", p.admin, apiwire.RevokeTokenRequest{RequestID: id, RequestedAt: at}); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if status, kind, _ := p.do("GET", "/v1/whoami", created.Token, nil); status != 401 || kind != "TokenRevoked" {
		t.Fatalf("a revoked token on the next request: %d %s", status, kind)
	}
	id, at = fresh()
	disabled := true
	if status, kind, _ := p.do("PATCH", "/v1/users/admin", p.admin, apiwire.UpdateUserRequest{Disabled: &disabled, RequestID: id, RequestedAt: at}); status != 409 || kind != "LastAdmin" {
		t.Fatalf("disabling the last admin: %d %s, want 409 LastAdmin", status, kind)
	}
}

// TestProtectedNeedsConfirmation: deploys and rollbacks to a protected
// environment are refused unless the request says a person confirmed them.
func TestProtectedNeedsConfirmation(t *testing.T) {
	p := newInProc(t)
	src := "project \"hello\" {}\nenvironment \"dev\" {}\nenvironment \"prod\" {\n  protected = true\n}\n"
	if _, err := p.b.ApplyProject(context.Background(), "hello", apiwire.ApplyProjectRequest{Source: src}, "admin"); err != nil {
		t.Fatal(err)
	}
	req := apiwire.DeployRequest{Project: "hello", Environment: "prod", Service: "hello", Version: "1",
		Sources:       []apiwire.SourceFile{{Name: "hello.service.hcl", Content: "service \"hello\" {\n  command = [\"hello\"]\n}\n"}},
		ProjectSource: src, Dir: t.TempDir()}
	req.RequestID, req.RequestedAt = fresh()
	status, kind, detail := p.do("POST", "/v1/releases", p.admin, req)
	if status != 428 || kind != "ConfirmationRequired" || !strings.Contains(detail, "environment prod is protected: a deploy needs an explicit confirmation; answer yes when runway asks, or pass --yes") {
		t.Fatalf("unconfirmed deploy to prod: %d %s %q", status, kind, detail)
	}
	req.RequestID, req.RequestedAt = fresh()
	req.Confirmed = true
	if status, kind, detail := p.do("POST", "/v1/releases", p.admin, req); status != 201 {
		t.Fatalf("confirmed deploy to prod: %d %s %q", status, kind, detail)
	}
	id, at := fresh()
	if status, kind, _ := p.do("POST", "/v1/rollbacks", p.admin, apiwire.RollbackRequest{Project: "hello", Environment: "prod", Service: "hello", RequestID: id, RequestedAt: at}); status != 428 || kind != "ConfirmationRequired" {
		t.Fatalf("unconfirmed rollback in prod: %d %s", status, kind)
	}
	// Unprotected: no confirmation needed.
	req.Environment, req.Confirmed = "dev", false
	req.RequestID, req.RequestedAt = fresh()
	if status, kind, detail := p.do("POST", "/v1/releases", p.admin, req); status != 201 {
		t.Fatalf("deploy to dev: %d %s %q", status, kind, detail)
	}
}

// TestIdentityChangeAndAuditAreOneTransaction: when the audit entry of a
// user's creation cannot be written, the user is not created either.
func TestIdentityChangeAndAuditAreOneTransaction(t *testing.T) {
	p := newInProc(t)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(p.dir, "runway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER audit_refuse BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END`); err != nil {
		t.Fatal(err)
	}
	id, at := fresh()
	if status, _, _ := p.do("POST", "/v1/users", p.admin, apiwire.CreateUserRequest{Name: "ci", Roles: []string{"read_only"}, RequestID: id, RequestedAt: at}); status != 500 {
		t.Fatalf("create user with the audit refusing: %d, want 500", status)
	}
	if _, err := p.b.st.GetUser(context.Background(), "ci"); err == nil {
		t.Fatal("the user was created without its audit entry")
	}
	if toks, _ := p.b.st.ListTokens(context.Background(), "ci"); len(toks) != 0 {
		t.Fatalf("%d tokens of the uncreated user", len(toks))
	}
	if _, err := db.Exec(`DROP TRIGGER audit_refuse`); err != nil {
		t.Fatal(err)
	}
	id, at = fresh()
	if status, _, _ := p.do("POST", "/v1/users", p.admin, apiwire.CreateUserRequest{Name: "ci", Roles: []string{"read_only"}, RequestID: id, RequestedAt: at}); status != 201 {
		t.Fatalf("create user: %d", status)
	}
	entries, _ := p.b.st.ListAudit(context.Background(), store.AuditFilter{})
	if len(entries) != 1 || entries[0].Outcome != "201 Created" || entries[0].Action != "user.write" {
		t.Fatalf("audit = %+v", entries)
	}
}

// TestRefusedChangesAreAudited: a change refused before its handler runs (a
// release that does not exist, a body that is not JSON) is in the log too.
func TestRefusedChangesAreAudited(t *testing.T) {
	p := newInProc(t)
	id, at := fresh()
	if status, kind, _ := p.do("POST", "/v1/releases/01JD3Q8Y7Z5W2X4V6T8R0P2N4M/halt", p.admin, apiwire.HaltRequest{RequestID: id, RequestedAt: at}); status != 404 || kind != "NotFound" {
		t.Fatalf("halt of no release: %d %s", status, kind)
	}
	if status, kind, _ := p.raw("POST", "/v1/users", p.admin, []byte("{"), apiwire.ContentDigest([]byte("{"))); status != 400 || kind != "BadRequest" {
		t.Fatalf("a body that is not JSON: %d %s", status, kind)
	}
	entries, err := p.b.st.ListAudit(context.Background(), store.AuditFilter{})
	if err != nil || len(entries) != 2 || entries[0].Outcome != "404 NotFound" || entries[0].Action != "release.halt" ||
		entries[1].Outcome != "400 BadRequest" || entries[1].Action != "user.write" || entries[1].Actor != "admin" {
		t.Fatalf("audit = %+v (%v)", entries, err)
	}
}
