package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

// FuzzDecodeRequests feeds arbitrary bodies to every request decoder and
// validator: never a panic, and every refusal is a 4xx problem.
func FuzzDecodeRequests(f *testing.F) {
	f.Add([]byte(`{"project":"acme","environment":"staging","service":"web","version":"1","sources":[{"name":"web.service.hcl","content":"service \"web\" {}"}],"project_source":"project \"acme\" {}","dir":"/srv/web","request_id":"01JD3Q8Y7Z5W2X4V6T8R0P2N4A","requested_at":"2026-11-25T12:00:00Z"}`))
	f.Add([]byte(`{"source":"project \"acme\" {}","base_version":1,"request_id":"01JD3Q8Y7Z5W2X4V6T8R0P2N4A","requested_at":"2026-11-25T12:00:00Z"}`))
	f.Add([]byte(`{"environment":"production","service":"web","to":"01JD3Q8Y7Z5W2X4V6T8R0P2N4A","request_id":"01JD3Q8Y7Z5W2X4V6T8R0P2N4A","requested_at":"2026-11-25T12:00:00Z"}`))
	f.Add([]byte(`{"reason":"stop"}`))
	f.Add([]byte(`{"name":"ci","roles":["staging_deployer@hello","read_only"],"expires_in":"720h","request_id":"01JD3Q8Y7Z5W2X4V6T8R0P2N4A","requested_at":"2026-11-25T12:00:00Z"}`))
	f.Add([]byte(`{"add_roles":["production_admin"],"remove_roles":["global_admin@x"],"disabled":true}`))
	f.Add([]byte(`{"manifest":[1,2,{"a":null}]}`))
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, v := range []any{&apiwire.DeployRequest{}, &apiwire.RollbackRequest{}, &apiwire.ApplyProjectRequest{}, &apiwire.CreateUserRequest{}, &apiwire.UpdateUserRequest{}, &apiwire.CreateTokenRequest{}} {
			r := httptest.NewRequest(http.MethodPost, "/v1/releases", bytes.NewReader(body))
			err := decodeBody(r, v)
			if err == nil {
				err = validate(v)
			}
			if err == nil {
				var env envelope
				_ = json.Unmarshal(body, &env)
				err = checkFreshness(env.RequestID, env.RequestedAt, now, 5*time.Minute)
			}
			if err != nil {
				p, ok := err.(*apiwire.Problem)
				if !ok || p.Status < 400 || p.Status > 499 || p.Detail == "" {
					t.Fatalf("refusal is not a 4xx problem: %#v", err)
				}
			}
		}
		var h apiwire.HaltRequest
		_ = decodeJSON(body, &h)
	})
}

// validate checks a decoded request body (a pointer to one of the request
// types of internal/apiwire) with the handler's rule for its type.
func validate(v any) error {
	switch r := v.(type) {
	case *apiwire.DeployRequest:
		return validateDeployRequest(r)
	case *apiwire.ApplyProjectRequest:
		return validateApplyProjectRequest(r)
	case *apiwire.RollbackRequest:
		return validateRollbackRequest(r)
	case *apiwire.CreateUserRequest:
		return validateCreateUserRequest(r)
	case *apiwire.UpdateUserRequest:
		return validateUpdateUserRequest(r)
	case *apiwire.CreateTokenRequest:
		return validateCreateTokenRequest(r)
	}
	return fmt.Errorf("validate: no rule for %T", v)
}

// FuzzLogsQuery: the query of a logs request (untrusted) is refused or read
// into bounds, never a panic.
func FuzzLogsQuery(f *testing.F) {
	for _, s := range []string{"since=10m&tail=5", "since=2026-12-01T09:00:00Z&filter=GET", "tail=-1", "since=-5m", "instance=a58980c1&follow=true", "release=01JD3Q8Y7Z5W2X4V6T8R0P2N4A", "follow=maybe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.URL.RawQuery = raw
		r.SetPathValue("project", "hello")
		r.SetPathValue("env", "staging")
		r.SetPathValue("service", "web")
		q, err := logsQuery(r)
		if err != nil {
			return
		}
		if q.Tail < 0 || q.Tail > maxTail || len(q.Filter) > 1000 {
			t.Fatalf("out of bounds: %+v", q)
		}
	})
}
