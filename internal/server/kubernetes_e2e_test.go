package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/k8stest"
	"github.com/runwayhq/runway/internal/podmantest"
)

// k8sNamespace is the namespace of the e2e project's dev environment (its
// kubernetes block's, not the default <project>-<environment>).
const k8sNamespace = "runway-e2e-ns"

// kubeCluster is a cluster whose server runs target kubernetes on a real
// control plane of its own (internal/k8stest), the environment's namespace
// created by the admin.
func kubeCluster(t *testing.T) (*cluster, *k8stest.Cluster) {
	t.Helper()
	kc := k8stest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kc.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k8sNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := startCluster(t)
	c.serverArgs = []string{"--kubeconfig", kc.Kubeconfig}
	c.server.stop(t, syscall.SIGTERM) // restarted with the cluster's kubeconfig
	c.startServer()
	return c, kc
}

// writeKubeManifest writes a project whose dev environment has target
// kubernetes with traffic "service" and the hello service.
func (c *cluster) writeKubeManifest(strategy, deployBody string, desired int, scaleDownDelay string) {
	c.t.Helper()
	project := fmt.Sprintf(`project %q {}
environment "dev" {
  target   = "kubernetes"
  registry = "registry.e2e.test/acme"
  kubernetes {
    traffic   = "service"
    namespace = %q
  }
}
`, projectName, k8sNamespace)
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
    desired = %d
    max     = 10
  }
  deploy {
    strategy         = %q
    timeout          = "90s"
    scale_down_delay = %q
    drain_timeout    = "2s"
    rolling {
      max_surge       = 1
      max_unavailable = 0
    }
%s
  }
  hooks {
    stop_timeout = "1s"
  }
}
`, service, desired, strategy, scaleDownDelay, deployBody)
	dir := filepath.Join(c.dir, "project")
	if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte(project), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, service+".service.hcl"), []byte(svc), 0o644); err != nil {
		c.t.Fatal(err)
	}
	c.applyProject()
}

// kubeState is what the cluster holds of the service.
type kubeState struct {
	deployments map[string]int // name → ready replicas
	replicaSets []string       // the groups of the ReplicaSets with replicas
	selector    string         // the Service's group selector
	endpoints   []string       // ready endpoints' pods
	pods        []string       // running pods of the service
}

func readKube(t *testing.T, kc *k8stest.Cluster) kubeState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sel := k8sdriver.LabelService + "=" + service
	st := kubeState{deployments: map[string]int{}}
	deps, err := kc.Client.AppsV1().Deployments(k8sNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		st.deployments[d.Name] = int(d.Status.ReadyReplicas)
	}
	rss, err := kc.Client.AppsV1().ReplicaSets(k8sNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range rss.Items {
		if rs.Status.Replicas > 0 {
			st.replicaSets = append(st.replicaSets, rs.Labels[k8sdriver.LabelGroup])
		}
	}
	sort.Strings(st.replicaSets)
	if svc, err := kc.Client.CoreV1().Services(k8sNamespace).Get(ctx, service, metav1.GetOptions{}); err == nil {
		st.selector = svc.Spec.Selector[k8sdriver.LabelGroup]
	}
	sls, err := kc.Client.DiscoveryV1().EndpointSlices(k8sNamespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + service})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sls.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready && ep.TargetRef != nil {
				st.endpoints = append(st.endpoints, ep.TargetRef.Name)
			}
		}
	}
	sort.Strings(st.endpoints)
	pods, err := kc.Client.CoreV1().Pods(k8sNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			st.pods = append(st.pods, p.Name)
		}
	}
	sort.Strings(st.pods)
	return st
}

// onlyGroup waits until the cluster holds one group of the service, of
// desired ready pods, which the Service selects and whose pods are its
// endpoints; it returns the group.
func onlyGroup(t *testing.T, kc *k8stest.Cluster, desired int) string {
	t.Helper()
	var st kubeState
	var group string
	waitFor(t, 60*time.Second, "one group serving", func() bool {
		st = readKube(t, kc)
		if len(st.deployments) != 1 {
			return false
		}
		for g, ready := range st.deployments {
			group = g
			if ready != desired {
				return false
			}
		}
		return st.selector == group && reflect.DeepEqual(st.replicaSets, []string{group}) &&
			len(st.pods) == desired && reflect.DeepEqual(st.endpoints, st.pods)
	})
	return group
}

// TestKubernetesStrategies: blue_green and rolling releases through the
// engine on a real API server (traffic "service"): after v2 the cluster
// holds v2's Deployment alone, one ReplicaSet, the Service selecting it
// and its pods as the only endpoints.
func TestKubernetesStrategies(t *testing.T) {
	for _, strategy := range []string{"blue_green", "rolling"} {
		t.Run(strategy, func(t *testing.T) {
			c, kc := kubeCluster(t)
			c.writeKubeManifest(strategy, "", 2, "1s")
			mustState(t, c.deploy(service, "1"), "Success")
			v1 := onlyGroup(t, kc, 2)
			rel := c.deploy(service, "2")
			mustState(t, rel, "Success")
			v2 := onlyGroup(t, kc, 2)
			if v1 == v2 {
				t.Fatalf("v2 runs in v1's group %s", v1)
			}
			t.Logf("the cluster after v1 → v2 (%s):\n%s", strategy, describeKube(t, kc))
			dep, err := kc.Client.AppsV1().Deployments(k8sNamespace).Get(context.Background(), v2, metav1.GetOptions{})
			if err != nil || dep.Spec.Template.Spec.Containers[0].Image != "registry.e2e.test/acme/hello:2" || dep.Labels[k8sdriver.LabelRelease] != rel.ID {
				t.Errorf("v2's Deployment: %+v, %v", dep, err)
			}
		})
	}
}

// TestKubernetesCanaryReplicaRatio: a canary with traffic "service" is
// validated against the replica ratio: weight 20 beside 4 instances (1 of
// 5) is accepted by runway deploy, weight 10 refused before anything runs.
func TestKubernetesCanaryReplicaRatio(t *testing.T) {
	c, _ := kubeCluster(t)
	c.writeKubeManifest("canary", "    canary {\n      step {\n        weight = 10\n        pause  = \"10s\"\n      }\n    }", 4, "1s")
	out, err := c.cli("deploy", service, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "1", "--yes")
	if err == nil || !strings.Contains(out, "Canary weight a replica ratio cannot express") || !strings.Contains(out, "exact weights are 20") {
		t.Fatalf("runway deploy of a canary at 10%% of 4 instances: %v\n%s", err, out)
	}
}

// TestKubernetesServerKill9: the server is killed (-9) while a blue_green
// release waits in its scale-down delay; the next server resumes it and
// the cluster ends with v2 alone.
func TestKubernetesServerKill9(t *testing.T) {
	c, kc := kubeCluster(t)
	c.writeKubeManifest("blue_green", "", 2, "10s")
	mustState(t, c.deploy(service, "1"), "Success")
	v1 := onlyGroup(t, kc, 2)
	c.writeKubeManifest("blue_green", "", 2, "10s")
	rel := c.submit(service, "2")
	// Kill it once the new group exists (the release is mid-way).
	waitFor(t, 60*time.Second, "v2's Deployment", func() bool { return len(readKube(t, kc).deployments) == 2 })
	c.killServer()
	c.startServer()
	mustState(t, c.wait(rel.ID, 90*time.Second), "Success")
	if v2 := onlyGroup(t, kc, 2); v2 == v1 {
		t.Fatalf("v1's group %s serves after the resumed release", v1)
	}
}

// TestKubernetesHalt: a halted rolling release rolls back: v1's group
// alone serves again, v2's Deployment is gone.
func TestKubernetesHalt(t *testing.T) {
	c, kc := kubeCluster(t)
	c.writeKubeManifest("blue_green", "", 2, "60s")
	mustState(t, c.deploy(service, "1"), "Success")
	v1 := onlyGroup(t, kc, 2)
	rel := c.submit(service, "2")
	waitFor(t, 60*time.Second, "v2 serving", func() bool {
		st := readKube(t, kc)
		return len(st.deployments) == 2 && st.selector != v1 && st.selector != ""
	})
	if out, err := c.cli("halt", service, "--env", env, "--reason", "e2e halt"); err != nil {
		t.Fatalf("runway halt: %v\n%s", err, out)
	}
	done := c.wait(rel.ID, 90*time.Second)
	if done.State == "Success" {
		t.Fatalf("a halted release ended %s", done.State)
	}
	if got := onlyGroup(t, kc, 2); got != v1 {
		t.Errorf("after the halt %s serves, want v1's %s", got, v1)
	}
}

// describeKube renders what the namespace holds, as kubectl get would.
func describeKube(t *testing.T, kc *k8stest.Cluster) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	deps, err := kc.Client.AppsV1().Deployments(k8sNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "DEPLOYMENT\tREADY\tIMAGE\tRELEASE")
	for _, d := range deps.Items {
		fmt.Fprintf(w, "%s\t%d/%d\t%s\t%s\n", d.Name, d.Status.ReadyReplicas, *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Image, d.Labels[k8sdriver.LabelRelease])
	}
	rss, err := kc.Client.AppsV1().ReplicaSets(k8sNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "\nREPLICASET\tDESIRED\tREADY")
	for _, rs := range rss.Items {
		fmt.Fprintf(w, "%s\t%d\t%d\n", rs.Name, *rs.Spec.Replicas, rs.Status.ReadyReplicas)
	}
	svcs, err := kc.Client.CoreV1().Services(k8sNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "\nSERVICE\tSELECTOR GROUP\tPORT\tROUTES")
	for _, s := range svcs.Items {
		fmt.Fprintf(w, "%s\t%s\t%d→%s\t%s\n", s.Name, s.Spec.Selector[k8sdriver.LabelGroup], s.Spec.Ports[0].Port, s.Spec.Ports[0].TargetPort.String(), s.Annotations[k8sdriver.AnnotRoutes])
	}
	sls, err := kc.Client.DiscoveryV1().EndpointSlices(k8sNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "\nENDPOINTSLICE\tENDPOINT\tPOD\tREADY")
	for _, sl := range sls.Items {
		for _, ep := range sl.Endpoints {
			ready := ep.Conditions.Ready != nil && *ep.Conditions.Ready
			pod := ""
			if ep.TargetRef != nil {
				pod = ep.TargetRef.Name
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", sl.Name, strings.Join(ep.Addresses, ","), pod, ready)
		}
	}
	w.Flush()
	return b.String()
}

// TestKubernetesBuildPinsDigest: a kubernetes service with a build block
// is built on the local engine by runway deploy, pushed to the
// environment's registry and pinned by digest; the Deployment runs that
// digest, and a rollback runs v1's digest again.
func TestKubernetesBuildPinsDigest(t *testing.T) {
	pe := podmantest.Shared(t, podmantest.Options{Registry: true})
	t.Setenv("DOCKER_HOST", pe.Host) // the CLI's local engine
	c, kc := kubeCluster(t)
	c.writeKubeManifest("blue_green", "", 1, "1s")
	dir, app := c.helloApp()
	registry := pe.Registry + "/e2e"
	for file, edit := range map[string][2]string{
		"runway.hcl":             {`registry = "registry.e2e.test/acme"`, fmt.Sprintf("registry = %q", registry)},
		service + ".service.hcl": {`image   = "registry.e2e.test/acme/hello:{{VERSION}}"`, "build {\n    context = \"app\"\n  }"},
	} {
		p := filepath.Join(dir, file)
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), edit[0]) {
			t.Fatalf("%s: %v, or no %s in it", file, err, edit[0])
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(b), edit[0], edit[1], 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.applyProject()
	repo := registry + "/" + service
	deployed := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		deps, err := kc.Client.AppsV1().Deployments(k8sNamespace).List(ctx, metav1.ListOptions{LabelSelector: k8sdriver.LabelService + "=" + service})
		if err != nil || len(deps.Items) != 1 {
			t.Fatalf("deployments: %d (%v), want 1", len(deps.Items), err)
		}
		return deps.Items[0].Spec.Template.Spec.Containers[0].Image
	}
	pinned := map[string]string{}
	for _, v := range []string{"1", "2"} {
		df := fmt.Sprintf("FROM scratch\nCOPY hello /hello\nLABEL version=%s\nENV HOST=0.0.0.0\nEXPOSE 8080\nCMD [\"/hello\"]\n", v)
		if err := os.WriteFile(filepath.Join(app, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := c.cli("deploy", service, "--env", env, "--file", dir, "--version", v, "--yes", "--wait")
		if err != nil {
			t.Fatalf("runway deploy %s: %v\n%s", v, err, out)
		}
		if !strings.Contains(out, "pushed "+repo+":"+v+" as "+repo+"@sha256:") {
			t.Fatalf("runway deploy %s did not push to %s:\n%s", v, repo, out)
		}
		onlyGroup(t, kc, 1)
		pinned[v] = deployed()
		if !strings.HasPrefix(pinned[v], repo+"@sha256:") {
			t.Fatalf("v%s's Deployment runs %q, want %s pinned by digest", v, pinned[v], repo)
		}
	}
	if pinned["1"] == pinned["2"] {
		t.Fatalf("v1 and v2 pinned the same digest %s", pinned["1"])
	}
	if out, err := c.cli("rollback", service, "--env", env, "--yes", "--wait"); err != nil {
		t.Fatalf("runway rollback: %v\n%s", err, out)
	}
	onlyGroup(t, kc, 1)
	if got := deployed(); got != pinned["1"] {
		t.Fatalf("after the rollback the Deployment runs %s, want v1's digest %s", got, pinned["1"])
	}
}
