package kubernetes

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/target"
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

// FuzzDecodeStats: a replica's statistics record read from its Lease (any
// client allowed to write Leases in the namespace may have written it)
// decodes to a record within every bound, or an error of one line, never
// a panic; what decodes encodes back to the same record, and its sums over
// any window stay within its numbers.
func FuzzDecodeStats(f *testing.F) {
	f.Add(`{"v":1,"replica":"runway-proxy-7d9c-x2b4q","process":"a1","at":1000,"width":5,"services":[{"project":"acme","environment":"prod","service":"web","served":12,"failed":1,"groups":[{"group":"web-01abc","buckets":[{"t":990,"n":12,"e":1,"l":[[50000,10],[62500,2]]}]}]}]}`)
	f.Add(`{"v":1,"replica":"r","process":"p","at":0,"width":5,"services":[]}`)
	f.Add(`{"v":2}`)
	f.Add(`{"v":1,"replica":"r","process":"p","at":10,"width":5,"services":[{"environment":"e","service":"s","served":1,"failed":0,"groups":[{"group":"g","buckets":[{"t":5,"n":1099511627776,"e":0,"l":[[1,1099511627776]]}]}]}]} `)
	f.Add(``)
	f.Fuzz(func(t *testing.T, a string) {
		r, err := DecodeStats([]byte(a))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		b, _ := json.Marshal(r)
		again, err := DecodeStats(b)
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip of %s: %+v, %v", b, again, err)
		}
		for _, s := range r.Services {
			ref := target.ServiceRef{Project: s.Project, Environment: s.Environment, Service: s.Service}
			for _, g := range s.Groups {
				sum := &windowSum{latency: map[int64]int64{}}
				r.window(ref, g.Group, 0, r.At, sum)
				ws := sum.stats()
				if ws.Requests < 0 || ws.Errors < 0 || ws.Errors > ws.Requests || ws.P50 > ws.P99 || ws.P50 < 0 {
					t.Fatalf("window of %s: %+v", g.Group, ws)
				}
			}
		}
	})
}
