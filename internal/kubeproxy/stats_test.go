package kubeproxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/runwayhq/runway/internal/config"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/k8stest"
	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// clock is a settable clock shared by the proxies, their publishers and
// the driver.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// rbacNamespace creates ns with Runway's Roles bound (runway kubernetes
// rbac) and returns clients that are the server's and the proxy's service
// accounts (impersonated): every call of the test's driver and publishers
// has the rights the Roles give, no more.
func rbacNamespace(t *testing.T, kc *k8stest.Cluster, ns string) (server, proxyClient kubernetes.Interface) {
	t.Helper()
	ctx := context.Background()
	if _, err := kc.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := k8sdriver.ApplyRBAC(ctx, kc.Client, k8sdriver.RBACOptions{Namespace: ns}); err != nil {
		t.Fatal(err)
	}
	as := func(sa, saNS string) kubernetes.Interface {
		cfg := rest.CopyConfig(kc.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + saNS + ":" + sa,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNS, "system:authenticated"}}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return as("runway", "runway"), as(k8sdriver.ProxyName, ns)
}

// statsProxy is one proxy replica: a real proxy on loopback routing
// service web's two groups, ok to a backend answering 200 and bad to one
// answering 500.
type statsProxy struct {
	p    *proxy.Proxy
	addr string
}

func newStatsProxy(t *testing.T, clk *clock, ok, bad string) *statsProxy {
	t.Helper()
	p, err := proxy.New(proxy.Options{HTTPAddr: "127.0.0.1:0", HTTPSAddr: proxy.Off, Now: clk.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &statsProxy{p: p, addr: p.HTTPAddr().String()}
}

// route routes every request of web to group (one group at a time, so the
// test knows each group's count).
func (s *statsProxy) route(t *testing.T, group, addr string) {
	t.Helper()
	cfg := proxy.Config{Routes: []proxy.Route{{Project: "acme", Environment: "prod", Service: "web", Hosts: []string{"web.prod.acme.test"},
		Backends: []proxy.Backend{{Group: group, Weight: 1}}}},
		Groups: map[string][]proxy.Target{group: {{Instance: group + "-0", Addr: addr}}}}
	if err := s.p.Update(cfg); err != nil {
		t.Fatal(err)
	}
}

func (s *statsProxy) send(t *testing.T, n, wantCode int) {
	t.Helper()
	for range n {
		req, _ := http.NewRequest("GET", "http://"+s.addr+"/", nil)
		req.Host = "web.prod.acme.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != wantCode {
			t.Fatalf("status %d, want %d", resp.StatusCode, wantCode)
		}
	}
}

// TestStatsPublished: two proxy replicas publish what they served into
// their Leases (as the proxy's service account); the driver (as the
// server's) reads their exact sums over windows that take or leave out
// each bucket; a replica that restarts carries its figures on without
// counting them twice; two processes under one name do not add up to
// more than was served; a replica gone for StatsExpiry is deleted by the
// others.
func TestStatsPublished(t *testing.T) {
	kc := k8stest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "acme-prod"
	server, proxyClient := rbacNamespace(t, kc, ns)
	okSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	defer okSrv.Close()
	badSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "broken", 500) }))
	defer badSrv.Close()
	okAddr, badAddr := strings.TrimPrefix(okSrv.URL, "http://"), strings.TrimPrefix(badSrv.URL, "http://")

	t0 := time.Unix(1_900_000_000, 0) // a multiple of the bucket width
	clk := &clock{t: t0}
	r1, r2 := newStatsProxy(t, clk, okAddr, badAddr), newStatsProxy(t, clk, okAddr, badAddr)
	pub := func(replica string, s *statsProxy) *Publisher {
		return &Publisher{Client: proxyClient, Namespace: ns, Replica: replica, Source: s.p, Now: clk.Now,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	p1, p2 := pub("runway-proxy-a", r1), pub("runway-proxy-b", r2)
	d, err := k8sdriver.New(k8sdriver.Options{Client: server, Traffic: config.TrafficRunway, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ref := target.ServiceRef{Project: "acme", Environment: "prod", Service: "web"}
	publish := func(ps ...*Publisher) {
		t.Helper()
		for _, p := range ps {
			if err := p.Publish(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	stats := func(group string, window time.Duration) strategy.WindowStats {
		t.Helper()
		ws, err := d.WindowStats(ctx, ref, group, window)
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	check := func(what, group string, window time.Duration, requests, errors int64) {
		t.Helper()
		ws := stats(group, window)
		if ws.Requests != requests || ws.Errors != errors {
			t.Errorf("%s: group %s over %s: %d requests, %d errors; want %d, %d", what, group, window, ws.Requests, ws.Errors, requests, errors)
		}
		if requests > 0 && (ws.P50 <= 0 || ws.P99 < ws.P50) {
			t.Errorf("%s: percentiles p50 %s, p99 %s", what, ws.P50, ws.P99)
		}
	}
	counters := func(what string, served, failed int64) {
		t.Helper()
		c, err := d.Counters(ctx, ref)
		if err != nil || c.Served != served || c.Failed != failed {
			t.Errorf("%s: counters %+v, %v; want served %d, failed %d", what, c, err, served, failed)
		}
	}

	// Second 1: replica a serves 20 of the good group. Seconds 7 and 9:
	// replica b serves 10 of the good group and 4 of the bad one. Second
	// 41: replica a serves 6 of the bad group. (A publication collects
	// the seconds that ended a second ago; the tables change after it, as
	// a proxy forgets a group that left its table.)
	r1.route(t, "web-good", okAddr)
	r2.route(t, "web-good", okAddr)
	clk.Set(t0.Add(1 * time.Second))
	r1.send(t, 20, 200)
	clk.Set(t0.Add(7 * time.Second))
	r2.send(t, 10, 200)
	clk.Set(t0.Add(9 * time.Second))
	publish(p1, p2)
	r2.route(t, "web-bad", badAddr)
	r2.send(t, 4, 500)
	clk.Set(t0.Add(12 * time.Second))
	publish(p1, p2)
	r1.route(t, "web-bad", badAddr)
	clk.Set(t0.Add(41 * time.Second))
	r1.send(t, 6, 500)
	clk.Set(t0.Add(45 * time.Second))
	publish(p1, p2)

	// At 45 s a window of 30 s starts at 15 s: the buckets from 15 s on
	// (second 41's); 60 s takes every bucket.
	check("both replicas", "web-good", time.Minute, 30, 0)
	check("both replicas", "web-bad", time.Minute, 10, 10)
	check("the last 30 s", "web-good", 30*time.Second, 0, 0)
	check("the last 30 s", "web-bad", 30*time.Second, 6, 6)
	// At 48 s a window of 42 s starts at 6 s: the bucket of 5 s to 10 s
	// overlaps it (b's 10 good and 4 bad), the one of second 1 does not.
	clk.Set(t0.Add(48 * time.Second))
	check("from 6 s", "web-good", 42*time.Second, 10, 0)
	check("from 6 s", "web-bad", 42*time.Second, 10, 10)
	counters("both replicas", 40, 0) // a 5xx of the service is no failure of the proxy
	// Outside the declared windows: refused.
	for _, w := range []time.Duration{k8sdriver.StatsWindowMin - time.Millisecond, k8sdriver.StatsWindowMax + time.Second} {
		if _, err := d.WindowStats(ctx, ref, "web-good", w); err == nil {
			t.Errorf("a window of %s accepted", w)
		}
	}

	// Replica a restarts: a new process (its proxy counts from zero) under
	// the same name carries a's figures on; it serves 3 more.
	r1b := newStatsProxy(t, clk, okAddr, badAddr)
	r1b.route(t, "web-good", okAddr)
	p1b := pub("runway-proxy-a", r1b)
	clk.Set(t0.Add(50 * time.Second))
	r1b.send(t, 3, 200)
	clk.Set(t0.Add(53 * time.Second))
	publish(p1b)
	check("after a's restart", "web-good", time.Minute, 33, 0)
	check("after a's restart", "web-bad", time.Minute, 10, 10)
	counters("after a's restart", 43, 0)
	// a's first process is still alive and serves 2 more: it finds its
	// Lease written by the other and goes on under a name of its own,
	// with only what the other does not hold.
	clk.Set(t0.Add(54 * time.Second))
	r1.send(t, 2, 500)
	clk.Set(t0.Add(57 * time.Second))
	publish(p1)
	publish(p1)
	if !strings.HasPrefix(p1.Replica, "runway-proxy-a-") {
		t.Errorf("the second process under one name publishes as %q", p1.Replica)
	}
	check("two processes under one name", "web-bad", time.Minute, 12, 12)
	check("two processes under one name", "web-good", time.Minute, 33, 0)
	counters("two processes under one name", 45, 0)

	// The windows slide: 5 minutes later nothing is in any window; the
	// totals stay.
	clk.Set(t0.Add(6 * time.Minute))
	publish(p1, p1b, p2)
	check("later", "web-good", k8sdriver.StatsWindowMax, 0, 0)
	counters("later", 45, 0)

	// Replica b stops publishing; after StatsExpiry the others delete its
	// Lease, and its totals leave the counters. The replicas that publish
	// stay.
	clk.Set(t0.Add(16 * time.Minute))
	publish(p1)
	clk.Set(t0.Add(6*time.Minute + k8sdriver.StatsExpiry))
	publish(p1b)
	if _, err := kc.Client.CoordinationV1().Leases(ns).Get(ctx, k8sdriver.StatsLeasePrefix+"runway-proxy-b", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Lease of a replica gone for %s: %v, want deleted", k8sdriver.StatsExpiry, err)
	}
	counters("b expired", 31, 0) // a's 20 + 6 + 3 and the other process's 2
	var leases *coordinationv1.LeaseList
	if leases, err = kc.Client.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, l := range leases.Items {
		if l.Labels[k8sdriver.LabelStats] != "proxy" || *l.Spec.LeaseDurationSeconds != int32(k8sdriver.StatsLeaseDuration/time.Second) {
			t.Errorf("Lease %s: labels %v, spec %+v", l.Name, l.Labels, l.Spec)
		}
		t.Logf("Lease %s holder %s: %d bytes of statistics", l.Name, *l.Spec.HolderIdentity, len(l.Annotations[k8sdriver.AnnotStats]))
	}
}
