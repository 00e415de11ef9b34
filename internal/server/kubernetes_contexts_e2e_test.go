package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/runwayhq/runway/internal/apiwire"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/k8stest"
)

// writeContexts writes one kubeconfig whose contexts (name → cluster)
// reach each cluster as its admin; current is its current context.
func writeContexts(t *testing.T, path, current string, clusters map[string]*k8stest.Cluster) {
	t.Helper()
	out := clientcmdapi.NewConfig()
	for name, kc := range clusters {
		in, err := clientcmd.LoadFromFile(kc.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		c := in.Contexts[in.CurrentContext]
		out.Clusters[name] = in.Clusters[c.Cluster]
		out.AuthInfos[name] = in.AuthInfos[c.AuthInfo]
		out.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	}
	out.CurrentContext = current
	if err := clientcmd.WriteToFile(*out, path); err != nil {
		t.Fatal(err)
	}
}

// environmentsOn lists the environments whose Deployments of the service
// the cluster holds.
func environmentsOn(t *testing.T, kc *k8stest.Cluster) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	deps, err := kc.Client.AppsV1().Deployments(k8sNamespace).List(ctx, metav1.ListOptions{LabelSelector: k8sdriver.LabelService + "=" + service})
	if err != nil {
		t.Fatal(err)
	}
	var envs []string
	for _, d := range deps.Items {
		envs = append(envs, d.Labels[k8sdriver.LabelEnvironment])
	}
	return envs
}

// TestKubernetesContexts: one server, two clusters reached through the
// two contexts of one kubeconfig (its --kubeconfig); environment dev names
// context east, environment prod names the file and context west, and each
// release lands in its environment's cluster only. A context the
// kubeconfig lacks and a kubeconfig the server was not started with are
// refused at project apply, saying what to do.
func TestKubernetesContexts(t *testing.T) {
	east, west := k8stest.Start(t), k8stest.Start(t)
	for _, kc := range []*k8stest.Cluster{east, west} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := kc.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k8sNamespace}}, metav1.CreateOptions{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	c := startCluster(t)
	both := filepath.Join(c.dir, "clusters.kubeconfig")
	writeContexts(t, both, "east", map[string]*k8stest.Cluster{"east": east, "west": west})
	c.serverArgs = []string{"--kubeconfig", both}
	c.server.stop(t, syscall.SIGTERM) // restarted with the clusters' kubeconfig
	c.startServer()

	dir := filepath.Join(c.dir, "project")
	environment := func(name, block string) string {
		return fmt.Sprintf("environment %q {\n  target   = \"kubernetes\"\n  registry = \"registry.e2e.test/acme\"\n  kubernetes {\n    traffic   = \"service\"\n    namespace = %q\n%s  }\n}\n", name, k8sNamespace, block)
	}
	apply := func(envs ...string) (string, error) {
		src := fmt.Sprintf("project %q {}\n%s", projectName, strings.Join(envs, ""))
		if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return c.cli("project", "apply", "--dir", dir, "--yes")
	}
	dev := environment("dev", "    context = \"east\"\n")
	prod := environment("prod", fmt.Sprintf("    kubeconfig = %q\n    context    = \"west\"\n", both))
	if out, err := apply(dev, prod); err != nil {
		t.Fatalf("runway project apply: %v\n%s", err, out)
	}
	svc := fmt.Sprintf(`service %q {
  image   = "registry.e2e.test/acme/hello:{{VERSION}}"
  port    = 8080
  version = "1.0.0"
  health {
    path              = "/healthz"
    interval          = "1s"
    healthy_threshold = 1
  }
  scale {
    desired = 1
  }
  deploy {
    strategy      = "blue_green"
    timeout       = "90s"
    drain_timeout = "1s"
  }
  hooks {
    stop_timeout = "1s"
  }
}
`, service)
	if err := os.WriteFile(filepath.Join(dir, service+".service.hcl"), []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range []string{"dev", "prod"} {
		out, err := c.cliStdout("deploy", service, "--env", e, "--file", dir, "--version", "1", "--yes", "--output", "json")
		if err != nil {
			t.Fatalf("runway deploy --env %s: %v\n%s", e, err, out)
		}
		var rel apiwire.Release
		if err := json.Unmarshal([]byte(out), &rel); err != nil {
			t.Fatalf("runway deploy output: %v\n%s", err, out)
		}
		ids = append(ids, rel.ID)
	}
	for _, id := range ids {
		mustState(t, c.wait(id, 90*time.Second), "Success")
	}
	if got := environmentsOn(t, east); len(got) != 1 || got[0] != "dev" {
		t.Errorf("cluster east (context of dev) holds Deployments of %v, want dev's alone", got)
	}
	if got := environmentsOn(t, west); len(got) != 1 || got[0] != "prod" {
		t.Errorf("cluster west (context of prod) holds Deployments of %v, want prod's alone", got)
	}

	out, err := apply(dev, environment("prod", "    context = \"north\"\n"))
	if err == nil || !strings.Contains(out, `"north" is not a context of kubeconfig `+both) || !strings.Contains(out, "its contexts: east, west") {
		t.Errorf("an unknown context: %v\n%s", err, out)
	}
	t.Logf("refused: %s", strings.TrimSpace(out))
	other := filepath.Join(c.dir, "other.kubeconfig")
	writeContexts(t, other, "west", map[string]*k8stest.Cluster{"west": west})
	out, err = apply(dev, environment("prod", fmt.Sprintf("    kubeconfig = %q\n", other)))
	if err == nil || !strings.Contains(out, "not a kubeconfig this server reads") || !strings.Contains(out, "--kubeconfig "+other) {
		t.Errorf("a kubeconfig the server was not started with: %v\n%s", err, out)
	}
	t.Logf("refused: %s", strings.TrimSpace(out))
}
