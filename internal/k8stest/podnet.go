package k8stest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PodNet is a network namespace of the test's own in which pods' addresses
// exist. kwok gives pods addresses (from 10.244.0.0/16) but runs no
// container, and nothing may be sent to such an address from the machine's
// own network. In a PodNet a test gives a pod's address to the loopback
// interface (AddAddr) and runs the pod's process there (Command), and runs
// Runway's in-cluster proxy there too: the proxy's requests to the pods'
// addresses reach those processes, and an address no process holds is
// unreachable at once. The namespace has no other interface and no route
// out, so nothing sent in it leaves the machine. Forward makes an address
// of the machine (the API server) reachable inside it; Dial connects from
// the machine into it.
type PodNet struct {
	// NS is the namespace's path (for nsenter --net=).
	NS string
	// PodOutput, when set, receives each line the pods' processes
	// (RunPods) write, such as Cluster.WriteLog: kwok serves that file as
	// every pod's log.
	PodOutput func(line string) error

	ops  chan func()
	done chan struct{}
	once sync.Once
	lns  []net.Listener
	mu   sync.Mutex
}

// NewPodNet creates a PodNet, removed when t ends. It needs the right to
// create network namespaces (root), nsenter and ip: without them t skips
// (fails with RUNWAY_K8S_REQUIRED=1).
func NewPodNet(t testing.TB) *PodNet {
	t.Helper()
	var missing []string
	for _, tool := range []string{"nsenter", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	n, err := newPodNet(missing)
	if err != nil {
		msg := fmt.Sprintf("k8stest: a network namespace for the pods' addresses: %v (the tests that send requests to pods need root, nsenter and ip: apt-get install util-linux iproute2)", err)
		if os.Getenv("RUNWAY_K8S_REQUIRED") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(n.Close)
	return n
}

func newPodNet(missing []string) (*PodNet, error) {
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not found", strings.Join(missing, ", "))
	}
	n := &PodNet{ops: make(chan func()), done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		// The thread moves into the new namespace and is never unlocked:
		// it ends with this goroutine, and the namespace with it (and with
		// the processes started in it).
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			ready <- fmt.Errorf("unshare: %w", err)
			return
		}
		n.NS = fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), syscall.Gettid())
		ready <- nil
		for {
			select {
			case f := <-n.ops:
				f()
			case <-n.done:
				return
			}
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	if out, err := exec.Command("nsenter", "--net="+n.NS, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		n.Close()
		return nil, fmt.Errorf("ip link set lo up: %v: %s", err, out)
	}
	return n, nil
}

var errClosed = fmt.Errorf("k8stest: the pods' network namespace is closed")

// in runs f on the namespace's thread: sockets it creates are the
// namespace's. Never elsewhere: a socket of the machine's namespace could
// send to a pod's address.
func (n *PodNet) in(f func()) error {
	ran := make(chan struct{})
	select {
	case n.ops <- func() { f(); close(ran) }:
		<-ran
		return nil
	case <-n.done:
		return errClosed
	}
}

// AddAddr gives ip (a pod's address) to the namespace's loopback
// interface, so that a process of the namespace listens on it.
func (n *PodNet) AddAddr(ip string) error {
	if net.ParseIP(ip) == nil {
		return fmt.Errorf("k8stest: pod address %q is not an IP", ip)
	}
	out, err := exec.Command("nsenter", "--net="+n.NS, "ip", "addr", "add", ip+"/32", "dev", "lo").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "File exists") {
		return fmt.Errorf("k8stest: ip addr add %s: %v: %s", ip, err, out)
	}
	return nil
}

// Command is name run in the namespace.
func (n *PodNet) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + n.NS, "--", name}, args...)...)
}

// Forward listens on 127.0.0.1 in the namespace and connects what it
// accepts to addr, an address of the machine (from outside the
// namespace); it returns the listener's address.
func (n *PodNet) Forward(addr string) (string, error) {
	var ln net.Listener
	var err error
	if ierr := n.in(func() { ln, err = net.Listen("tcp", "127.0.0.1:0") }); ierr != nil {
		return "", ierr
	}
	if err != nil {
		return "", err
	}
	n.mu.Lock()
	n.lns = append(n.lns, ln)
	n.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr) // from this goroutine's thread: the machine's namespace
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = copyConn(up, c); done <- struct{}{} }()
				go func() { _, _ = copyConn(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return ln.Addr().String(), nil
}

func copyConn(dst, src net.Conn) (int64, error) {
	defer func() {
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	buf := make([]byte, 32<<10)
	var total int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return total, werr
			}
			total += int64(k)
		}
		if err != nil {
			return total, err
		}
	}
}

// Dial connects to addr inside the namespace (an http.Transport's
// DialContext).
func (n *PodNet) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	var err error
	if ierr := n.in(func() {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
	}); ierr != nil {
		return nil, ierr
	}
	return c, err
}

// Close removes the namespace (once the processes started in it ended).
func (n *PodNet) Close() {
	n.once.Do(func() {
		close(n.done)
		n.mu.Lock()
		for _, ln := range n.lns {
			ln.Close()
		}
		n.mu.Unlock()
	})
}

// RunPods plays the container runtime kwok lacks, for the pods of
// namespace ns that selector selects, until ctx ends: every running pod
// with an address gets that address in the namespace and a process of bin
// (its first container's image, built by the test) with the container's
// plain environment values and HOST and PORT set to the pod's address and
// first container port. A pod deleted (or being deleted) has its process
// stopped (SIGTERM). It returns once every process it started ended.
func (n *PodNet) RunPods(ctx context.Context, t testing.TB, c kubernetes.Interface, ns, selector, bin string) {
	type running struct {
		uid  string
		cmd  *exec.Cmd
		done chan struct{}
	}
	byIP := map[string]*running{}
	stop := func(r *running) {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	}
	defer func() {
		for _, r := range byIP {
			stop(r)
		}
	}()
	for {
		pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			live := map[string]bool{}
			for i := range pods.Items {
				p := &pods.Items[i]
				ip := p.Status.PodIP
				if ip == "" || p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil || len(p.Spec.Containers) == 0 {
					continue
				}
				live[ip] = true
				if r := byIP[ip]; r != nil {
					if r.uid == string(p.UID) {
						continue
					}
					stop(r) // kwok gave the address to a new pod
					delete(byIP, ip)
				}
				if err := n.AddAddr(ip); err != nil {
					t.Errorf("pod %s: %v", p.Name, err)
					continue
				}
				ctr := p.Spec.Containers[0]
				port := "8080"
				if len(ctr.Ports) > 0 {
					port = strconv.Itoa(int(ctr.Ports[0].ContainerPort))
				}
				cmd := n.Command(bin, ctr.Args...)
				if n.PodOutput != nil {
					w := &lineWriter{fn: n.PodOutput}
					cmd.Stdout, cmd.Stderr = w, w
				}
				cmd.Env = append(os.Environ(), "HOST="+ip, "PORT="+port)
				for _, e := range ctr.Env {
					if e.ValueFrom == nil {
						cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
					}
				}
				if err := cmd.Start(); err != nil {
					t.Errorf("pod %s: start %s: %v", p.Name, bin, err)
					continue
				}
				r := &running{uid: string(p.UID), cmd: cmd, done: make(chan struct{})}
				go func() { _ = cmd.Wait(); close(r.done) }()
				byIP[ip] = r
			}
			for ip, r := range byIP {
				if !live[ip] {
					stop(r)
					delete(byIP, ip)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Start runs name in the namespace for the rest of t: stopped (SIGINT,
// then SIGKILL after 30 s) when t ends, its output logged if t failed.
func (n *PodNet) Start(t testing.TB, name string, args ...string) {
	t.Helper()
	cmd := n.Command(name, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out.String())
		}
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// lineWriter hands each complete line written to fn.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string) error
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		_ = w.fn(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}
