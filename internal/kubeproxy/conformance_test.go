package kubeproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/runwayhq/runway/internal/config"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/k8stest"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/target"
	"github.com/runwayhq/runway/internal/target/targettest"
)

// One control plane and one build of runway and hello for the
// conformance run.
var (
	confOnce    sync.Once
	confCluster *k8stest.Cluster
	confBin     string
	confErr     error
	confSeq     atomic.Int64
)

func confSetup(t *testing.T) (*k8stest.Cluster, string) {
	t.Helper()
	k8stest.SkipMissing(t)
	confOnce.Do(func() {
		confBin, confErr = os.MkdirTemp("", "kubeproxy-bin-")
		if confErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		for _, b := range []struct{ out, pkg string }{{"runway", "./cmd/runway"}, {"hello", "./examples/hello"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(confBin, b.out), b.pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				confErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
		confCluster, confErr = k8stest.StartCluster("")
	})
	if confErr != nil {
		t.Fatal(confErr)
	}
	return confCluster, confBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if confCluster != nil {
		confCluster.Stop()
	}
	if confBin != "" {
		os.RemoveAll(confBin)
	}
	os.Exit(code)
}

// TestConformance runs package targettest's suite on target kubernetes
// with traffic "runway" as a whole: the driver (as the server's service
// account) and the real in-cluster proxy, `runway proxy --kubernetes` as
// the proxy's service account, in a network namespace where the pods'
// addresses exist and each pod's hello runs (k8stest.PodNet). Requests
// reach the pods through the proxy; the statistics the suite reads are
// what the proxy published.
func TestConformance(t *testing.T) {
	targettest.Run(t, func(t *testing.T) *targettest.Harness {
		kc, bin := confSetup(t)
		ns := fmt.Sprintf("conformance-%d", confSeq.Add(1))
		server, _ := rbacNamespace(t, kc, ns)
		t.Cleanup(func() {
			_ = kc.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		})
		newDriver := func() target.Target {
			d, err := k8sdriver.New(k8sdriver.Options{Client: server, Traffic: config.TrafficRunway, Poll: 20 * time.Millisecond,
				Namespace: func(target.ServiceRef) string { return ns }})
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
		cp := &confProxy{t: t, kc: kc, ns: ns, bin: bin}
		spec := func(_ *testing.T, ref target.ServiceRef) *config.Service {
			return &config.Service{Name: ref.Service, Project: ref.Project, Environment: ref.Environment, Version: "1",
				Image: "registry.acme.test/acme/hello:{{VERSION}}", Port: 8080,
				Health: config.Health{Kind: "http", Path: "/healthz", Interval: config.Duration{Duration: time.Second},
					Timeout: config.Duration{Duration: 500 * time.Millisecond}, HealthyThreshold: 1, UnhealthyThreshold: 3}}
		}
		tasks := &jobStarts{}
		cp.startPods() // from the first group on: the pods' output is their log
		return &targettest.Harness{
			Target:  newDriver(),
			Restart: func(*testing.T) target.Target { return newDriver() },
			Spec:    spec,
			Send:    cp.send,
			// A task is a Job whose pod kwok completes with hello's task
			// mode (k8stest's stages); its runs are its pods.
			Task: func(t *testing.T, ref target.ServiceRef, id string, d time.Duration, code int) (target.Task, func() int) {
				tasks.watch(t, kc, ns)
				return target.Task{ID: id, Name: "pre_deploy", Ref: ref, Release: "01JC0NF0RMANCE000000000001", Spec: spec(t, ref),
					Command: []string{"/hello", "task", d.String(), fmt.Sprint(code)}}, func() int { return tasks.runs(k8sdriver.JobName(id)) }
			},
			Skip: map[string]string{
				"DrainHonoured":      "a drain needs a kubelet's termination of the pod (preStop, SIGTERM, SIGKILL at the grace period), which kwok and RunPods do not play; the real-node e2e proves drains",
				"ObserveAfterDelete": "a deleted pod's log is gone with the pod (docs/kubernetes.md: the cluster's log collection keeps older lines)",
			},
		}
	})
}

// confProxy is a namespace's in-cluster proxy and pods, started at the
// first request.
type confProxy struct {
	t   *testing.T
	kc  *k8stest.Cluster
	ns  string
	bin string

	once   sync.Once
	pn     *k8stest.PodNet
	client *http.Client
}

const confProxyAddr = "127.0.0.1:8080"

// startPods runs the namespace's pods' processes in a PodNet.
func (cp *confProxy) startPods() {
	t := cp.t
	cp.pn = k8stest.NewPodNet(t)
	cp.pn.PodOutput = cp.kc.WriteLog
	ctx, cancel := context.WithCancel(context.Background())
	pods := make(chan struct{})
	go func() {
		defer close(pods)
		cp.pn.RunPods(ctx, t, cp.kc.Client, cp.ns, k8sdriver.LabelGroup, filepath.Join(cp.bin, "hello"))
	}()
	t.Cleanup(func() { cancel(); <-pods })
}

// startProxy starts the in-cluster proxy in the PodNet (at the first
// request: the route table exists by then).
func (cp *confProxy) startProxy() {
	t := cp.t
	u, err := url.Parse(cp.kc.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	api, err := cp.pn.Forward(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "proxy.kubeconfig")
	if err := cp.kc.ServiceAccountKubeconfig(kubeconfig, "https://"+api, cp.ns, k8sdriver.ProxyName); err != nil {
		t.Fatal(err)
	}
	cp.pn.Start(t, filepath.Join(cp.bin, "runway"), "proxy", "--kubernetes", "--namespace", cp.ns, "--domain", "localhost",
		"--kubeconfig", kubeconfig, "--http", confProxyAddr, "--admin", "127.0.0.1:9090", "--replica", "runway-proxy-0",
		"--interval", "200ms", "--log-level", "warn")
	cp.client = &http.Client{Transport: &http.Transport{DialContext: cp.pn.Dial, MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
}

// send sends n requests to ref's route through the proxy once every pod of
// the namespace answers, and returns once the proxy published them.
func (cp *confProxy) send(t *testing.T, ref target.ServiceRef, n int) {
	cp.once.Do(cp.startProxy)
	ctx := context.Background()
	host := naming.Service(ref.Service, ref.Environment, "localhost")
	k8stest.Eventually(t, "every pod's process answering, and the proxy routing "+host, func() (bool, error) {
		pods, err := cp.kc.Client.CoreV1().Pods(cp.ns).List(ctx, metav1.ListOptions{LabelSelector: k8sdriver.LabelGroup})
		if err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				continue
			}
			c, err := cp.pn.Dial(ctx, "tcp", net.JoinHostPort(p.Status.PodIP, "8080"))
			if err != nil {
				return false, err
			}
			c.Close()
		}
		code, err := cp.get(host)
		return err == nil && code == http.StatusOK, fmt.Errorf("status %d, %v", code, err)
	})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Add(1) <= int64(n) {
				if _, err := cp.get(host); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// Published: the replica's record counts every second up to now.
	end := time.Now().Unix()
	k8stest.Eventually(t, "the requests published", func() (bool, error) {
		l, err := cp.kc.Client.CoordinationV1().Leases(cp.ns).Get(ctx, k8sdriver.StatsLeasePrefix+"runway-proxy-0", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		rec, err := k8sdriver.DecodeStats([]byte(l.Annotations[k8sdriver.AnnotStats]))
		return err == nil && rec.At > end, err
	})
}

func (cp *confProxy) get(host string) (int, error) {
	req, _ := http.NewRequest("GET", "http://"+confProxyAddr+"/", nil)
	req.Host = host
	resp, err := cp.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// jobStarts counts the pods of each Job of a namespace: a task's runs.
type jobStarts struct {
	once sync.Once
	mu   sync.Mutex
	pods map[string]map[string]bool // Job → pod UIDs
}

func (j *jobStarts) watch(t *testing.T, kc *k8stest.Cluster, ns string) {
	j.once.Do(func() {
		j.pods = map[string]map[string]bool{}
		ctx, cancel := context.WithCancel(context.Background())
		w, err := kc.Client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: k8sdriver.LabelTask})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ev := range w.ResultChan() {
				if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added {
					j.mu.Lock()
					job := p.Labels[k8sdriver.LabelTask]
					if j.pods[job] == nil {
						j.pods[job] = map[string]bool{}
					}
					j.pods[job][string(p.UID)] = true
					j.mu.Unlock()
				}
			}
		}()
		t.Cleanup(func() { w.Stop(); cancel(); <-done })
	})
}

func (j *jobStarts) runs(job string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pods[job])
}
