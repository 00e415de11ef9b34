package dashboard

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzSafeNext: a login's "next" (from the query or the form, so from
// anyone) sends the browser only to a dashboard page of this server.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/ui/", "/ui/p/a/e/b/", "//evil.example/ui/", "/ui/../v1/tokens", "https://evil.example/ui/", "/ui/\r\nSet-Cookie: x", "/ui\\evil", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got == "" {
			return
		}
		if got != next {
			t.Fatalf("safeNext(%q) = %q: it keeps or refuses, never rewrites", next, got)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("safeNext kept %q, which does not parse: %v", got, err)
		}
		if u.Scheme != "" || u.Host != "" || !strings.HasPrefix(path.Clean(u.Path)+"/", Prefix) {
			t.Fatalf("safeNext kept %q, which leaves the dashboard (scheme %q host %q path %q)", got, u.Scheme, u.Host, u.Path)
		}
	})
}
