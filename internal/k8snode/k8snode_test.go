package k8snode_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/runwayhq/runway/internal/k8snode"
	"github.com/runwayhq/runway/internal/k8stest"
)

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestNodeRunsHello: a real kubelet joins the control plane, runs hello
// as a pod (a real container, from an imported image), the host reaches
// it at its pod IP, and its log comes through the API server's pods/log.
func TestNodeRunsHello(t *testing.T) {
	k8snode.Skip(t)
	k8stest.SkipMissing(t)
	dir := t.TempDir()
	pause, err := k8snode.BuildPause(moduleRoot(), dir)
	if err != nil {
		t.Fatal(err)
	}
	hello := filepath.Join(dir, "hello")
	if err := k8snode.BuildStatic(filepath.Join(moduleRoot(), "examples", "hello"), ".", hello); err != nil {
		t.Fatal(err)
	}
	helloTar := filepath.Join(dir, "hello.tar")
	if err := k8snode.WriteImage(helloTar, k8snode.Image{Names: []string{"registry.e2e.test/acme/hello:1"},
		Files: map[string]string{"hello": hello}, Cmd: []string{"/hello"}, Env: []string{"HOST=0.0.0.0", "VERSION=1"}}); err != nil {
		t.Fatal(err)
	}
	kc := k8stest.StartWith(t, k8stest.Options{NoFakeNode: true})
	node := k8snode.Start(t, kc, pause, helloTar)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "hello", Image: "registry.e2e.test/acme/hello:1",
			ImagePullPolicy: corev1.PullIfNotPresent, Env: []corev1.EnvVar{{Name: "PORT", Value: "8080"}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}},
				PeriodSeconds: 1}}}}}
	if _, err := kc.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var ip string
	var took time.Duration
	deadline := time.Now().Add(90 * time.Second)
	for {
		p, err := kc.Client.CoreV1().Pods("default").Get(ctx, "hello", metav1.GetOptions{})
		if err == nil {
			if d, ok := k8snode.PodStart(p); ok {
				ip, took = p.Status.PodIP, d
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod is not Ready: %+v (%v)\nkubelet:\n%s", p.Status, err, tail(node.Log("kubelet"), 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("pod hello Ready at %s, %s after its creation", ip, took)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ip + ":8080/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "from v1") {
		t.Fatalf("GET / of the pod: %d %q", resp.StatusCode, body)
	}
	logs, err := kc.Client.CoreV1().Pods("default").GetLogs("hello", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || len(logs) == 0 {
		t.Fatalf("the pod's log: %q, %v", logs, err)
	}
	t.Logf("its log through the API server:\n%s", logs)
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
