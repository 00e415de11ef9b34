package agent

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsNeedTheToken: on the API's address /metrics needs the agent
// token like everything but /v1/health; --metrics-listen serves it without
// one on an address of its own.
func TestMetricsNeedTheToken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "runway_test_total", Help: "a test counter"}))
	a, _ := startAgent(t, Options{Metrics: reg, MetricsListen: metricsAddr})
	get := func(url, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(a.URL()+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("/metrics on the API without the token: %d, want 401", code)
	}
	if code, body := get(a.URL()+"/metrics", a.Token()); code != 200 || !strings.Contains(body, "runway_test_total") {
		t.Errorf("/metrics on the API with the token: %d", code)
	}
	if code, _ := get(a.URL()+"/v1/health", ""); code != 200 {
		t.Errorf("/v1/health without the token: %d, want 200", code)
	}
	if code, body := get("http://"+metricsAddr+"/metrics", ""); code != 200 || !strings.Contains(body, "runway_test_total") {
		t.Errorf("/metrics on --metrics-listen: %d", code)
	}
	if code, _ := get("http://"+metricsAddr+"/v1/groups", a.Token()); code != http.StatusNotFound {
		t.Errorf("the metrics address serves the API: %d", code)
	}
}
