// Package k8stest starts a real Kubernetes control plane on loopback for
// tests: etcd, kube-apiserver, kube-controller-manager and kube-scheduler
// built from Go modules by scripts/k8s-build.sh (cached by version under
// $HOME/.cache/runway/k8s-<k8s version>-<go version>/), and kwok, which
// plays the kubelet of fake nodes: it moves pods through their phases
// (scheduled, running, ready, completed, deleted at the end of their grace
// period) without running containers. Deployments, ReplicaSets, Jobs,
// Services, EndpointSlices, RBAC and admission are the real ones.
//
// Binaries are looked up in $RUNWAY_K8S_BIN, else in the cache directory the
// build script prints (scripts/k8s-build.sh --dir). When they are missing a
// test skips, saying how to build them, unless RUNWAY_K8S_REQUIRED=1 (CI),
// where it fails.
package k8stest

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Versions the cache directory is keyed by; scripts/k8s-build.sh builds
// the same ones.
const (
	KubernetesVersion = "1.37.2"
	EtcdVersion       = "3.6.16"
	KwokVersion       = "0.8.0"
)

// NodeName is the fake node pods are scheduled on.
const NodeName = "kwok-node-0"

//go:embed stages/*.yaml
var stages embed.FS

// BinDir is where the binaries are expected.
func BinDir() string {
	if d := os.Getenv("RUNWAY_K8S_BIN"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "runway", "k8s-"+KubernetesVersion+"-"+runtime.Version())
}

var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// Missing names the binaries BinDir lacks.
func Missing() []string {
	var miss []string
	for _, b := range binaries {
		if fi, err := os.Stat(filepath.Join(BinDir(), b)); err != nil || fi.Mode()&0o111 == 0 {
			miss = append(miss, b)
		}
	}
	return miss
}

// Cluster is a running control plane.
type Cluster struct {
	// Config is an admin's client configuration (system:masters).
	Config *rest.Config
	// Client is a clientset of Config.
	Client *kubernetes.Clientset
	// Kubeconfig is the path of a kubeconfig file with the admin's
	// credentials, context "k8stest".
	Kubeconfig string
	// Dir holds the cluster's data and logs (etcd.log, kube-apiserver.log,
	// ...), removed by Stop.
	Dir string
	// PodLog is the log every pod's containers have (kwok runs none): the
	// kubelet API serves it to pods/log, so the log API's whole path is
	// the real one; WriteLog appends to it.
	PodLog string
	logMu  sync.Mutex

	// Server is the API server's URL (https://127.0.0.1:PORT); CAFile
	// its CA's certificate, which also signs IssueClient's certificates.
	Server string
	CAFile string

	opts  Options
	pki   *pki
	procs []*proc
	once  sync.Once
	keep  bool

	caPEM, certPEM, keyPEM []byte // the cluster's CA and the admin's certificate
}

// Options change what a cluster runs.
type Options struct {
	// NoFakeNode starts no kwok and registers no fake node: a real kubelet
	// joins the cluster instead (internal/k8snode, opt-in).
	NoFakeNode bool
}

// IssueClient returns a client certificate of the cluster's CA for the
// user cn in the groups orgs (PEM, with its key), e.g. a kubelet's
// system:node:<name> in system:nodes.
func (c *Cluster) IssueClient(cn string, orgs ...string) (certPEM, keyPEM []byte, err error) {
	c.logMu.Lock()
	c.pki.serial++
	serial := c.pki.serial
	c.logMu.Unlock()
	now := time.Now().Add(-time.Hour)
	return c.pki.issue("", "", &x509.Certificate{SerialNumber: big.NewInt(serial),
		Subject: pkix.Name{CommonName: cn, Organization: orgs}, NotBefore: now, NotAfter: now.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// SkipMissing skips t (or fails it, with RUNWAY_K8S_REQUIRED=1) when the
// binaries are not built.
func SkipMissing(t testing.TB) {
	t.Helper()
	if miss := Missing(); len(miss) > 0 {
		msg := fmt.Sprintf("k8stest: %s not built in %s: run scripts/k8s-build.sh (a cold build takes about 700 CPU-seconds)", strings.Join(miss, ", "), BinDir())
		if os.Getenv("RUNWAY_K8S_REQUIRED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// Start starts a cluster for t, stopped when t ends (SkipMissing first).
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Cluster {
	t.Helper()
	SkipMissing(t)
	c, err := StartClusterWith("", o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.keep = os.Getenv("RUNWAY_K8S_KEEP") == "1"
			c.dumpLogs(t)
		}
		c.Stop()
	})
	return c
}

// StartCluster starts a cluster in a new directory under dir ("": the
// system's temporary directory) and returns once its API server is ready,
// the fake node is Ready and the default namespace's service account exists.
func StartCluster(dir string) (*Cluster, error) {
	return StartClusterWith(dir, Options{})
}

// StartClusterWith is StartCluster with options; with NoFakeNode it
// returns once the API server is ready and the default service account
// exists (no node is Ready yet).
func StartClusterWith(dir string, o Options) (*Cluster, error) {
	d, err := os.MkdirTemp(dir, "k8stest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: d, opts: o}
	if err := c.start(); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start() error {
	bin := BinDir()
	p, err := newPKI(c.Dir)
	if err != nil {
		return err
	}
	c.pki, c.CAFile = p, p.caCert
	p.serial = 100
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	etcdClient, etcdPeer, apiPort, kwokPort := ports[0], ports[1], ports[2], ports[3]
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	c.Server = server
	c.caPEM, c.certPEM, c.keyPEM = p.caPEM, p.adminPEM, p.keyPEM
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, []byte(Kubeconfig(server, p.caPEM, p.adminPEM, p.keyPEM)), 0o600); err != nil {
		return err
	}
	c.Config = &rest.Config{Host: server, TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM, CertData: p.adminPEM, KeyData: p.keyPEM},
		QPS: 200, Burst: 400}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return err
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if err := c.run(bin, "etcd", "--name=k8stest", "--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=k8stest="+peerURL, "--unsafe-no-fsync", "--log-level=warn"); err != nil {
		return err
	}
	if err := c.run(bin, "kube-apiserver", "--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+p.serveCert, "--tls-private-key-file="+p.serveKey, "--client-ca-file="+p.caCert,
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+p.saPub,
		"--service-account-signing-key-file="+p.saKey, "--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC", "--enable-priority-and-fairness=false", "--profiling=false",
		"--kubelet-client-certificate="+p.adminCert, "--kubelet-client-key="+p.adminKey,
		"--kubelet-preferred-address-types=InternalIP", "--cert-dir="+filepath.Join(c.Dir, "apiserver-certs"),
		"--v=0"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.poll(ctx, "the API server ready", func() (bool, error) {
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && bytes.Equal(body, []byte("ok")), err
	}); err != nil {
		return err
	}
	if err := c.run(bin, "kube-controller-manager", "--kubeconfig="+c.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0", "--service-account-private-key-file="+p.saKey,
		"--root-ca-file="+p.caCert, "--use-service-account-credentials=false", "--controllers=*",
		"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10", "--concurrent-job-syncs=10"); err != nil {
		return err
	}
	if err := c.run(bin, "kube-scheduler", "--kubeconfig="+c.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0"); err != nil {
		return err
	}
	if c.opts.NoFakeNode {
		return c.poll(ctx, "the default service account", func() (bool, error) {
			_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, err
		})
	}
	stageFile := filepath.Join(c.Dir, "kwok-stages.yaml")
	c.PodLog = filepath.Join(c.Dir, "pod.log")
	if err := os.WriteFile(c.PodLog, nil, 0o644); err != nil {
		return err
	}
	if err := writeStages(stageFile, c.PodLog); err != nil {
		return err
	}
	if err := c.run(bin, "kwok", "--kubeconfig="+c.Kubeconfig, "--config="+stageFile, "--manage-all-nodes=true",
		"--node-ip=127.0.0.1", "--node-port="+strconv.Itoa(kwokPort), "--cidr=10.244.0.0/16",
		"--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
		"--tls-cert-file="+p.serveCert, "--tls-private-key-file="+p.serveKey,
		"--node-lease-duration-seconds=40"); err != nil {
		return err
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName,
		Labels:      map[string]string{"kubernetes.io/hostname": NodeName, "kubernetes.io/os": "linux", "type": "kwok"},
		Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}}}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("k8stest: create the fake node: %w", err)
	}
	if err := c.poll(ctx, "the fake node Ready", func() (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return len(n.Spec.Taints) == 0, fmt.Errorf("taints %v", n.Spec.Taints)
			}
		}
		return false, nil
	}); err != nil {
		return err
	}
	return c.poll(ctx, "the default service account", func() (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}

func writeStages(path, podLog string) error {
	entries, err := stages.ReadDir("stages")
	if err != nil {
		return err
	}
	var b bytes.Buffer
	for _, e := range entries {
		data, err := stages.ReadFile("stages/" + e.Name())
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	// Every container's log, as the kubelet API (kwok's server) serves it
	// to the API server's pods/log: the one file PodLog, in the CRI format.
	fmt.Fprintf(&b, "---\napiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterLogs\nmetadata:\n  name: all-pods\nspec:\n  logs:\n  - logsFile: %q\n    follow: true\n", podLog)
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// Kubeconfig is a kubeconfig naming server, its CA and a client
// certificate, with one context "k8stest".
func Kubeconfig(server string, ca, cert, key []byte) string {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: k8stest
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: k8stest
  context:
    cluster: k8stest
    user: admin
current-context: k8stest
`, server, b64(ca), b64(cert), b64(key))
}

// KubeconfigAs writes a kubeconfig to path naming server (the API server's
// address as its client reaches it, such as through PodNet.Forward) and
// the admin's certificate impersonating user in groups: a process started
// with it has the rights RBAC gives user, no more.
func (c *Cluster) KubeconfigAs(path, server, user string, groups ...string) error {
	k := Kubeconfig(server, c.caPEM, c.certPEM, c.keyPEM)
	as := "    as: " + user + "\n"
	if len(groups) > 0 {
		as += "    as-groups:\n"
		for _, g := range groups {
			as += "    - " + g + "\n"
		}
	}
	k = strings.Replace(k, "    client-key-data:", as+"    client-key-data:", 1)
	return os.WriteFile(path, []byte(k), 0o600)
}

// ServiceAccountKubeconfig is KubeconfigAs for service account sa of
// namespace ns.
func (c *Cluster) ServiceAccountKubeconfig(path, server, ns, sa string) error {
	return c.KubeconfigAs(path, server, "system:serviceaccount:"+ns+":"+sa,
		"system:serviceaccounts", "system:serviceaccounts:"+ns, "system:authenticated")
}

func (c *Cluster) run(bin, name string, args ...string) error {
	logPath := filepath.Join(c.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, and SIGKILL when the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := StartPinned(cmd); err != nil {
		f.Close()
		return fmt.Errorf("k8stest: start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return nil
}

// poll checks cond until it holds, a component exits or ctx ends.
func (c *Cluster) poll(ctx context.Context, what string, cond func() (bool, error)) error {
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		for _, p := range c.procs {
			select {
			case <-p.done:
				return fmt.Errorf("k8stest: waiting for %s: %s exited (%v); its log:\n%s", what, p.name, p.err, tail(p.log, 30))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("k8stest: %s: not within the deadline (last error: %v)", what, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cluster) dumpLogs(t testing.TB) {
	for _, p := range c.procs {
		t.Logf("k8stest: last lines of %s:\n%s", p.name, tail(p.log, 15))
	}
	if c.keep {
		t.Logf("k8stest: RUNWAY_K8S_KEEP=1: the cluster's files stay in %s", c.Dir)
	}
}

// Stop stops every component (SIGTERM, then SIGKILL after 5 s) and removes
// the cluster's directory.
func (c *Cluster) Stop() {
	c.once.Do(func() {
		for i := len(c.procs) - 1; i >= 0; i-- {
			p := c.procs[i]
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
			}
		}
		if !c.keep {
			_ = os.RemoveAll(c.Dir)
		}
	})
}

// Logs returns the log of a component ("kube-apiserver", "kwok", ...).
func (c *Cluster) Logs(name string) (string, error) {
	for _, p := range c.procs {
		if p.name == name {
			b, err := os.ReadFile(p.log)
			return string(b), err
		}
	}
	return "", errors.New("k8stest: no component " + name)
}

// WriteLog appends a line to every pod's log (stream "stdout"), in the CRI
// log format the kubelet API reads.
func (c *Cluster) WriteLog(text string) error {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	f, err := os.OpenFile(c.PodLog, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Pdeathsig is sent when the OS thread that started a process exits, not
// the process: Go ends a thread when a goroutine locked to it returns (as
// PodNet's namespace thread does), and a component started from such a
// thread would be killed with it, mid-test. So every component is started
// from one goroutine locked to its thread for the life of the test binary,
// by StartPinned (which internal/k8snode uses too).
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// StartPinned starts cmd from the spawner's thread, so a Pdeathsig set in
// its SysProcAttr fires when the test binary exits, never earlier.
func StartPinned(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the binary
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd, done}
	return <-done
}

// Eventually polls cond every 50 ms until it holds, and fails the test
// with what and cond's last error when it has not within 90 seconds (the
// components of a cluster share 2 cores with the rest of the suite).
func Eventually(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 90s (last error: %v)", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ReadyEndpoints are the names of the pods behind a Service's
// EndpointSlices whose endpoints are ready, sorted.
func ReadyEndpoints(ctx context.Context, c kubernetes.Interface, namespace, service string) ([]string, error) {
	sl, err := c.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + service})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range sl.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready && ep.TargetRef != nil {
				out = append(out, ep.TargetRef.Name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
