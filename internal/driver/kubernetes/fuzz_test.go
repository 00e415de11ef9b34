package kubernetes

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeRoutes: the routes annotation read back from the cluster (any
// client with write access to the Service may have changed it) decodes to
// routes or an error, never a panic, and what decodes encodes back to the
// same routes.
func FuzzDecodeRoutes(f *testing.F) {
	f.Add(`[{"group":"web-01abc","weight":100}]`)
	f.Add(`[]`)
	f.Add(`{"group":1}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, a string) {
		rs, err := decodeRoutes(a)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		if len(rs) == 0 {
			return
		}
		b, _ := json.Marshal(rs)
		again, err := decodeRoutes(string(b))
		if err != nil || len(again) != len(rs) {
			t.Fatalf("round trip of %s: %v, %v", b, again, err)
		}
	})
}

// FuzzParseLine: a log line from the kubelet (the container's own output)
// keeps its text whole; a leading RFC 3339 time becomes the line's time.
func FuzzParseLine(f *testing.F) {
	f.Add("2026-12-01T14:00:00.123456789Z listening on :8080")
	f.Add("no timestamp here")
	f.Add(" ")
	f.Fuzz(func(t *testing.T, s string) {
		l := parseLine("pod-1", s)
		if l.Instance != "pod-1" || l.Stream != "stdout" {
			t.Fatalf("line %+v", l)
		}
		if l.Time.IsZero() {
			if l.Text != s {
				t.Fatalf("text %q of an untimed line %q", l.Text, s)
			}
			return
		}
		ts := l.Time.Format(time.RFC3339Nano)
		if !strings.HasSuffix(s, l.Text) || len(l.Text) >= len(s) || ts == "" {
			t.Fatalf("line %q parsed as %+v", s, l)
		}
	})
}
