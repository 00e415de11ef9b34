package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/k8stest"
	"github.com/runwayhq/runway/internal/loadtest"
)

// TestKubernetesCanaryAnalysis: a canary release with traffic "runway"
// whose analysis reads what the in-cluster proxy measured. Two replicas
// of the real `runway proxy --kubernetes` run as the proxy's service
// account in a network namespace where the pods' addresses exist
// (k8stest.PodNet: kwok runs no container, the test runs each pod's hello
// there with the pod's environment). v2 answers every request with 500 (FAIL_RATE=1 in its
// manifest); each replica publishes the canary group's errors into its
// Lease; the server's analysis sums them, fails the canary on its
// error rate and rolls back: v1 alone is routed again, v2's Deployment is
// gone.
func TestKubernetesCanaryAnalysis(t *testing.T) {
	c, kc := kubeCluster(t)
	pn := k8stest.NewPodNet(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The proxy's Role and binding, as runway kubernetes rbac prints them.
	if err := k8sdriver.ApplyRBAC(ctx, kc.Client, k8sdriver.RBACOptions{Namespace: k8sNamespace}); err != nil {
		t.Fatal(err)
	}
	pods := make(chan struct{})
	go func() {
		defer close(pods)
		pn.RunPods(ctx, t, kc.Client, k8sNamespace, k8sdriver.LabelService+"="+service, helloBin)
	}()
	defer func() { cancel(); <-pods }()

	canary := `    canary {
      step {
        weight = 50
        pause  = "30s"
      }
      analysis {
        max_error_rate_increase = 0.05
        min_requests            = 20
      }
    }`
	c.writeKubeManifest("canary", canary, 2, "1s")
	editManifest(t, c, "runway.hcl", `traffic   = "service"`, `traffic   = "runway"`)
	mustState(t, c.deploy(service, "1"), "Success")

	// The in-cluster proxy, as its Deployment runs it, in the pods'
	// network: the API server through a forward, as the proxy's service
	// account.
	u, err := url.Parse(kc.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	api, err := pn.Forward(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "proxy.kubeconfig")
	if err := kc.ServiceAccountKubeconfig(kubeconfig, "https://"+api, k8sNamespace, k8sdriver.ProxyName); err != nil {
		t.Fatal(err)
	}
	// Two replicas, as the Deployment runs (the namespace's own
	// loopback); the server sums what they publish.
	replicas := []struct{ name, addr, admin string }{
		{"runway-proxy-e2e-0", "127.0.0.1:8080", "127.0.0.1:9090"},
		{"runway-proxy-e2e-1", "127.0.0.1:8081", "127.0.0.1:9091"},
	}
	client := &http.Client{Transport: &http.Transport{DialContext: pn.Dial}, Timeout: 5 * time.Second}
	for _, r := range replicas {
		pn.Start(t, runwayBin, "proxy", "--kubernetes", "--namespace", k8sNamespace, "--domain", "localhost",
			"--kubeconfig", kubeconfig, "--http", r.addr, "--admin", r.admin, "--replica", r.name,
			"--interval", "200ms", "--log-level", "warn")
		waitFor(t, 60*time.Second, "v1 answering through the in-cluster proxy "+r.name, func() bool {
			req, _ := http.NewRequest("GET", "http://"+r.addr+"/", nil)
			req.Host = host(service)
			resp, err := client.Do(req)
			if err != nil {
				return false
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200 && strings.Contains(string(body), "from v1")
		})
	}

	editManifest(t, c, service+".service.hcl", "  port    = 8080\n", "  port    = 8080\n  env = {\n    FAIL_RATE = \"1\"\n  }\n")
	lctx, stopLoad := context.WithCancel(ctx)
	var runs []*loadtest.Run
	for _, r := range replicas {
		runs = append(runs, loadtest.Start(lctx, loadtest.Options{URL: "http://" + r.addr + "/", Host: host(service), Concurrency: 1,
			Interval: 20 * time.Millisecond, Dial: pn.Dial}))
	}
	rel := c.deploy(service, "2")
	stopLoad()
	res := runs[0].Wait()
	res1 := runs[1].Wait()
	t.Logf("load through the in-cluster proxy's replicas during the canary: %s; %s", res, res1)
	res.Failures = append(res.Failures, res1.Failures...)
	t.Logf("release %s v2: %s (%s): %s; served %d, failed %d", rel.ID, rel.State, rel.ErrorKind, rel.Error, rel.Served, rel.Failed)
	mustState(t, rel, "FailureClean")
	if rel.ErrorKind != "AnalysisFailed" || !strings.Contains(rel.Error, "canary error rate 100.00%") {
		t.Errorf("release ended %s: %s; want AnalysisFailed on the canary's error rate", rel.ErrorKind, rel.Error)
	}
	if rel.Served == 0 || rel.Failed != 0 {
		t.Errorf("release record: served %d, failed %d; want served > 0 and no request failed by the proxy", rel.Served, rel.Failed)
	}
	// The only failed requests are v2's own 500s.
	for _, f := range res.Failures {
		if f.Status != http.StatusInternalServerError || !strings.Contains(f.Err, "injected failure") {
			t.Errorf("a request failed other than by v2's FAIL_RATE: %+v", f)
		}
	}
	if _, failed, versions := res.Snapshot(); failed == 0 || versions["1"] == 0 {
		t.Errorf("load: %s; want v1's answers and v2's failures", res)
	}

	// The cluster ends with v1 alone, routed alone.
	waitFor(t, 60*time.Second, "v2's Deployment gone and v1 routed alone", func() bool {
		deps, err := kc.Client.AppsV1().Deployments(k8sNamespace).List(ctx, metav1.ListOptions{LabelSelector: k8sdriver.LabelService + "=" + service})
		if err != nil || len(deps.Items) != 1 {
			return false
		}
		cm, err := kc.Client.CoreV1().ConfigMaps(k8sNamespace).Get(ctx, k8sdriver.RouteTable, metav1.GetOptions{})
		if err != nil {
			return false
		}
		var e k8sdriver.TableEntry
		if json.Unmarshal([]byte(cm.Data[service]), &e) != nil || len(e.Routes) != 1 {
			return false
		}
		return e.Routes[0].Group == deps.Items[0].Name && deps.Items[0].Labels[k8sdriver.LabelRelease] != rel.ID
	})
	// What each replica published: the canary's group, all errors.
	for _, r := range replicas {
		lease, err := kc.Client.CoordinationV1().Leases(k8sNamespace).Get(ctx, k8sdriver.StatsLeasePrefix+r.name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := k8sdriver.DecodeStats([]byte(lease.Annotations[k8sdriver.AnnotStats]))
		if err != nil {
			t.Fatal(err)
		}
		var summary []string
		canaryErrors := int64(0)
		for _, s := range rec.Services {
			for _, g := range s.Groups {
				var n, e int64
				for _, b := range g.Buckets {
					n, e = n+b.Requests, e+b.Errors
				}
				if strings.EqualFold(g.Group, "hello-"+rel.ID) {
					canaryErrors = e
				}
				summary = append(summary, fmt.Sprintf("%s: %d requests, %d errors", g.Group, n, e))
			}
		}
		t.Logf("Lease %s (%d bytes): %s", lease.Name, len(lease.Annotations[k8sdriver.AnnotStats]), strings.Join(summary, "; "))
		if canaryErrors == 0 {
			t.Errorf("replica %s published no error of the canary's group", r.name)
		}
	}
}

// editManifest replaces old by new in the project's file name and applies
// the project again.
func editManifest(t *testing.T, c *cluster, name, old, new string) {
	t.Helper()
	path := filepath.Join(c.dir, "project", name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", name, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.applyProject()
}
