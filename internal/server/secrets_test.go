package server

import (
	"context"
	"strings"
	"testing"

	"github.com/runwayhq/runway/internal/apiwire"
)

// TestSecretAPIBadInput: every bad request is refused with a problem that
// names the field and what to do, never quotes a value, and stores nothing.
func TestSecretAPIBadInput(t *testing.T) {
	t.Parallel()
	p := newInProc(t)
	ctx := context.Background()
	src := "project \"hello\" {}\nenvironment \"staging\" {}\n"
	if _, err := p.b.ApplyProject(ctx, "hello", apiwire.ApplyProjectRequest{Source: src}, "admin"); err != nil {
		t.Fatal(err)
	}
	const base = "/v1/projects/hello/environments/staging/secrets"
	const value = "zz-value-zz"
	put := func(req apiwire.SecretPutRequest) apiwire.SecretPutRequest {
		req.RequestID, req.RequestedAt = fresh()
		return req
	}
	cases := []struct {
		name, method, path string
		body               any
		status             int
		kind, detail       string
	}{
		{"no values", "PUT", base, put(apiwire.SecretPutRequest{Service: "web"}), 400, "BadRequest", `field "values" must hold 1 to 100 secrets`},
		{"bad key", "PUT", base, put(apiwire.SecretPutRequest{Values: map[string]string{"db-url": value}}), 400, "BadRequest", `"db-url" is not a secret key`},
		{"empty value", "PUT", base, put(apiwire.SecretPutRequest{Values: map[string]string{"DB": ""}}), 400, "BadRequest", "the value is empty"},
		{"too large", "PUT", base, put(apiwire.SecretPutRequest{Values: map[string]string{"DB": strings.Repeat("x", 65<<10)}}), 400, "BadRequest", "more than the 65536 allowed"},
		{"bad service", "PUT", base, put(apiwire.SecretPutRequest{Service: "Web", Values: map[string]string{"DB": value}}), 400, "BadRequest", `service "Web" is not a service name`},
		{"unknown environment", "PUT", "/v1/projects/hello/environments/prod/secrets", put(apiwire.SecretPutRequest{Values: map[string]string{"DB": value}}), 404, "UnknownEnvironment", `project hello has no environment "prod"`},
		{"unknown project", "PUT", "/v1/projects/nope/environments/staging/secrets", put(apiwire.SecretPutRequest{Values: map[string]string{"DB": value}}), 404, "UnknownProject", "runway project apply"},
		{"bad version", "GET", base + "/DB?version=0", nil, 400, "BadRequest", "query parameter version must be a version number"},
		{"missing secret", "GET", base + "/DB?service=web", nil, 404, "SecretNotFound", "secret DB (service web) has no value in staging of project hello; see runway secret list"},
		{"bad key in path", "GET", base + "/db", nil, 400, "BadRequest", `key "db" is not a secret key`},
		{"rollback without to", "POST", base + "/DB/rollback", apiwire.SecretRollbackRequest{RequestID: "01JD3Q8Y7Z5W2X4V6T8R0P2N4A"}, 400, "BadRequest", `field "to" must be the version to go back to`},
		{"delete of nothing", "POST", base + "/DB/delete", func() any { id, at := fresh(); return apiwire.SecretDeleteRequest{RequestID: id, RequestedAt: at} }(), 404, "SecretNotFound", "does not exist"},
	}
	for _, tc := range cases {
		status, kind, detail := p.do(tc.method, tc.path, p.admin, tc.body)
		if status != tc.status || kind != tc.kind || !strings.Contains(detail, tc.detail) {
			t.Errorf("%s: %d %s %q; want %d %s containing %q", tc.name, status, kind, detail, tc.status, tc.kind, tc.detail)
		}
		if strings.Contains(detail, value) {
			t.Errorf("%s: the answer quotes the value", tc.name)
		}
	}
	list, err := p.b.secrets.List(ctx, "hello", "staging", "")
	if err != nil || len(list) != 0 {
		t.Fatalf("refused requests stored secrets: %+v %v", list, err)
	}
}
