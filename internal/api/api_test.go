package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
)

// recordingEngine records releases in a real store instead of running them.
type recordingEngine struct {
	st  *store.SQLite
	mu  sync.Mutex
	got []engine.Request
}

func (e *recordingEngine) Submit(ctx context.Context, req engine.Request) (*store.Release, error) {
	e.mu.Lock()
	e.got = append(e.got, req)
	e.mu.Unlock()
	r := &store.Release{ID: store.NewID(time.Now()), Environment: req.Environment, Service: req.Service.Name,
		Version: req.Version, Spec: []byte("{}"), Progress: store.Progress{State: "Validate"}}
	return r, e.st.CreateRelease(ctx, r)
}

func (e *recordingEngine) Halt(ctx context.Context, id, reason string) error {
	return e.st.RequestHalt(ctx, id, reason)
}

func newServer(t *testing.T) (*httptest.Server, *recordingEngine) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng := &recordingEngine{st: st}
	h := New(Options{Engine: eng, Records: st, MaxBody: 4096, Environment: func(name string) (bool, bool) {
		switch name {
		case "production":
			return true, true
		case "staging":
			return false, true
		}
		return false, false
	}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, eng
}

const validDeploy = `{"environment":"production","version":"v2","service":{"name":"web","command":["./web"],"file":"web.service.hcl"}}`

func do(t *testing.T, srv *httptest.Server, method, path, ctype, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestReleasesEndpoints(t *testing.T) {
	srv, eng := newServer(t)
	resp, body := do(t, srv, "GET", "/v1/health", "", "")
	if resp.StatusCode != 200 || body["status"] != "ok" {
		t.Fatalf("health: %d %v", resp.StatusCode, body)
	}

	resp, body = do(t, srv, "POST", "/v1/releases", "application/json; charset=utf-8", validDeploy)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d %v", resp.StatusCode, body)
	}
	id, _ := body["id"].(string)
	if id == "" || resp.Header.Get("Location") != "/v1/releases/"+id {
		t.Fatalf("create: id %q, location %q", id, resp.Header.Get("Location"))
	}
	if len(eng.got) != 1 || !eng.got[0].Protected || eng.got[0].Service.Name != "web" || eng.got[0].Version != "v2" {
		t.Errorf("engine got %+v", eng.got)
	}

	resp, body = do(t, srv, "GET", "/v1/releases/"+id, "", "")
	if resp.StatusCode != 200 || body["state"] != "Validate" || body["service"] != "web" {
		t.Errorf("get: %d %v", resp.StatusCode, body)
	}
	resp, body = do(t, srv, "GET", "/v1/releases?service=web&limit=10", "", "")
	if rs, _ := body["releases"].([]any); resp.StatusCode != 200 || len(rs) != 1 {
		t.Errorf("list: %d %v", resp.StatusCode, body)
	}
	resp, _ = do(t, srv, "POST", "/v1/releases/"+id+"/halt", "", "")
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("halt with empty body: %d", resp.StatusCode)
	}
	resp, _ = do(t, srv, "POST", "/v1/releases/"+id+"/halt", "application/json", `{"reason":"operator"}`)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("halt: %d", resp.StatusCode)
	}
	if r, _ := eng.st.GetRelease(context.Background(), id); !r.HaltRequested || r.HaltReason != "operator" {
		t.Errorf("halt not recorded: %+v", r)
	}
	// A finished release cannot be halted.
	p := r0(t, eng.st, id).Progress
	p.Done, p.State = true, "Success"
	if err := eng.st.SaveProgress(context.Background(), id, p); err != nil {
		t.Fatal(err)
	}
	if resp, body = do(t, srv, "POST", "/v1/releases/"+id+"/halt", "", ""); resp.StatusCode != http.StatusConflict {
		t.Errorf("halt finished: %d %v", resp.StatusCode, body)
	}
}

func r0(t *testing.T, st *store.SQLite, id string) *store.Release {
	r, err := st.GetRelease(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestProblems(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		detail                          string
	}{
		{"not JSON", "POST", "/v1/releases", "application/json", `{"environment":`, 400, "not valid JSON"},
		{"unknown field", "POST", "/v1/releases", "application/json", `{"environment":"staging","servce":{}}`, 400, "unknown field"},
		{"trailing data", "POST", "/v1/releases", "application/json", validDeploy + `{}`, 400, "after the JSON"},
		{"every problem listed", "POST", "/v1/releases", "application/json", `{"environment":"Prod!","service":{"name":""}}`, 400, "service.name"},
		{"wrong content type", "POST", "/v1/releases", "text/plain", validDeploy, 415, "application/json"},
		{"no content type", "POST", "/v1/releases", "", validDeploy, 415, "application/json"},
		{"too large", "POST", "/v1/releases", "application/json", `{"environment":"` + strings.Repeat("a", 5000) + `"}`, 413, "limited"},
		{"unknown environment", "POST", "/v1/releases", "application/json", strings.Replace(validDeploy, "production", "qa", 1), 404, "runway.hcl"},
		{"missing release", "GET", "/v1/releases/01NOPE", "", "", 404, "01NOPE"},
		{"halt missing release", "POST", "/v1/releases/01NOPE/halt", "", "", 404, "01NOPE"},
		{"bad limit", "GET", "/v1/releases?limit=0", "", "", 400, "limit"},
		{"unknown endpoint", "GET", "/v2/nothing", "", "", 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, srv, tt.method, tt.path, tt.ctype, tt.body)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d (%v)", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			b, _ := json.Marshal(body)
			if !bytes.Contains(b, []byte(tt.detail)) {
				t.Errorf("problem %s does not mention %q", b, tt.detail)
			}
			if body["status"] != float64(tt.status) || body["title"] == "" || body["type"] == "" {
				t.Errorf("incomplete problem: %v", body)
			}
		})
	}
}

func TestDecodersSeedCorpus(t *testing.T) {
	if _, err := DecodeDeployRequest([]byte(validDeploy)); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeDeployRequest([]byte(`{"environment":"staging","service":{"name":"web","image":"x"},"version":"` + strings.Repeat("v", 129) + `"}`)); err == nil {
		t.Error("long version accepted")
	}
	if r, err := DecodeHaltRequest([]byte("  ")); err != nil || r.Reason != "" {
		t.Errorf("blank halt: %v", err)
	}
	if _, err := DecodeHaltRequest([]byte(`{"reason":"` + strings.Repeat("r", 1025) + `"}`)); err == nil {
		t.Error("long reason accepted")
	}
}

func FuzzDecodeDeployRequest(f *testing.F) {
	f.Add([]byte(validDeploy))
	f.Add([]byte(`{"environment":"staging","service":{"name":"api","image":"ghcr.io/x/api@sha256:00","deploy":{"strategy":"canary","timeout":"5m","canary":{"steps":[{"weight":10,"pause":"1m"}]}}}}`))
	f.Add([]byte(`{"environment":"staging","service":{"name":"web","command":["a"],"scale":{"spread":1e308}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"environment":"x","service":{"deploy":{"timeout":"-9223372036854775808ns"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeDeployRequest(b)
		if err != nil {
			return
		}
		// What was accepted survives a round trip unchanged.
		out, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode accepted request: %v", err)
		}
		again, err := DecodeDeployRequest(out)
		if err != nil {
			t.Fatalf("accepted request does not decode again: %v\n%s", err, out)
		}
		out2, _ := json.Marshal(again)
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the request:\n%s\n%s", out, out2)
		}
	})
}

func FuzzDecodeHaltRequest(f *testing.F) {
	f.Add([]byte(``))
	f.Add([]byte(`{"reason":"operator"}`))
	f.Add([]byte(`{"reason":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeHaltRequest(b)
		if err == nil && len(req.Reason) > 1024 {
			t.Fatal("reason over the limit accepted")
		}
	})
}
