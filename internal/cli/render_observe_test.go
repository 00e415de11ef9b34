package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

func TestLogLine(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		ago  time.Duration
		want string
	}{
		{0, "[a58980] :: just now :: GET / 200 43µs\n"},
		{time.Second, "[a58980] :: 1 second ago :: GET / 200 43µs\n"},
		{2*time.Minute + 5*time.Second, "[a58980] :: 2 minutes ago :: GET / 200 43µs\n"},
		{3 * time.Hour, "[a58980] :: 3 hours ago :: GET / 200 43µs\n"},
		{72 * time.Hour, "[a58980] :: 3 days ago :: GET / 200 43µs\n"},
	} {
		var b bytes.Buffer
		if err := logLine(&b, apiwire.LogLine{Time: now.Add(-tc.ago), Instance: "a58980c1", Text: "GET / 200 43µs"}, now, false); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s ago: %q, want %q", tc.ago, b.String(), tc.want)
		}
	}
	var b bytes.Buffer
	_ = logLine(&b, apiwire.LogLine{Time: now, Instance: "a58980c1", Text: "x"}, now, true)
	if !strings.HasPrefix(b.String(), "\x1b[3") || !strings.Contains(b.String(), "[a58980]\x1b[0m :: just now :: x") {
		t.Errorf("coloured: %q", b.String())
	}
}

func TestStatusMarksAlerts(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, &apiwire.ServiceStatus{Service: "hello", Environment: "dev", Alarms: []string{"no_healthy_instance"},
		FailureDirty: []*apiwire.Release{{ID: "01JD3Q8Y7Z5W2X4V6T8R0P2N4A", Version: "2", Error: "delete group hello-x: agent unreachable"}}})
	out := b.String()
	for _, want := range []string{"hello in dev  ALERT: no_healthy_instance\n",
		"  FAILURE DIRTY:    01JD3Q8Y7Z5W2X4V6T8R0P2N4A  version 2: delete group hello-x: agent unreachable"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
}

func TestTopFrame(t *testing.T) {
	var b bytes.Buffer
	_ = topFrame(&b, &apiwire.Overview{Project: "hello", Environment: "dev", Window: "30s", Services: []apiwire.ServiceOverview{{
		Service: "hello", Versions: []apiwire.VersionShare{{Version: "2", Weight: 90}, {Version: "1", Weight: 10}},
		Healthy: 5, Total: 6, RequestsPerSecond: 12.34, ErrorRate: 0.015, P50Seconds: 0.00043, P99Seconds: 0.0123,
		CPUPercent: 1.5, RSSBytes: 21 << 20, Restarts: 2, Alarms: []string{"instance_crash_looping"}, InProgress: "Deploy"}}})
	out := b.String()
	if !strings.Contains(out, "hello            v2 90%, v1 10% (Deploy)      5/6         12.3   1.5%    430µs     12ms   1.5%  21.0MiB        2  ALERT instance_crash_looping") {
		t.Errorf("top frame:\n%s", out)
	}
}
