package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/dashboard"
	"github.com/runwayhq/runway/internal/server"
	"github.com/runwayhq/runway/internal/store"
)

// services is the size of the environment the benchmark renders.
const services = 100

// fleet is an api.Backend answering for one environment of 100 services,
// each with two groups, a canary split, alarms and 50 releases: the data a
// busy environment gives the dashboard. The API handler, the identity (a
// real SQLite store: tokens, users, audit) and the dashboard are the real
// ones, so the figures are the server's time for a page minus the
// backend's own reads (measured by the backend's benchmarks).
type fleet struct{ at time.Time }

var errNo = errors.New("not in the benchmark")

func (f *fleet) release(svc string, n int) *apiwire.Release {
	at := f.at.Add(time.Duration(n) * time.Minute)
	return &apiwire.Release{ID: fmt.Sprintf("01JD3Q8Y7Z5W2X4V6T8R%06d", n), Project: "acme", Environment: "production", Service: svc,
		Version: fmt.Sprintf("1.%d.0", n), CreatedBy: "ci", CreatedAt: at, State: "Success", Done: true, Served: 120000, Failed: 3, FinishedAt: &at, Digest: "sha256:x"}
}

func (f *fleet) ApplyProject(context.Context, string, apiwire.ApplyProjectRequest, string) (*apiwire.Project, error) {
	return nil, errNo
}
func (f *fleet) Project(context.Context, string) (*apiwire.Project, error) {
	return &apiwire.Project{Name: "acme", Version: 3, UpdatedBy: "admin", Definition: []byte(`{"environments":[{"name":"staging","target":"local"},{"name":"production","target":"local","protected":true}]}`)}, nil
}
func (f *fleet) Projects(ctx context.Context) ([]*apiwire.Project, error) {
	p, _ := f.Project(ctx, "acme")
	return []*apiwire.Project{{Name: p.Name, Version: p.Version, UpdatedBy: p.UpdatedBy}}, nil
}
func (f *fleet) Deploy(context.Context, apiwire.DeployRequest, string) (*apiwire.Release, error) {
	return nil, errNo
}
func (f *fleet) Rollback(context.Context, apiwire.RollbackRequest, string) (*apiwire.Release, error) {
	return nil, errNo
}
func (f *fleet) Maintenance(context.Context, string, string, string, apiwire.MaintenanceRequest, string) (*apiwire.Maintenance, error) {
	return nil, errNo
}
func (f *fleet) Halt(context.Context, string, string, string) error { return errNo }
func (f *fleet) Release(_ context.Context, id string) (*apiwire.ReleaseDetail, error) {
	d := &apiwire.ReleaseDetail{Release: *f.release("web-1", 7)}
	for i, s := range []string{"Validate", "Lock", "ValidateResources", "Deploy", "Deploy", "Deploy", "Deploy", "Deploy", "CheckHealthy", "CleanUpSuccess", "ReleaseLock", "Success"} {
		d.Events = append(d.Events, apiwire.Event{At: f.at.Add(time.Duration(i) * time.Second), State: s, Step: i % 4, Message: "step " + s + " of the release with its details"})
	}
	return d, nil
}
func (f *fleet) Releases(_ context.Context, q apiwire.ReleaseFilter) ([]*apiwire.Release, error) {
	var out []*apiwire.Release
	for i := q.Limit; i > 0; i-- {
		out = append(out, f.release(q.Service, i))
	}
	return out, nil
}
func (f *fleet) Status(_ context.Context, project, env, svc string) (*apiwire.ServiceStatus, error) {
	st := &apiwire.ServiceStatus{Project: project, Environment: env, Service: svc, Current: f.release(svc, 50), InProgress: f.release(svc, 51),
		Alarms: []string{"high_error_rate"}}
	for g := 0; g < 2; g++ {
		grp := apiwire.Group{Name: fmt.Sprintf("%s-g%d", svc, g), Release: f.release(svc, 50+g).ID, Version: "1.5.0", Desired: 10, Healthy: 10}
		for i := 0; i < 10; i++ {
			grp.Instances = append(grp.Instances, apiwire.Instance{ID: fmt.Sprintf("%08x", g*100+i), State: "healthy", Restarts: i % 2})
		}
		st.Groups = append(st.Groups, grp)
		st.Routes = append(st.Routes, apiwire.Route{Group: grp.Name, Weight: 50})
	}
	return st, nil
}
func (f *fleet) CheckLogs(context.Context, apiwire.LogsQuery) error { return nil }
func (f *fleet) Logs(_ context.Context, q apiwire.LogsQuery, emit func(apiwire.LogLine) error) error {
	for i := 0; i < q.Tail; i++ {
		if err := emit(apiwire.LogLine{Time: f.at.Add(time.Duration(i) * time.Millisecond), Instance: "a58980c1", Group: "g", Version: "1.5.0", Stream: "stdout",
			Text: fmt.Sprintf("GET /api/orders/%d 200 12ms user-agent=curl/8.0", i)}); err != nil {
			return err
		}
	}
	return nil
}
func (f *fleet) Events(context.Context, apiwire.EventFilter, func(apiwire.ServiceEvent) error) error {
	return nil
}
func (f *fleet) Overview(_ context.Context, project, env string) (*apiwire.Overview, error) {
	o := &apiwire.Overview{Project: project, Environment: env, At: f.at, Window: "30s"}
	for i := 0; i < services; i++ {
		o.Services = append(o.Services, apiwire.ServiceOverview{Service: fmt.Sprintf("web-%d", i),
			Versions: []apiwire.VersionShare{{Version: "1.4.0", Weight: 70, Healthy: 5, Total: 5}, {Version: "1.5.0", Weight: 30, Healthy: 2, Total: 2}},
			Healthy:  7, Total: 7, RequestsPerSecond: 231.5, ErrorRate: 0.002, P50Seconds: 0.012, P99Seconds: 0.18, Alarms: []string{"high_latency"}, InProgress: "Deploy"})
	}
	return o, nil
}
func (f *fleet) Alarms(context.Context, apiwire.AlarmFilter) ([]apiwire.Alarm, error) {
	var out []apiwire.Alarm
	for i := 0; i < services; i++ {
		out = append(out, apiwire.Alarm{Project: "acme", Environment: "production", Service: fmt.Sprintf("web-%d", i), Name: "high_error_rate",
			Metric: "error_rate", Comparison: ">", Threshold: 0.05, For: "1m", State: "OK", Since: f.at, Notify: []string{"ops"}})
	}
	return out, nil
}
func (f *fleet) Notifications(context.Context, apiwire.AlarmFilter) ([]apiwire.Notification, error) {
	var out []apiwire.Notification
	for i := 0; i < services; i++ {
		out = append(out, apiwire.Notification{ID: fmt.Sprint(i), CreatedAt: f.at, Project: "acme", Environment: "production", Service: fmt.Sprintf("web-%d", i),
			Alarm: "high_error_rate", Channel: "ops", State: "delivered", Attempts: 1})
	}
	return out, nil
}

// BenchmarkPages renders each page of an environment of 100 services with
// a session of a global_admin: session check, the page's API calls in
// process (authentication, the role table, JSON both ways) and the template.
func BenchmarkPages(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "runway.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tokenFile := filepath.Join(dir, "admin.token")
	if _, err := auth.Bootstrap(ctx, st, tokenFile, time.Now()); err != nil {
		b.Fatal(err)
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		b.Fatal(err)
	}
	// The release page's rule reads where the release belongs from the store.
	if err := st.CreateRelease(ctx, &store.Release{ID: "01JD3Q8Y7Z5W2X4V6T8R000007", Project: "acme", Environment: "production", Service: "web-1",
		Version: "1.7.0", CreatedBy: "ci", CreatedAt: time.Now(), Digest: "sha256:x", Spec: []byte("{}"), Progress: store.Progress{State: "Success"}}); err != nil {
		b.Fatal(err)
	}
	id := server.NewIdentity(st, filepath.Join(dir, "audit.head"), nil)
	for i := 0; i < 200; i++ {
		if err := id.Audit(ctx, apiwire.AuditEntry{At: time.Now(), Actor: "ci", Action: "release.deploy", Target: fmt.Sprintf("acme/production/web-%d", i), Outcome: "201 Created"}); err != nil {
			b.Fatal(err)
		}
	}
	h := api.New(api.Options{Backend: &fleet{at: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}, Identity: id})
	d, err := dashboard.New(dashboard.Options{API: h, Tokens: server.TokenTimes{Store: st}})
	if err != nil {
		b.Fatal(err)
	}
	cookie := &http.Cookie{Name: dashboard.CookieName, Value: strings.TrimSpace(string(tok))}
	for _, page := range []struct{ name, path, want string }{
		{"projects", "/ui/", "production"},
		{"environment", "/ui/p/acme/e/production/", "web-99"},
		{"service", "/ui/p/acme/e/production/s/web-1/", "Roll back to this"},
		{"release", "/ui/r/01JD3Q8Y7Z5W2X4V6T8R000007", "CleanUpSuccess"},
		{"logs", "/ui/p/acme/e/production/s/web-1/logs", "/api/orders/199"},
		{"alarms", "/ui/p/acme/e/production/alarms", "web-99"},
		{"audit", "/ui/audit", "release.deploy"},
	} {
		b.Run(page.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest(http.MethodGet, page.path, nil)
				req.AddCookie(cookie)
				w := httptest.NewRecorder()
				d.ServeHTTP(w, req)
				if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), page.want) {
					b.Fatalf("GET %s: %d\n%.2000s", page.path, w.Code, w.Body.String())
				}
			}
		})
	}
}
