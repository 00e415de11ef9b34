package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBenchmarkDashboard100 is the dashboard's benchmark on a real server:
// an environment of 100 services (one hello instance each, on a real agent)
// and each page read through the real HTTP stack with a session, timed by
// testing.Benchmark (it reports; it asserts no time). It deploys 100
// services first (a minute or two), so it runs only when asked:
//
//	RUNWAY_BENCH_DASHBOARD=1 go test -run TestBenchmarkDashboard100 -v ./internal/server
func TestBenchmarkDashboard100(t *testing.T) {
	if os.Getenv("RUNWAY_BENCH_DASHBOARD") != "1" {
		t.Skip("a benchmark: set RUNWAY_BENCH_DASHBOARD=1 to run it (deploys 100 services)")
	}
	lo, _ := strconv.Atoi(strings.Split(portRange(), "-")[0])
	if lo > 31800 {
		lo = 20000
	}
	c := startCluster(t, "--port-range", fmt.Sprintf("%d-%d", lo, lo+199))
	const n = 100
	for i := 0; i < n; i++ {
		// The manifest's health defaults (a check every 5s), as services have them.
		c.writeManifest(manifest{Service: fmt.Sprintf("svc%03d", i), Strategy: "recreate", Desired: 1, DefaultHealth: true})
	}
	c.applyProject()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		svc := fmt.Sprintf("svc%03d", i)
		req := c.deployRequest(svc, "1")
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rel, err := c.api.Deploy(context.Background(), req)
			if err != nil {
				errs <- fmt.Errorf("deploy %s: %w", svc, err)
				return
			}
			for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); <-time.After(200 * time.Millisecond) {
				r, err := c.api.Release(context.Background(), rel.ID)
				if err == nil && r.Done {
					if r.State != "Success" {
						errs <- fmt.Errorf("%s ended %s: %s", svc, r.State, r.Error)
					}
					return
				}
			}
			errs <- fmt.Errorf("%s did not end", svc)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b := newBrowser(t, c)
	if st, _, _ := b.post("/ui/login", url.Values{"token": {c.adminToken()}}); st != http.StatusOK {
		t.Fatalf("token login: %d", st)
	}
	for _, p := range []struct{ name, path, want string }{
		{"projects", "/ui/", "dev"},
		{"environment", "/ui/p/e2e/e/dev/", "svc099"},
		{"service", "/ui/p/e2e/e/dev/s/svc050/", "Serving <b>1</b>"},
		{"alarms", "/ui/p/e2e/e/dev/alarms", "Deliveries"},
		{"audit", "/ui/audit", "release.deploy"},
		{"logs", "/ui/p/e2e/e/dev/s/svc050/logs", "Logs of svc050"},
	} {
		res := testing.Benchmark(func(bb *testing.B) {
			for i := 0; i < bb.N; i++ {
				st, page := b.get(p.path)
				if st != http.StatusOK || !strings.Contains(page, p.want) {
					t.Errorf("GET %s: %d", p.path, st)
					return
				}
			}
		})
		t.Logf("BenchmarkDashboard100/%s\t%s\t%.1f ms/page", p.name, res.String(), float64(res.NsPerOp())/1e6)
	}
}
