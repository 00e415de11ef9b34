package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/server"
	"github.com/runwayhq/runway/internal/store"
)

// recordingBackend is the API-level stand-in for the release side of the
// control plane: it keeps what it was asked in memory (the identity side is
// the real one, over SQLite). The release engine's own tests drive the real
// backend; these check decoding, authentication and error mapping.
type recordingBackend struct {
	mu       sync.Mutex
	deploys  []apiwire.DeployRequest
	actor    string
	failWith error
}

func (b *recordingBackend) Deploy(_ context.Context, req apiwire.DeployRequest, actor string) (*apiwire.Release, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failWith != nil {
		return nil, b.failWith
	}
	b.deploys, b.actor = append(b.deploys, req), actor
	return &apiwire.Release{ID: "01JD3Q8Y7Z5W2X4V6T8R0P2N4M", Environment: req.Environment, Service: req.Service, Version: req.Version, State: "Validate"}, nil
}
func (b *recordingBackend) ApplyProject(_ context.Context, name string, req apiwire.ApplyProjectRequest, _ string) (*apiwire.Project, error) {
	return &apiwire.Project{Name: name, Version: req.BaseVersion + 1, Source: req.Source, Changed: true}, nil
}
func (b *recordingBackend) Project(_ context.Context, name string) (*apiwire.Project, error) {
	return nil, apiwire.Problemf(http.StatusNotFound, "UnknownProject", "project %q is not registered", name)
}
func (b *recordingBackend) Projects(context.Context) ([]*apiwire.Project, error) { return nil, nil }
func (b *recordingBackend) Rollback(context.Context, apiwire.RollbackRequest, string) (*apiwire.Release, error) {
	return nil, apiwire.Problemf(http.StatusNotFound, "NotFound", "no earlier release")
}
func (b *recordingBackend) Halt(context.Context, string, string, string) error { return nil }
func (b *recordingBackend) CheckLogs(context.Context, apiwire.LogsQuery) error { return nil }
func (b *recordingBackend) Logs(context.Context, apiwire.LogsQuery, func(apiwire.LogLine) error) error {
	return nil
}
func (b *recordingBackend) Events(context.Context, apiwire.EventFilter, func(apiwire.ServiceEvent) error) error {
	return nil
}
func (b *recordingBackend) Overview(context.Context, string, string) (*apiwire.Overview, error) {
	return &apiwire.Overview{}, nil
}
func (b *recordingBackend) Alarms(context.Context, apiwire.AlarmFilter) ([]apiwire.Alarm, error) {
	return nil, nil
}
func (b *recordingBackend) Notifications(context.Context, apiwire.AlarmFilter) ([]apiwire.Notification, error) {
	return nil, nil
}
func (b *recordingBackend) Maintenance(context.Context, string, string, string, apiwire.MaintenanceRequest, string) (*apiwire.Maintenance, error) {
	return &apiwire.Maintenance{}, nil
}
func (b *recordingBackend) Release(_ context.Context, id string) (*apiwire.ReleaseDetail, error) {
	return nil, apiwire.Problemf(http.StatusNotFound, "NotFound", "no release %s", id)
}
func (b *recordingBackend) Releases(context.Context, apiwire.ReleaseFilter) ([]*apiwire.Release, error) {
	return nil, nil
}
func (b *recordingBackend) Status(_ context.Context, project, env, svc string) (*apiwire.ServiceStatus, error) {
	return &apiwire.ServiceStatus{Project: project, Environment: env, Service: svc, Groups: []apiwire.Group{}, Routes: []apiwire.Route{}}, nil
}

// start serves the API over b and a real identity (SQLite store with user
// admin bootstrapped); it returns the server and admin's token.
func start(t *testing.T, b api.Backend, now time.Time) (*httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(dir, "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tokenFile := filepath.Join(dir, "admin.token")
	if _, err := auth.Bootstrap(context.Background(), st, tokenFile, now); err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	h := api.New(api.Options{Backend: b, Identity: server.NewIdentity(st, filepath.Join(dir, "audit.head"), clock), Now: clock})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, strings.TrimSpace(string(tok))
}

func deployReq(now time.Time) apiwire.DeployRequest {
	return apiwire.DeployRequest{Project: "acme", Environment: "staging", Service: "web", Version: "1.2.3",
		Sources:       []apiwire.SourceFile{{Name: "web/web.service.hcl", Content: `service "web" {}`}},
		ProjectSource: `project "acme" {}`, Dir: "/srv/acme/web",
		RequestID: "01JD3Q8Y7Z5W2X4V6T8R0P2N4A", RequestedAt: now}
}

func TestDeployThroughClient(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	b := &recordingBackend{}
	srv, token := start(t, b, now)
	c, _ := client.New(srv.URL, token)
	rel, err := c.Deploy(context.Background(), deployReq(now))
	if err != nil {
		t.Fatal(err)
	}
	if rel.Service != "web" || len(b.deploys) != 1 || b.actor != "admin" || b.deploys[0].Sources[0].Content != `service "web" {}` {
		t.Fatalf("release %+v, backend saw %+v as %q", rel, b.deploys, b.actor)
	}
	st, err := c.Status(context.Background(), "acme", "staging", "web")
	if err != nil || st.Service != "web" || st.Project != "acme" {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestErrors(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	b := &recordingBackend{}
	srv, token := start(t, b, now)
	good, _ := json.Marshal(deployReq(now))
	stale := deployReq(now.Add(-10 * time.Minute))
	staleBody, _ := json.Marshal(stale)
	cases := []struct {
		name, method, path, token, body string
		status                          int
		kind, detail                    string
	}{
		{"no token", "POST", "/v1/releases", "", string(good), 401, "Unauthorized", "RUNWAY_TOKEN"},
		{"wrong token", "POST", "/v1/releases", "nope", string(good), 401, "Unauthorized", "not a Runway token"},
		{"unknown token", "POST", "/v1/releases", "rwy_" + strings.Repeat("0", 64), string(good), 401, "Unauthorized", "unknown API token"},
		{"not json", "POST", "/v1/releases", token, "{", 400, "BadRequest", "not valid JSON"},
		{"empty", "POST", "/v1/releases", token, "", 400, "BadRequest", "empty"},
		{"unknown field", "POST", "/v1/releases", token, `{"environment":"a","servce":"b"}`, 400, "BadRequest", `field "servce": is not a known field`},
		{"wrong type", "POST", "/v1/releases", token, `{"environment":1}`, 400, "BadRequest", `"environment": must be string`},
		{"two values", "POST", "/v1/releases", token, string(good) + "{}", 400, "BadRequest", "more than one"},
		{"bad env", "POST", "/v1/releases", token, strings.Replace(string(good), `"staging"`, `"Stag ing"`, 1), 400, "BadRequest", `"environment"`},
		{"no sources", "POST", "/v1/releases", token, strings.Replace(string(good), `[{"name":"web/web.service.hcl","content":"service \"web\" {}"}]`, `[]`, 1), 400, "BadRelease", `"sources"`},
		{"source outside the project", "POST", "/v1/releases", token, strings.Replace(string(good), `web/web.service.hcl`, `../etc/x.hcl`, 1), 400, "BadRelease", `sources[0].name`},
		{"no project", "POST", "/v1/releases", token, strings.Replace(string(good), `"project":"acme"`, `"project":""`, 1), 400, "BadRequest", `"project"`},
		{"no project source", "POST", "/v1/releases", token, strings.Replace(string(good), `"project_source":"project \"acme\" {}"`, `"project_source":""`, 1), 400, "BadRelease", `"project_source"`},
		{"relative dir", "POST", "/v1/releases", token, strings.Replace(string(good), `"/srv/acme/web"`, `"srv/web"`, 1), 400, "BadRelease", `"dir"`},
		{"shell in version", "POST", "/v1/releases", token, strings.Replace(string(good), `"1.2.3"`, `"1.1;id\u003ex;#"`, 1), 400, "BadRelease", `letters, digits`},
		{"protected is not the client's to say", "POST", "/v1/releases", token, strings.Replace(string(good), `"project":"acme"`, `"project":"acme","protected":false`, 1), 400, "BadRequest", `field "protected": is not a known field`},
		{"stale", "POST", "/v1/releases", token, string(staleBody), 400, "StaleRequest", "replay window"},
		{"too large", "POST", "/v1/releases", token, `{"environment":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`, 413, "BodyTooLarge", "larger than"},
		{"bad limit", "GET", "/v1/releases?limit=0", token, "", 400, "BadRequest", "limit"},
		{"bad id", "GET", "/v1/releases/xyz", token, "", 404, "NotFound", "not a release id"},
		{"missing release", "GET", "/v1/releases/01JD3Q8Y7Z5W2X4V6T8R0P2N4M", token, "", 404, "NotFound", "no release"},
		{"unknown path", "GET", "/v1/nope", token, "", 404, "NotFound", "no API endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			if tc.method != "GET" {
				req.Header.Set(apiwire.DigestHeader, apiwire.ContentDigest([]byte(tc.body)))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p apiwire.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || p.Status != tc.status || p.Kind != tc.kind || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("got %d %+v, want %d %s containing %q", resp.StatusCode, p, tc.status, tc.kind, tc.detail)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
	if len(b.deploys) != 0 {
		t.Fatalf("a refused request reached the backend: %+v", b.deploys)
	}
}

func TestBackendErrorsAreNotLeaked(t *testing.T) {
	now := time.Now()
	b := &recordingBackend{failWith: context.DeadlineExceeded}
	srv, token := start(t, b, now)
	c, _ := client.New(srv.URL, token)
	_, err := c.Deploy(context.Background(), deployReq(now))
	var ce *client.Error
	if !asErr(err, &ce) || ce.Status != 500 || strings.Contains(ce.Detail, "deadline") {
		t.Fatalf("internal error should be a bare 500, got %v", err)
	}
	b.failWith = apiwire.Problemf(http.StatusConflict, "LockExists", "a release of web in staging is running")
	_, err = c.Deploy(context.Background(), deployReq(now))
	if !client.IsKind(err, "LockExists") {
		t.Fatalf("want LockExists, got %v", err)
	}
}

// TestStoreUnavailableIs503: an error of a store that cannot be reached
// is a 503 StoreUnavailable with Retry-After, whose detail says what to do
// and not what failed inside.
func TestStoreUnavailableIs503(t *testing.T) {
	now := time.Now()
	b := &recordingBackend{failWith: fmt.Errorf("list releases: dial tcp 10.1.2.3:5432: %w", store.ErrUnavailable)}
	srv, token := start(t, b, now)
	c, _ := client.New(srv.URL, token)
	_, err := c.Deploy(context.Background(), deployReq(now))
	var ce *client.Error
	if !asErr(err, &ce) || ce.Status != 503 || ce.Kind != apiwire.KindStoreUnavailable || strings.Contains(ce.Detail, "10.1.2.3") ||
		!strings.Contains(ce.Detail, "cannot reach its store") {
		t.Fatalf("want a 503 StoreUnavailable, got %v", err)
	}
}

func asErr(err error, target **client.Error) bool {
	e, ok := err.(*client.Error)
	if ok {
		*target = e
	}
	return ok
}

// TestHealthSaysWhetherTheStoreAnswers: GET /v1/health names the replica
// and the store's database; a store that does not answer makes it a 503
// whose body names no address (the route is public).
func TestHealthSaysWhetherTheStoreAnswers(t *testing.T) {
	var storeErr error
	h := api.New(api.Options{Backend: &recordingBackend{}, Replica: "a",
		StoreHealth: func(context.Context) (string, error) { return "postgres", storeErr }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	get := func() (int, string) {
		resp, err := http.Get(srv.URL + "/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || !strings.Contains(body, `"replica":"a"`) || !strings.Contains(body, `"reachable":true`) ||
		!strings.Contains(body, `"database":"postgres"`) {
		t.Fatalf("store up: %d %s", code, body)
	}
	storeErr = fmt.Errorf("dial tcp 10.9.8.7:5432: %w", store.ErrUnavailable)
	if code, body := get(); code != 503 || !strings.Contains(body, `"status":"store-unavailable"`) || !strings.Contains(body, `"reachable":false`) ||
		strings.Contains(body, "10.9.8.7") {
		t.Fatalf("store down: %d %s", code, body)
	}
}
