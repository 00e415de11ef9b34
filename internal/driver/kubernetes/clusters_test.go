package kubernetes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/target"
)

// twoContexts writes a kubeconfig whose contexts "east" (current) and
// "west" name two API servers; nothing is dialled by these tests.
func twoContexts(t *testing.T, path string) {
	t.Helper()
	const kc = `apiVersion: v1
kind: Config
clusters:
- name: east
  cluster:
    server: https://127.0.0.1:1001
- name: west
  cluster:
    server: https://127.0.0.1:1002
users:
- name: admin
  user:
    token: not-a-secret
contexts:
- name: east
  context: {cluster: east, user: admin}
- name: west
  context: {cluster: west, user: admin}
current-context: east
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
}

func hostOf(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	cs, ok := c.(*kubernetes.Clientset)
	if !ok {
		t.Fatalf("client %T is not a clientset", c)
	}
	return cs.CoreV1().RESTClient().Get().URL().Host
}

// TestClusters: an environment's (kubeconfig, context) selects the
// cluster; the server's own pair is its default client; clients are kept;
// a file the server was not started with and an unknown context are
// refused, saying what to do.
func TestClusters(t *testing.T) {
	dir := t.TempDir()
	main, other := filepath.Join(dir, "main.kubeconfig"), filepath.Join(dir, "other.kubeconfig")
	twoContexts(t, main)
	twoContexts(t, other)
	def := fake.NewClientset()
	cl := NewClusters(def, []string{main, other}, "")

	for _, tc := range []struct{ kubeconfig, context string }{{"", ""}, {"", "east"}, {main, ""}, {main, "east"}, {filepath.Join(dir, ".", "main.kubeconfig"), "east"}} {
		if got, err := cl.For(tc.kubeconfig, tc.context); err != nil || got != def {
			t.Errorf("For(%q, %q) = %v, %v; want the server's own client", tc.kubeconfig, tc.context, got, err)
		}
	}
	west, err := cl.For("", "west")
	if err != nil || hostOf(t, west) != "127.0.0.1:1002" {
		t.Fatalf("For(\"\", west) = %v, %v", west, err)
	}
	if again, _ := cl.For(main, "west"); again != west {
		t.Errorf("the client of (main, west) is not kept: %p then %p", west, again)
	}
	o, err := cl.For(other, "")
	if err != nil || hostOf(t, o) != "127.0.0.1:1001" || o == def {
		t.Errorf("For(other, \"\") = %v, %v; want other's current context east, a client of its own", o, err)
	}

	_, err = cl.For(filepath.Join(dir, "elsewhere"), "")
	if err == nil || !strings.Contains(err.Error(), "--kubeconfig "+filepath.Join(dir, "elsewhere")) || !strings.Contains(err.Error(), "not a kubeconfig this server reads") {
		t.Errorf("a kubeconfig the server was not started with: %v", err)
	}
	_, err = cl.For(main, "north")
	if err == nil || !strings.Contains(err.Error(), `"north" is not a context of kubeconfig `+main) || !strings.Contains(err.Error(), "its contexts: east, west") {
		t.Errorf("an unknown context: %v", err)
	}

	// The server's --kube-context is the default context of its kubeconfig.
	cl = NewClusters(def, []string{main}, "west")
	if got, _ := cl.For("", ""); got != def {
		t.Errorf("For(\"\", \"\") is not the server's client")
	}
	if got, _ := cl.For(main, ""); got != def {
		t.Errorf("For(main, \"\") with --kube-context west is not the server's client")
	}
	if got, err := cl.For("", "east"); err != nil || got == def || hostOf(t, got) != "127.0.0.1:1001" {
		t.Errorf("For(\"\", east) with --kube-context west = %v, %v", got, err)
	}
	if _, err := NewClusters(def, nil, "").For(main, ""); err == nil || !strings.Contains(err.Error(), "(its --kubeconfig: none)") {
		t.Errorf("a server without --kubeconfig reads no file a manifest names: %v", err)
	}
}

// TestClientForRefused: a cluster the server cannot resolve fails the
// release's validation with its message, before any object is made.
func TestClientForRefused(t *testing.T) {
	refusal := errors.New(`environment prod: kubernetes.context "north" is not a context of kubeconfig k (its contexts: east): name one of them`)
	d, err := New(Options{ClientFor: func(target.ServiceRef) (kubernetes.Interface, error) { return nil, refusal }})
	if err != nil {
		t.Fatal(err)
	}
	ref := target.ServiceRef{Project: "p", Environment: "prod", Service: "web"}
	if err := d.Validate(context.Background(), ref, &config.Service{Image: "registry.test/web:1"}); !errors.Is(err, refusal) {
		t.Errorf("Validate = %v, want the refusal", err)
	}
	if _, err := d.ListGroups(context.Background(), ref); !errors.Is(err, refusal) {
		t.Errorf("ListGroups = %v, want the refusal", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without Client or ClientFor succeeded")
	}
}
