package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runwayhq/runway/internal/apiwire"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/k8snode"
	"github.com/runwayhq/runway/internal/k8stest"
	"github.com/runwayhq/runway/internal/loadtest"
	"github.com/runwayhq/runway/internal/naming"
)

// The opt-in e2e of target kubernetes on a real node (issue 16's `make
// e2e-kubernetes-node`): a kubelet and containerd of this machine joined to
// a k8stest control plane (internal/k8snode), hello and Runway's in-cluster
// proxy as real pods, releases driven through the real server and engine,
// steady traffic through the proxy's pods while each strategy switches.
// Skipped unless RUNWAY_K8S_NODE=1 (scripts/e2e-kubernetes-node.sh sets it).

const nodeProxyImage = "registry.e2e.test/acme/runway:e2e"

// nodeImages builds static hello, runway and pause binaries and writes
// their images as OCI archives for the node to import: hello as
// registry.e2e.test/acme/hello:1..3, runway as nodeProxyImage.
func nodeImages(t *testing.T) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	dir := t.TempDir()
	pause, err := k8snode.BuildPause(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	hello, runway := filepath.Join(dir, "hello"), filepath.Join(dir, "runway")
	if err := k8snode.BuildStatic(filepath.Join(root, "examples", "hello"), ".", hello); err != nil {
		t.Fatal(err)
	}
	if err := k8snode.BuildStatic(root, "./cmd/runway", runway); err != nil {
		t.Fatal(err)
	}
	helloTar, runwayTar := filepath.Join(dir, "hello.tar"), filepath.Join(dir, "runway.tar")
	var names []string
	for _, v := range []string{"1", "2", "3"} {
		names = append(names, "registry.e2e.test/acme/hello:"+v)
	}
	if err := k8snode.WriteImage(helloTar, k8snode.Image{Names: names, Files: map[string]string{"hello": hello},
		Cmd: []string{"/hello"}, Env: []string{"HOST=0.0.0.0"}}); err != nil {
		t.Fatal(err)
	}
	if err := k8snode.WriteImage(runwayTar, k8snode.Image{Names: []string{nodeProxyImage}, Files: map[string]string{"runway": runway},
		Entrypoint: []string{"/runway"}}); err != nil {
		t.Fatal(err)
	}
	return []string{pause, helloTar, runwayTar}
}

// writeNodeManifest writes the project (traffic as given) and one service
// per strategy, named after it.
func (c *cluster) writeNodeManifest(traffic string, strategies ...string) {
	c.t.Helper()
	project := fmt.Sprintf(`project %q {}
environment "dev" {
  target   = "kubernetes"
  registry = "registry.e2e.test/acme"
  kubernetes {
    traffic   = %q
    namespace = %q
  }
}
`, projectName, traffic, k8sNamespace)
	dir := filepath.Join(c.dir, "project")
	if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte(project), 0o644); err != nil {
		c.t.Fatal(err)
	}
	for _, s := range strategies {
		extra := ""
		if s == "canary" {
			extra = `
    canary {
      step {
        weight = 20
        pause  = "30s"
      }
      step {
        weight = 50
        pause  = "30s"
      }
      analysis {
        max_error_rate_increase = 0.05
        max_latency_p99_ratio   = 1000
        min_requests            = 20
      }
    }`
		}
		svc := fmt.Sprintf(`service %q {
  image   = "registry.e2e.test/acme/hello:{{VERSION}}"
  port    = 8080
  version = "1.0.0"
  health {
    path              = "/healthz"
    interval          = "1s"
    timeout           = "1s"
    healthy_threshold = 1
  }
  scale {
    min     = 1
    desired = 2
    max     = 10
  }
  deploy {
    strategy         = %q
    timeout          = "300s"
    scale_down_delay = "3s"
    drain_timeout    = "5s"
    rolling {
      max_surge       = 1
      max_unavailable = 0
    }%s
  }
  hooks {
    stop_timeout = "5s"
  }
}
`, nodeService(s), s, extra)
		if err := os.WriteFile(filepath.Join(dir, nodeService(s)+".service.hcl"), []byte(svc), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	c.applyProject()
}

func nodeService(strategy string) string { return strings.ReplaceAll(strategy, "_", "") }

// proxyPods waits for the in-cluster proxy's ready pods and returns their
// IPs and the domain it serves.
func proxyPods(t *testing.T, kc *k8stest.Cluster) (ips []string, domain string) {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + k8sdriver.ProxyName}
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		pods, err := kc.Client.CoreV1().Pods(k8sNamespace).List(ctx, sel)
		if err != nil {
			continue
		}
		ips = ips[:0]
		for _, p := range pods.Items {
			if _, ok := k8snode.PodStart(&p); ok && p.DeletionTimestamp == nil {
				ips = append(ips, p.Status.PodIP)
			}
		}
		if len(ips) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			for _, p := range pods.Items {
				logs, err := kc.Client.CoreV1().Pods(k8sNamespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
				t.Logf("proxy pod %s (%s, %s): log (%v):\n%s", p.Name, p.Status.Phase, p.Status.PodIP, err, tailLines(string(logs), 20))
			}
			t.Fatalf("the in-cluster proxy's pods are not Ready within 2m")
		}
	}
	sort.Strings(ips)
	dep, err := kc.Client.AppsV1().Deployments(k8sNamespace).Get(ctx, k8sdriver.ProxyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	args := dep.Spec.Template.Spec.Containers[0].Args
	for i, a := range args {
		if a == "--domain" && i+1 < len(args) {
			domain = args[i+1]
		}
	}
	return ips, domain
}

// nodeLoad sends steady traffic to svc through every proxy pod (two
// clients each, 5 ms apart) plus slow requests (1.5 s, one client each).
func nodeLoad(t *testing.T, ips []string, hostName string) (stop func() (fast, slow []*loadtest.Result)) {
	ctx, cancel := context.WithCancel(context.Background())
	var runs, slowRuns []*loadtest.Run
	for _, ip := range ips {
		runs = append(runs, loadtest.Start(ctx, loadtest.Options{URL: "http://" + ip + ":8080/", Host: hostName, Concurrency: 2, Interval: 5 * time.Millisecond}))
		slowRuns = append(slowRuns, loadtest.Start(ctx, loadtest.Options{URL: "http://" + ip + ":8080/slow?ms=1500", Host: hostName, Concurrency: 1}))
	}
	var once sync.Once
	var fast, slow []*loadtest.Result
	stop = func() ([]*loadtest.Result, []*loadtest.Result) {
		once.Do(func() {
			cancel()
			for _, r := range runs {
				fast = append(fast, r.Wait())
			}
			for _, r := range slowRuns {
				slow = append(slow, r.Wait())
			}
		})
		return fast, slow
	}
	t.Cleanup(func() { stop() })
	return stop
}

// nodeVersions asks each proxy pod n times for hostName.
func nodeVersions(c *cluster, ips []string, hostName string, n int) map[string]int {
	out := map[string]int{}
	for _, ip := range ips {
		saved := c.proxyHTTP
		c.proxyHTTP = ip + ":8080"
		for v, k := range c.versionsAt(hostName, n) {
			out[v] += k
		}
		c.proxyHTTP = saved
	}
	return out
}

// podStarts are the creation-to-Ready times of the service's pods of a
// release.
func podStarts(t *testing.T, kc *k8stest.Cluster, svc, release string) []string {
	t.Helper()
	pods, err := kc.Client.CoreV1().Pods(k8sNamespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: k8sdriver.LabelService + "=" + svc + "," + k8sdriver.LabelRelease + "=" + release})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pods.Items {
		if d, ok := k8snode.PodStart(&p); ok {
			out = append(out, d.Round(100*time.Millisecond).String())
		}
	}
	sort.Strings(out)
	return out
}

// TestKubernetesNode: on a real node, traffic "runway": for blue_green,
// rolling and canary, v1 then v2 of hello are released through the server
// while steady and slow traffic goes through both in-cluster proxy pods;
// no request may fail, and afterwards every request answers v2.
func TestKubernetesNode(t *testing.T) {
	k8snode.Skip(t)
	k8stest.SkipMissing(t)
	begin := time.Now()
	images := nodeImages(t)
	t.Logf("images built in %s", time.Since(begin).Round(100*time.Millisecond))
	kc := k8stest.StartWith(t, k8stest.Options{NoFakeNode: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kc.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k8sNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The proxy's Role (runway kubernetes rbac); the server runs as admin.
	for _, obj := range k8sdriver.RBAC(k8sdriver.RBACOptions{Namespace: k8sNamespace}) {
		var err error
		switch o := obj.(type) {
		case *rbacv1.Role:
			_, err = kc.Client.RbacV1().Roles(k8sNamespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = kc.Client.RbacV1().RoleBindings(k8sNamespace).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	node := k8snode.Start(t, kc, images...)
	c := startCluster(t)
	c.serverArgs = []string{"--kubeconfig", kc.Kubeconfig, "--kubernetes-proxy-image", nodeProxyImage}
	c.server.stop(t, syscall.SIGTERM)
	c.startServer()

	// One service per strategy, each written when its turn comes (a canary
	// in the directory is validated with every deploy from it).
	strategies := []string{"blue_green", "rolling", "canary"}
	var figures []string
	for _, strategy := range strategies {
		ok := t.Run(strategy, func(t *testing.T) {
			c.t = t
			svc := nodeService(strategy)
			c.writeNodeManifest("runway", strategy)
			out, err := c.cli("deploy", svc, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "1", "--yes", "--wait")
			if err != nil && strings.Contains(out, "Canary analysis needs statistics the target does not measure") {
				t.Skipf("target kubernetes does not measure per-group statistics yet, so validation refuses a canary:\n%s", out)
			}
			if err != nil {
				t.Fatalf("runway deploy %s v1: %v\n%s", svc, err, out)
			}
			ips, domain := proxyPods(t, kc)
			hostName := naming.Service(svc, env, domain)
			var got map[string]int
			for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
				if got = nodeVersions(c, ips, hostName, 10); got["1"] == 10*len(ips) {
					break
				}
				if time.Now().After(deadline) {
					logs, _ := kc.Client.CoreV1().Pods(k8sNamespace).GetLogs(proxyPodName(t, kc), &corev1.PodLogOptions{}).DoRaw(context.Background())
					t.Fatalf("%s (host %s) answers %v through the proxy pods %v, want v1 only; the cluster:\n%s\na proxy's log:\n%s",
						svc, hostName, got, ips, describeKube(t, kc), tailLines(string(logs), 20))
				}
			}
			stop := nodeLoad(t, ips, hostName)
			time.Sleep(time.Second) // traffic before the release, too
			start := time.Now()
			out, err = c.cli("deploy", svc, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "2", "--yes", "--wait")
			took := time.Since(start)
			if err != nil {
				stop()
				t.Fatalf("runway deploy %s v2: %v\n%s\nkubelet:\n%s", svc, err, out, tailLines(node.Log("kubelet"), 30))
			}
			time.Sleep(time.Second)
			fast, slow := stop()
			var sent, failed, slowSent, slowFailed int64
			versions := map[string]int64{}
			for i, r := range fast {
				noFailures(t, fmt.Sprintf("%s v1→v2 through proxy pod %s", strategy, ips[i]), r)
				s, f, v := r.Snapshot()
				sent, failed = sent+s, failed+f
				for k, n := range v {
					versions[k] += n
				}
			}
			for i, r := range slow {
				noFailures(t, fmt.Sprintf("%s v1→v2 slow requests through proxy pod %s", strategy, ips[i]), r)
				s, f, _ := r.Snapshot()
				slowSent, slowFailed = slowSent+s, slowFailed+f
			}
			if got := nodeVersions(c, ips, hostName, 20); got["2"] != 20*len(ips) {
				t.Errorf("after v2 %s answers %v through the proxy pods, want only v2", svc, got)
			}
			if versions["1"] == 0 || versions["2"] == 0 {
				t.Errorf("the load saw versions %v, want both v1 and v2", versions)
			}
			f := "figures: " + fmt.Sprintf("%-10s ", strategy) + releaseFigures(t, c, kc, svc, sent, failed, slowSent, slowFailed, versions, took)
			t.Log(f)
			figures = append(figures, f)
		})
		if !ok {
			break
		}
	}
	c.t = t
	t.Logf("node Ready %s after its start\n%s", node.Started.Round(time.Millisecond), strings.Join(figures, "\n"))
}

func proxyPodName(t *testing.T, kc *k8stest.Cluster) string {
	pods, err := kc.Client.CoreV1().Pods(k8sNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + k8sdriver.ProxyName})
	if err != nil || len(pods.Items) == 0 {
		return "none"
	}
	return pods.Items[0].Name
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// releaseFigures logs the events of svc's last release and returns its
// figures line: the load's counts, the release's duration, the deploy's
// and its pods' start times.
func releaseFigures(t *testing.T, c *cluster, kc *k8stest.Cluster, svc string, sent, failed, slowSent, slowFailed int64, versions map[string]int64, took time.Duration) string {
	t.Helper()
	list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Environment: env, Service: svc, Limit: 1})
	if err != nil || len(list) == 0 {
		t.Fatalf("releases: %v", err)
	}
	rel := list[0]
	if d, err := c.api.Release(context.Background(), rel.ID); err == nil {
		var ev strings.Builder
		for _, e := range d.Events {
			fmt.Fprintf(&ev, "  +%-6s %-18s %s\n", e.At.Sub(rel.CreatedAt).Round(100*time.Millisecond), e.State, e.Message)
		}
		t.Logf("%s v2's events:\n%s", svc, ev.String())
	}
	dur := "?"
	if rel.FinishedAt != nil {
		dur = rel.FinishedAt.Sub(rel.CreatedAt).Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("requests %d sent, %d failed (slow 1.5 s: %d sent, %d failed), versions %v; release %s (deploy --wait %s); v2 pods Ready after %v",
		sent, failed, slowSent, slowFailed, versions, dur, took.Round(100*time.Millisecond), podStarts(t, kc, svc, rel.ID))
}

// TestKubernetesNodeService: on a real node with kube-proxy, traffic
// "service": a blue_green release switches the Service's selector while
// steady and slow traffic goes to the Service's cluster IP (kube-proxy's
// DNAT to a ready pod); no request may fail, and afterwards every request
// answers v2.
func TestKubernetesNodeService(t *testing.T) {
	k8snode.Skip(t)
	k8stest.SkipMissing(t)
	images := nodeImages(t)
	kc := k8stest.StartWith(t, k8stest.Options{NoFakeNode: true})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kc.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k8sNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	node := k8snode.StartWith(t, kc, k8snode.Options{Images: images, KubeProxy: true})
	c := startCluster(t)
	c.serverArgs = []string{"--kubeconfig", kc.Kubeconfig}
	c.server.stop(t, syscall.SIGTERM)
	c.startServer()

	const strategy = "blue_green"
	svc := nodeService(strategy)
	c.writeNodeManifest("service", strategy)
	if out, err := c.cli("deploy", svc, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "1", "--yes", "--wait"); err != nil {
		t.Fatalf("runway deploy %s v1: %v\n%s", svc, err, out)
	}
	s, err := kc.Client.CoreV1().Services(k8sNamespace).Get(ctx, svc, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("%s:%d", s.Spec.ClusterIP, s.Spec.Ports[0].Port)
	c.proxyHTTP = addr // versionsAt asks here
	waitFor(t, 60*time.Second, svc+" v1 at the Service's cluster IP "+addr, func() bool {
		return c.versionsAt(svc, 10)["1"] == 10
	})
	ctxLoad, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	fast := loadtest.Start(ctxLoad, loadtest.Options{URL: "http://" + addr + "/", Concurrency: 4, Interval: 5 * time.Millisecond})
	slow := loadtest.Start(ctxLoad, loadtest.Options{URL: "http://" + addr + "/slow?ms=1500", Concurrency: 2})
	time.Sleep(time.Second)
	start := time.Now()
	out, err := c.cli("deploy", svc, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "2", "--yes", "--wait")
	took := time.Since(start)
	time.Sleep(time.Second)
	stopLoad()
	fr, sr := fast.Wait(), slow.Wait()
	if err != nil {
		t.Fatalf("runway deploy %s v2: %v\n%s\nkube-proxy:\n%s", svc, err, out, tailLines(node.Log("kube-proxy"), 20))
	}
	noFailures(t, "traffic service blue_green v1→v2 at the cluster IP", fr)
	noFailures(t, "traffic service blue_green v1→v2 slow requests at the cluster IP", sr)
	if got := c.versionsAt(svc, 20); got["2"] != 20 {
		t.Errorf("after v2 the Service answers %v, want only v2", got)
	}
	sent, failed, versions := fr.Snapshot()
	slowSent, slowFailed, _ := sr.Snapshot()
	if versions["1"] == 0 || versions["2"] == 0 {
		t.Errorf("the load saw versions %v, want both v1 and v2", versions)
	}
	t.Log("figures: service/" + strategy + " " + releaseFigures(t, c, kc, svc, sent, failed, slowSent, slowFailed, versions, took))
}
