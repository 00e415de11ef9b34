// Package k8snode joins a real node to an internal/k8stest control plane:
// containerd (Debian's package) with runc and the CNI bridge plugin, and a
// kubelet built from Go modules by `scripts/k8s-build.sh --node`. Pods run
// as real containers, get IPs on a bridge of their own (Bridge, PodCIDR)
// that this machine reaches, and reach the API server at the cluster IP of
// the kubernetes Service (10.96.0.1:443), which a DNAT rule in a chain of
// its own (Chain) sends to the API server on loopback.
//
// It changes the host (a bridge, an iptables chain, cgroups, a container
// runtime's state under StateDir and RunDir), so it runs only when
// RUNWAY_K8S_NODE=1 and as root: scripts/e2e-kubernetes-node.sh (`make
// e2e-kubernetes-node`) installs what it needs, runs the tests and cleans
// up after them, also after a crash.
package k8snode

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runwayhq/runway/internal/k8stest"
)

// The node's fixed names and addresses. The script's clean-up removes
// exactly these.
const (
	NodeName = "runway-node-0"
	Bridge   = "runway0"
	PodCIDR  = "10.244.0.0/24"
	NodeIP   = "10.244.0.1"
	Chain    = "RUNWAY-K8SNODE"
	StateDir = "/var/lib/runway-k8snode"
	RunDir   = "/run/runway-k8snode"
	// ClusterIP is the kubernetes Service's address pods are given
	// (KUBERNETES_SERVICE_HOST); k8stest's serving certificate names it.
	ClusterIP = "10.96.0.1"
	// ServiceCIDR is k8stest's service range, the one route pods get
	// (through the node): no default route, nothing beyond this machine.
	ServiceCIDR = "10.96.0.0/16"
	// PauseImage is the pod sandbox's image (BuildPause).
	PauseImage = "registry.e2e.test/runway/pause:1"
)

// Env is the variable that enables the real node's tests.
const Env = "RUNWAY_K8S_NODE"

// Skip skips t unless RUNWAY_K8S_NODE=1, saying how to run it; with it set
// it fails t when something the node needs is missing.
func Skip(t testing.TB) {
	t.Helper()
	if os.Getenv(Env) != "1" {
		t.Skip("a real Kubernetes node changes the host (bridge, iptables, containerd): run `make e2e-kubernetes-node` (scripts/e2e-kubernetes-node.sh), which sets " + Env + "=1")
	}
	if os.Geteuid() != 0 {
		t.Fatal("k8snode: the kubelet and containerd need root")
	}
	for _, p := range []string{"/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", Kubelet()} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("k8snode: %s is missing: run scripts/e2e-kubernetes-node.sh, which installs containerd, runc and containernetworking-plugins and builds the kubelet (scripts/k8s-build.sh --node)", p)
		}
	}
}

// Kubelet is the kubelet binary's path.
func Kubelet() string { return filepath.Join(k8stest.BinDir(), "kubelet") }

// Node is a running kubelet and containerd.
type Node struct {
	Name    string
	IP      string
	Socket  string // containerd's
	dir     string
	kc      *k8stest.Cluster
	procs   []*exec.Cmd
	done    []chan struct{}
	logs    []string
	Started time.Duration // from Start to the node Ready

	kubeProxy bool
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("k8snode: %s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Start joins a node to kc (started with k8stest.Options{NoFakeNode:
// true}), importing the OCI archives images (WriteImage) into containerd
// before the kubelet starts. It returns once the node is Ready; t's
// clean-up deletes every pod, waits for them to go and stops the kubelet
// and containerd.
func Start(t testing.TB, kc *k8stest.Cluster, images ...string) *Node {
	t.Helper()
	return StartWith(t, kc, Options{Images: images})
}

// Options change what StartWith starts.
type Options struct {
	// Images are OCI archives imported before the kubelet starts.
	Images []string
	// KubeProxy also runs kube-proxy (iptables mode, its KUBE-* chains),
	// so this machine reaches Services at their cluster IPs (routed to
	// the bridge); node ports only on the node's address.
	KubeProxy bool
}

// StartWith is Start with options.
func StartWith(t testing.TB, kc *k8stest.Cluster, o Options) *Node {
	t.Helper()
	images := o.Images
	begin := time.Now()
	n := &Node{Name: NodeName, IP: NodeIP, Socket: filepath.Join(RunDir, "containerd.sock"), dir: filepath.Join(StateDir, "run"), kc: kc}
	t.Cleanup(func() { n.stop(t) })
	n.kubeProxy = o.KubeProxy
	if err := n.start(images); err != nil {
		n.dumpLogs(t)
		t.Fatal(err)
	}
	n.Started = time.Since(begin)
	t.Logf("k8snode: node %s Ready in %s (pods on %s, bridge %s)", n.Name, n.Started.Round(time.Millisecond), PodCIDR, Bridge)
	return n
}

func (n *Node) start(images []string) error {
	for _, d := range []string{n.dir, RunDir, filepath.Join(StateDir, "cni"), filepath.Join(StateDir, "kubelet"), filepath.Join(StateDir, "pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := n.network(); err != nil {
		return err
	}
	if err := n.containerd(); err != nil {
		return err
	}
	for _, img := range images {
		if err := run("ctr", "--address", n.Socket, "-n", "k8s.io", "images", "import", img); err != nil {
			return err
		}
	}
	if err := n.kubelet(); err != nil {
		return err
	}
	if n.kubeProxy {
		return n.startKubeProxy()
	}
	return nil
}

// identity writes the kubeconfig of component as user (in groups) with a
// certificate of the cluster's CA, and binds user to the ClusterRole role.
func (n *Node) identity(ctx context.Context, component, user, role string, groups ...string) (string, error) {
	cert, key, err := n.kc.IssueClient(user, groups...)
	if err != nil {
		return "", err
	}
	ca, err := os.ReadFile(n.kc.CAFile)
	if err != nil {
		return "", err
	}
	kubeconfig := filepath.Join(n.dir, component+".kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(k8stest.Kubeconfig(n.kc.Server, ca, cert, key)), 0o600); err != nil {
		return "", err
	}
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "runway-k8snode-" + component},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}}}
	if _, err := n.kc.Client.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("k8snode: bind %s's role %s: %w", component, role, err)
	}
	return kubeconfig, nil
}

// startKubeProxy runs kube-proxy as system:kube-proxy (the
// system:node-proxier role) and waits for its first sync of the
// kubernetes Service.
func (n *Node) startKubeProxy() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kubeconfig, err := n.identity(ctx, "kube-proxy", "system:kube-proxy", "system:node-proxier")
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	metrics := l.Addr().String()
	l.Close()
	cfg := filepath.Join(n.dir, "kube-proxy.yaml")
	conf := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
bindAddress: %s
mode: iptables
clusterCIDR: %s
healthzBindAddress: ""
metricsBindAddress: %q
nodePortAddresses: ["%s/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
  syncPeriod: 30s
  minSyncPeriod: 0s
`, kubeconfig, n.Name, NodeIP, PodCIDR, metrics, NodeIP)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return err
	}
	if err := n.spawn("kube-proxy", filepath.Join(k8stest.BinDir(), "kube-proxy"), "--config", cfg, "--v=1"); err != nil {
		return err
	}
	return n.poll(60*time.Second, "kube-proxy's first sync", func() bool {
		// The kubernetes Service (it has no endpoints: the API server
		// advertises none) is in the filter table's KUBE-SERVICES.
		out, _ := exec.Command("iptables-save").CombinedOutput()
		return bytes.Contains(out, []byte("default/kubernetes:https"))
	})
}

// network makes the bridge with the node's address, lets it route to
// loopback (the DNAT below) and sends pods' connections to the cluster IP
// of the kubernetes Service to the API server.
func (n *Node) network() error {
	if _, err := net.InterfaceByName(Bridge); err != nil {
		if err := run("ip", "link", "add", Bridge, "type", "bridge"); err != nil {
			return err
		}
	}
	if out, _ := exec.Command("ip", "-4", "addr", "show", "dev", Bridge).Output(); !bytes.Contains(out, []byte(NodeIP+"/24")) {
		if err := run("ip", "addr", "add", NodeIP+"/24", "dev", Bridge); err != nil {
			return err
		}
	}
	if err := run("ip", "link", "set", Bridge, "up"); err != nil {
		return err
	}
	// The service range is on the bridge (kube-proxy's DNAT, when it runs,
	// picks the pod); nothing for it goes out of eth0.
	if err := run("ip", "route", "replace", ServiceCIDR, "dev", Bridge, "src", NodeIP); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+Bridge+"/route_localnet", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("k8snode: route_localnet on %s: %w", Bridge, err)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(n.kc.Server, "https://"), ":")
	_ = exec.Command("iptables", "-t", "nat", "-N", Chain).Run() // exists after a crash
	if err := run("iptables", "-t", "nat", "-F", Chain); err != nil {
		return err
	}
	if exec.Command("iptables", "-t", "nat", "-C", "PREROUTING", "-i", Bridge, "-j", Chain).Run() != nil {
		if err := run("iptables", "-t", "nat", "-A", "PREROUTING", "-i", Bridge, "-j", Chain); err != nil {
			return err
		}
	}
	if err := run("iptables", "-t", "nat", "-A", Chain, "-d", ClusterIP+"/32", "-p", "tcp", "--dport", "443",
		"-j", "DNAT", "--to-destination", "127.0.0.1:"+port); err != nil {
		return err
	}
	conf := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "runway-k8snode",
  "plugins": [{
    "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "dataDir": %q,
             "routes": [{"dst": %q}]}
  }]
}
`, Bridge, PodCIDR, NodeIP, filepath.Join(StateDir, "cni-ipam"), ServiceCIDR)
	return os.WriteFile(filepath.Join(StateDir, "cni", "10-runway.conflist"), []byte(conf), 0o644)
}

func (n *Node) containerd() error {
	cfg := filepath.Join(n.dir, "containerd.toml")
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # No CAP_SYS_RESOURCE here: a pod may not get a lower oom_score_adj
  # than containerd's (the pause sandbox asks for -998).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, filepath.Join(StateDir, "containerd"), filepath.Join(RunDir, "containerd"), n.Socket, PauseImage, filepath.Join(StateDir, "cni"))
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return err
	}
	if err := n.spawn("containerd", "containerd", "--config", cfg); err != nil {
		return err
	}
	return n.poll(30*time.Second, "containerd's socket", func() bool {
		return exec.Command("ctr", "--address", n.Socket, "version").Run() == nil
	})
}

func (n *Node) kubelet() error {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// The node's own identity, bound to the system:node role (the cluster
	// authorizes with RBAC alone).
	kubeconfig, err := n.identity(ctx, "kubelet", "system:node:"+n.Name, "system:node", "system:nodes")
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	// cgroup v1 (these machines run the hybrid layout) needs failCgroupV1:
	// false; containerd 1.6 has no RuntimeConfig, so the kubelet takes the
	// cgroup driver from here.
	cfg := filepath.Join(n.dir, "kubelet.yaml")
	conf := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzPort: 0
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%s
podLogsDir: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
serializeImagePulls: false
makeIPTablesUtilChains: false
registerNode: true
maxPods: 50
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
`, NodeIP, port, n.Socket, filepath.Join(StateDir, "pod-logs"), n.kc.CAFile)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return err
	}
	if err := n.spawn("kubelet", Kubelet(), "--config", cfg, "--kubeconfig", kubeconfig,
		"--root-dir", filepath.Join(StateDir, "kubelet"), "--cert-dir", filepath.Join(StateDir, "kubelet", "pki"),
		"--hostname-override", n.Name, "--node-ip", NodeIP, "--v=1"); err != nil {
		return err
	}
	return n.poll(120*time.Second, "the node Ready", func() bool {
		node, err := n.kc.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				for _, taint := range node.Spec.Taints {
					if taint.Effect == corev1.TaintEffectNoSchedule || taint.Effect == corev1.TaintEffectNoExecute {
						return false
					}
				}
				return true
			}
		}
		return false
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", NodeIP+":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (n *Node) spawn(name, bin string, args ...string) error {
	logPath := filepath.Join(n.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := k8stest.StartPinned(cmd); err != nil { // Pdeathsig must outlive the caller's thread
		f.Close()
		return fmt.Errorf("k8snode: start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	n.procs, n.done, n.logs = append(n.procs, cmd), append(n.done, done), append(n.logs, logPath)
	return nil
}

func (n *Node) poll(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		for i, d := range n.done {
			select {
			case <-d:
				return fmt.Errorf("k8snode: waiting for %s: %s exited; its log:\n%s", what, filepath.Base(n.logs[i]), tail(n.logs[i], 30))
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("k8snode: %s: not within %s", what, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func (n *Node) dumpLogs(t testing.TB) {
	for _, l := range n.logs {
		t.Logf("k8snode: last lines of %s:\n%s", filepath.Base(l), tail(l, 20))
	}
}

// Log returns a component's log ("kubelet", "containerd").
func (n *Node) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, name+".log"))
	return string(b)
}

// stop deletes every pod (the kubelet stops their containers and tears
// their networks down), stops the kubelet and containerd and removes the
// DNAT rule. The script's clean-up removes the rest.
func (n *Node) stop(t testing.TB) {
	if t.Failed() {
		n.dumpLogs(t)
	}
	if len(n.procs) >= 2 { // the kubelet runs (kube-proxy stops after it)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		// Deleted with a grace period, so each pod object stays until the
		// kubelet has stopped its containers and torn its network down.
		nss, err := n.kc.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err == nil {
			grace := int64(1)
			for _, ns := range nss.Items {
				_ = n.kc.Client.AppsV1().Deployments(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
				bg := metav1.DeletePropagationBackground
				_ = n.kc.Client.BatchV1().Jobs(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &bg}, metav1.ListOptions{})
				_ = n.kc.Client.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
			}
			err = n.poll(60*time.Second, "every pod gone", func() bool {
				pods, err := n.kc.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
				return err == nil && len(pods.Items) == 0
			})
		}
		if err != nil {
			t.Logf("k8snode: pods not deleted before the kubelet stops (the script's clean-up removes their containers): %v", err)
		}
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		_ = syscall.Kill(-n.procs[i].Process.Pid, syscall.SIGTERM)
		select {
		case <-n.done[i]:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-n.procs[i].Process.Pid, syscall.SIGKILL)
			<-n.done[i]
		}
	}
	_ = exec.Command("iptables", "-t", "nat", "-F", Chain).Run()
}

// PodStart is how long a pod took from its creation to Ready.
func PodStart(p *corev1.Pod) (time.Duration, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Sub(p.CreationTimestamp.Time), true
		}
	}
	return 0, false
}
