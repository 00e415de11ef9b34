package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// h2specVersion is the conformance tool's release the suite runs
// (github.com/summerwind/h2spec, built from the module proxy by .ci/run
// into the user's cache).
const h2specVersion = "v2.2.1"

// h2specPath returns the cached h2spec binary; it skips t, saying how to
// get it, when it is not there (.ci/run builds it).
func h2specPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RUNWAY_H2SPEC"); p != "" {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("h2spec: no cache directory: %v", err)
	}
	p := filepath.Join(cache, "runway", "h2spec-"+h2specVersion, "h2spec")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("h2spec %s not built (.ci/run builds it: GOBIN=%s go install github.com/summerwind/h2spec/cmd/h2spec@%s+incompatible)", h2specVersion, filepath.Dir(p), h2specVersion)
	}
	return p
}

// TestH2Spec runs the whole h2spec suite (HTTP/2 and HPACK, strict cases
// included) against the proxy's TLS listener, routed to a real backend:
// every case must pass.
func TestH2Spec(t *testing.T) {
	bin := h2specPath(t)
	p := startProxy(t, Options{})
	b := newBackend(t, "g/1", func(w http.ResponseWriter, r *http.Request) {
		// h2spec sends bodies in some cases: read them as an app would.
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r.Body)
		fmt.Fprintf(w, "ok %d\n", buf.Len())
	})
	mustUpdate(t, p, Config{
		Routes: []Route{{Environment: "production", Service: "web", Hosts: []string{"localhost"},
			Backends: []Backend{{Group: "g", Weight: 1}}}},
		Groups: map[string][]Target{"g": {b.target()}},
	})
	_, port, _ := net.SplitHostPort(p.https)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	cmd := exec.CommandContext(ctx, bin, "--strict", "--tls", "--insecure", "--host", "localhost", "--port", port,
		"--timeout", "5", "--junit-report", report)
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil || !strings.Contains(text, " 0 failed") {
		t.Fatalf("h2spec: %v\n%s", err, lastLines(text, 80))
	}
	t.Logf("h2spec: %s", lastLines(text, 1))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
