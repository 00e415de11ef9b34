package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/k8stest"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// One control plane for the package's tests (started by the first test
// that needs it); each test works in namespaces of its own.
var (
	clusterOnce sync.Once
	shared      *k8stest.Cluster
	sharedErr   error
	nsSeq       atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

func cluster(t *testing.T) *k8stest.Cluster {
	t.Helper()
	k8stest.SkipMissing(t)
	clusterOnce.Do(func() { shared, sharedErr = k8stest.StartCluster("") })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// env is a namespace of a project's environment with Runway's Role bound
// to the server's service account (runway kubernetes rbac, applied by the
// admin), and a client that is that service account: every call of the
// driver under test is made with the minimal rights it documents.
type env struct {
	c     *k8stest.Cluster
	admin kubernetes.Interface
	sa    kubernetes.Interface
	ref   target.ServiceRef
	ns    string
}

func newEnv(t *testing.T) *env {
	c := cluster(t)
	ctx := ctxT(t)
	n := nsSeq.Add(1)
	ref := target.ServiceRef{Project: "acme", Environment: fmt.Sprintf("t%d", n), Service: "web"}
	e := &env{c: c, admin: c.Client, ref: ref, ns: "acme-" + ref.Environment}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), e.ns, metav1.DeleteOptions{})
	})
	if err := ApplyRBAC(ctx, c.Client, RBACOptions{Namespace: e.ns}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:runway:runway",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:runway", "system:authenticated"}}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.sa = sa
	return e
}

func (e *env) driver(t *testing.T, traffic string) *Driver {
	t.Helper()
	d, err := New(Options{Client: e.sa, Traffic: traffic, Poll: 20 * time.Millisecond,
		Secrets: func(_ context.Context, release string) (map[string]string, error) {
			return map[string]string{"DB_URL": "postgres://user:s3cret@db/" + strings.ToLower(release)}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ms(n int) config.Duration { return config.Duration{Duration: time.Duration(n) * time.Millisecond} }

func spec(ref target.ServiceRef) *config.Service {
	s := &config.Service{Name: ref.Service, Project: ref.Project, Environment: ref.Environment, Version: "1.4.2",
		Image: "registry.acme.test/acme/web:{{VERSION}}", Port: 8080,
		Env:       map[string]string{"GREETING": "hello from {{SERVICE_NAME}}"},
		Health:    config.Health{Kind: "http", Path: "/healthz", Interval: ms(1000), Timeout: ms(500), HealthyThreshold: 1, UnhealthyThreshold: 3},
		Resources: config.Resources{CPU: 0.25, MemoryMB: 128},
	}
	s.Hooks.StopTimeout = ms(2000)
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func release(n int) string { return fmt.Sprintf("01JK8S0000000000000000%04d", n) }

func groupName(ref target.ServiceRef, n int) string {
	return strategy.GroupName(ref.Service, release(n), GroupNameMax)
}

func healthy(t *testing.T, d *Driver, ref target.ServiceRef, group string, n int) {
	t.Helper()
	k8stest.Eventually(t, fmt.Sprintf("group %s: %d healthy", group, n), func() (bool, error) {
		st, err := d.ObserveGroup(context.Background(), ref, group)
		return st.Exists && st.Desired == n && st.Healthy == n && st.Starting == 0, err
	})
}

// TestGroupLifecycle: a group is a Deployment with the manifest's image,
// labels, probe, limits, grace period and preStop sleep; its pods (kwok)
// become ready; every call made again by a restarted driver changes
// nothing; scaling, listing and deleting act on the real objects.
func TestGroupLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	d := e.driver(t, config.TrafficService)
	ref, s := e.ref, spec(e.ref)
	s.Secrets = []string{"DB_URL"}
	g := groupName(ref, 1)
	gs := target.GroupSpec{Ref: ref, Group: g, Release: release(1), Spec: s, Count: 2}
	if err := d.EnsureGroup(ctx, gs); err != nil {
		t.Fatal(err)
	}
	healthy(t, d, ref, g, 2)
	dep, err := e.admin.AppsV1().Deployments(e.ns).Get(ctx, g, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := map[string]string{LabelManaged: ManagedBy, LabelProject: "acme", LabelEnvironment: ref.Environment,
		LabelService: "web", LabelRelease: release(1), LabelGroup: g}
	if !reflect.DeepEqual(dep.Labels, wantLabels) || !reflect.DeepEqual(dep.Spec.Template.Labels, wantLabels) {
		t.Errorf("labels %v, template %v; want %v", dep.Labels, dep.Spec.Template.Labels, wantLabels)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != "registry.acme.test/acme/web:1.4.2" {
		t.Errorf("image %q", c.Image)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != intstr.FromInt32(8080) || p.PeriodSeconds != 1 {
		t.Errorf("readiness probe %+v", c.ReadinessProbe)
	}
	if got := c.Resources.Limits.Cpu().MilliValue(); got != 250 {
		t.Errorf("cpu limit %dm, want 250m", got)
	}
	if got := c.Resources.Limits.Memory().Value(); got != 128<<20 {
		t.Errorf("memory limit %d", got)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds != 2+3 {
		t.Errorf("grace period %v, want stop_timeout 2s + preStop 3s", pod.TerminationGracePeriodSeconds)
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 3 {
		t.Errorf("preStop %+v", c.Lifecycle)
	}
	envs := map[string]string{}
	for _, v := range c.Env {
		envs[v.Name] = v.Value
	}
	if envs["GREETING"] != "hello from web" || envs["PORT"] != "8080" || envs["RUNWAY_RELEASE"] != release(1) {
		t.Errorf("env %v", envs)
	}
	// The pinned secrets: one immutable Secret of the release, as env.
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil {
		t.Fatalf("envFrom %+v", c.EnvFrom)
	}
	sec, err := e.admin.CoreV1().Secrets(e.ns).Get(ctx, c.EnvFrom[0].SecretRef.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["DB_URL"]) == "" || sec.Immutable == nil || !*sec.Immutable || sec.Labels[LabelRelease] != release(1) {
		t.Errorf("secret %s: immutable %v labels %v keys %d", sec.Name, sec.Immutable, sec.Labels, len(sec.Data))
	}
	if len(sec.OwnerReferences) != 1 || sec.OwnerReferences[0].UID != dep.UID {
		t.Errorf("secret %s owners %+v: want the Deployment %s", sec.Name, sec.OwnerReferences, dep.UID)
	}
	secretName := sec.Name
	k8stest.Eventually(t, "one ReplicaSet of 2 ready pods", func() (bool, error) {
		rs, err := e.admin.AppsV1().ReplicaSets(e.ns).List(ctx, metav1.ListOptions{LabelSelector: LabelGroup + "=" + g})
		if err != nil {
			return false, err
		}
		return len(rs.Items) == 1 && rs.Items[0].Status.ReadyReplicas == 2, fmt.Errorf("%d ReplicaSets", len(rs.Items))
	})

	// A restarted server makes the same calls: nothing changes.
	gen := dep.Generation
	d2 := e.driver(t, config.TrafficService)
	if err := d2.EnsureGroup(ctx, gs); err != nil {
		t.Fatal(err)
	}
	if dep, _ := e.admin.AppsV1().Deployments(e.ns).Get(ctx, g, metav1.GetOptions{}); dep.Generation != gen {
		t.Errorf("EnsureGroup again changed the Deployment (generation %d → %d)", gen, dep.Generation)
	}
	for _, dd := range []*Driver{d, d2} {
		if err := dd.ScaleGroup(ctx, ref, g, 1, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	healthy(t, d2, ref, g, 1)
	groups, err := d2.ListGroups(ctx, ref)
	if err != nil || len(groups) != 1 || groups[0].Name != g || groups[0].Release != release(1) {
		t.Errorf("ListGroups %+v, %v", groups, err)
	}
	ins, err := d2.Instances(ctx, ref, g)
	if err != nil || len(ins) == 0 || !strings.HasPrefix(ins[0].ID, g+"-") {
		t.Errorf("Instances %+v, %v", ins, err)
	}

	// The group-name budget: GroupNameMax is accepted, one more refused.
	long := strategy.GroupName("payments-gateway-eu-west", release(2), GroupNameMax)
	if len(long) > GroupNameMax {
		t.Fatalf("GroupName gave %d characters", len(long))
	}
	lref := target.ServiceRef{Project: ref.Project, Environment: ref.Environment, Service: "payments-gateway-eu-west"}
	if err := d.EnsureGroup(ctx, target.GroupSpec{Ref: lref, Group: long, Release: release(2), Spec: spec(lref), Count: 1}); err != nil {
		t.Errorf("group name of %d characters: %v", len(long), err)
	}
	if err := d.EnsureGroup(ctx, target.GroupSpec{Ref: lref, Group: strings.Repeat("g", GroupNameMax+1), Release: release(3), Spec: spec(lref)}); err == nil {
		t.Error("a group name over the budget was accepted")
	}
	k8stest.Eventually(t, "the long-named group's pod", func() (bool, error) {
		ins, err := d.Instances(ctx, lref, long)
		return len(ins) == 1 && len(ins[0].ID) <= 63, err
	})

	for _, dd := range []*Driver{d, d2} {
		if err := dd.DeleteGroup(ctx, ref, g, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := d.ObserveGroup(ctx, ref, g); err != nil || st.Exists {
		t.Errorf("after DeleteGroup: %+v, %v", st, err)
	}
	if err := d.ScaleGroup(ctx, ref, g, 0, 0); err != nil {
		t.Errorf("ScaleGroup of a missing group to 0: %v", err)
	}
	if err := d.ScaleGroup(ctx, ref, g, 1, 0); err == nil {
		t.Error("ScaleGroup of a missing group to 1 succeeded")
	}
	k8stest.Eventually(t, "the deleted group's pods gone", func() (bool, error) {
		pods, err := e.admin.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: LabelGroup + "=" + g})
		return err == nil && len(pods.Items) == 0, err
	})
	// Its release's Secret goes with its last owner (the garbage collector).
	k8stest.Eventually(t, "the release's Secret gone with its group", func() (bool, error) {
		_, err := e.admin.CoreV1().Secrets(e.ns).Get(ctx, secretName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})

	// Nothing cluster-wide: the service account reads no nodes.
	if _, err := e.sa.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the server's service account lists nodes: %v", err)
	}
}

func podsOf(ctx context.Context, e *env, groups ...string) ([]string, error) {
	var out []string
	for _, g := range groups {
		pods, err := e.admin.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: LabelGroup + "=" + g})
		if err != nil {
			return nil, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil {
				out = append(out, p.Name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func endpointsAre(t *testing.T, e *env, groups ...string) {
	t.Helper()
	ctx := ctxT(t)
	var got, want []string
	k8stest.Eventually(t, fmt.Sprintf("the Service's endpoints are the pods of %v", groups), func() (bool, error) {
		var err error
		if got, err = k8stest.ReadyEndpoints(ctx, e.admin, e.ns, ServiceName(e.ref)); err != nil {
			return false, err
		}
		if want, err = podsOf(ctx, e, groups...); err != nil {
			return false, err
		}
		return len(want) > 0 && reflect.DeepEqual(got, want), fmt.Errorf("endpoints %v, pods %v", got, want)
	})
}

// TestServiceTraffic: traffic "service" — blue/green switches the
// Service's selector and the EndpointSlices follow; a canary is the ratio
// of instance counts, accepted when it gives the weights exactly, refused
// otherwise; no preview, no statistics.
func TestServiceTraffic(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	d := e.driver(t, config.TrafficService)
	ref := e.ref
	blue, green := groupName(ref, 1), groupName(ref, 2)
	for _, g := range []struct {
		name, rel string
		n         int
	}{{blue, release(1), 4}, {green, release(2), 1}} {
		if err := d.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: g.name, Release: g.rel, Spec: spec(ref), Count: g.n}); err != nil {
			t.Fatal(err)
		}
		healthy(t, d, ref, g.name, g.n)
	}
	if err := d.SetRoutes(ctx, ref, []strategy.Route{{Group: blue, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	endpointsAre(t, e, blue)
	svc, err := e.admin.CoreV1().Services(e.ns).Get(ctx, ServiceName(ref), metav1.GetOptions{})
	if err != nil || svc.Spec.Selector[LabelGroup] != blue || svc.Spec.Ports[0].TargetPort != intstr.FromInt32(8080) {
		t.Fatalf("Service %+v, %v", svc, err)
	}

	// Canary: 1 green beside 4 blue is 20%, exactly.
	canary := []strategy.Route{{Group: green, Weight: 1}, {Group: blue, Weight: 4}}
	if err := d.SetRoutes(ctx, ref, canary); err != nil {
		t.Fatalf("a canary the replica ratio gives: %v", err)
	}
	endpointsAre(t, e, blue, green)
	if got, err := e.driver(t, config.TrafficService).Routes(ctx, ref); err != nil || !reflect.DeepEqual(got, canary) {
		t.Errorf("Routes after a restart = %v, %v; want %v", got, err, canary)
	}
	// 10% is not 1 of 5: refused, and the Service is left as it was.
	err = d.SetRoutes(ctx, ref, []strategy.Route{{Group: green, Weight: 10}, {Group: blue, Weight: 90}})
	if !errors.Is(err, target.ErrUnsupported) || !strings.Contains(err.Error(), `traffic "runway"`) {
		t.Errorf("a weight the ratio cannot give: %v", err)
	}
	if got, _ := d.Routes(ctx, ref); !reflect.DeepEqual(got, canary) {
		t.Errorf("a refused SetRoutes changed the routes: %v", got)
	}
	if err := d.SetRoutes(ctx, ref, []strategy.Route{{Group: green, Weight: 1}, {Group: blue, Weight: 1}, {Group: groupName(ref, 3), Weight: 1}}); err == nil {
		t.Error("three weighted groups accepted: the declared maximum is 2")
	}

	// Blue/green switch: the selector moves, every endpoint follows.
	if err := d.SetRoutes(ctx, ref, []strategy.Route{{Group: green, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	endpointsAre(t, e, green)

	if err := d.SetPreview(ctx, ref, green); !errors.Is(err, target.ErrUnsupported) {
		t.Errorf("SetPreview: %v, want ErrUnsupported", err)
	}
	if err := d.SetPreview(ctx, ref, ""); err != nil {
		t.Errorf("SetPreview(\"\"): %v", err)
	}
	if _, err := d.WindowStats(ctx, ref, green, time.Minute); !errors.Is(err, target.ErrUnsupported) {
		t.Errorf("WindowStats: %v, want ErrUnsupported", err)
	}
	if c := d.Capabilities(); !c.ReplicaRatio || c.Preview || c.Check() != nil || !c.Validation().ReplicaRatio {
		t.Errorf("capabilities %+v (check %v)", c, c.Check())
	}

	// Deleting the routed group takes it out of the routes first.
	if err := d.DeleteGroup(ctx, ref, green, time.Second); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Routes(ctx, ref); len(got) != 0 {
		t.Errorf("routes after deleting their group: %v", got)
	}
	k8stest.Eventually(t, "no endpoints", func() (bool, error) {
		got, err := k8stest.ReadyEndpoints(ctx, e.admin, e.ns, ServiceName(e.ref))
		return err == nil && len(got) == 0, err
	})
}

// TestTaskReattach: a task is a Job named from its id; a restarted driver
// starting it again finds it and observes its end (the exit code of its
// pod, kept on the Job); a stopped running task is deleted and runs again.
func TestTaskReattach(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	ref := e.ref
	var mu sync.Mutex
	starts := map[string]map[string]bool{}
	w, err := e.admin.CoreV1().Pods(e.ns).Watch(ctx, metav1.ListOptions{LabelSelector: LabelTask})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added {
				mu.Lock()
				job := p.Labels[LabelTask]
				if starts[job] == nil {
					starts[job] = map[string]bool{}
				}
				starts[job][string(p.UID)] = true
				mu.Unlock()
			}
		}
	}()
	runs := func(id string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(starts[JobName(id)])
	}
	task := func(id string, d time.Duration, code int) target.Task {
		return target.Task{ID: id, Name: "pre_deploy", Ref: ref, Release: release(1), Spec: spec(ref),
			Command: []string{"/hello", "task", d.String(), fmt.Sprint(code)}}
	}
	d := e.driver(t, config.TrafficService)
	tk := task(release(1)+"/pre_deploy", 1500*time.Millisecond, 3)
	if err := d.StartTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if st, err := d.ObserveTask(ctx, ref, tk.ID); err != nil || st.Done {
		t.Fatalf("a task of 1.5 s observed at once: %+v, %v", st, err)
	}
	next := e.driver(t, config.TrafficService)
	if err := next.StartTask(ctx, tk); err != nil {
		t.Fatal(err)
	}
	var res target.TaskResult
	k8stest.Eventually(t, "the re-attached task done", func() (bool, error) {
		st, err := next.ObserveTask(ctx, ref, tk.ID)
		res = st.Result
		return st.Done, err
	})
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", res.ExitCode)
	}
	if n := runs(tk.ID); n != 1 {
		t.Errorf("the task ran %d times across a crash, want once", n)
	}
	job, err := e.admin.BatchV1().Jobs(e.ns).Get(ctx, JobName(tk.ID), metav1.GetOptions{})
	if err != nil || job.Annotations[AnnotTaskID] != tk.ID || *job.Spec.BackoffLimit != 0 {
		t.Errorf("Job %+v, %v", job, err)
	}
	if err := next.StopTask(ctx, ref, tk.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := e.driver(t, config.TrafficService).ObserveTask(ctx, ref, tk.ID); err != nil || !st.Done || st.Result.ExitCode != 3 {
		t.Errorf("a finished task after StopTask: %+v, %v", st, err)
	}

	long := task(release(1)+"/verify", time.Hour, 0)
	if err := next.StartTask(ctx, long); err != nil {
		t.Fatal(err)
	}
	k8stest.Eventually(t, "the long task's pod running", func() (bool, error) {
		pods, err := e.admin.CoreV1().Pods(e.ns).List(ctx, metav1.ListOptions{LabelSelector: LabelTask + "=" + JobName(long.ID)})
		if err != nil {
			return false, err
		}
		var phases []string
		for _, p := range pods.Items {
			phases = append(phases, fmt.Sprintf("%s %s %v", p.Name, p.Status.Phase, p.Status.ContainerStatuses))
		}
		return len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning, fmt.Errorf("pods %v", phases)
	})
	if err := next.StopTask(ctx, ref, long.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := next.ObserveTask(ctx, ref, long.ID); !errors.Is(err, target.ErrTaskNotStarted) {
		t.Errorf("ObserveTask of a stopped task: %v, want ErrTaskNotStarted", err)
	}
	if err := next.StartTask(ctx, long); err != nil {
		t.Fatal(err)
	}
	k8stest.Eventually(t, "the stopped task started again", func() (bool, error) { return runs(long.ID) == 2, nil })
	if err := next.StopTask(ctx, ref, long.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := next.ObserveTask(ctx, ref, "never-started"); !errors.Is(err, target.ErrTaskNotStarted) {
		t.Errorf("ObserveTask of an unknown id: %v", err)
	}
}

// TestRunwayTrafficObjects: traffic "runway" — routes and the preview
// group are pushed into the namespace's route table; the proxy's
// Deployment and Service run (on kwok: pods ready, an EndpointSlice).
func TestRunwayTrafficObjects(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	d := e.driver(t, config.TrafficRunway)
	ref := e.ref
	g1, g2 := groupName(ref, 1), groupName(ref, 2)
	routes := []strategy.Route{{Group: g1, Weight: 9}, {Group: g2, Weight: 1}}
	if err := d.SetRoutes(ctx, ref, routes); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPreview(ctx, ref, g2); err != nil {
		t.Fatal(err)
	}
	next := e.driver(t, config.TrafficRunway)
	if got, err := next.Routes(ctx, ref); err != nil || !reflect.DeepEqual(got, routes) {
		t.Errorf("Routes = %v, %v", got, err)
	}
	cm, err := e.admin.CoreV1().ConfigMaps(e.ns).Get(ctx, RouteTable, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"project":"acme","environment":"` + ref.Environment + `","service":"web","routes":[{"group":"` + g1 + `","weight":9},{"group":"` + g2 + `","weight":1}],"preview":"` + g2 + `"}`
	if cm.Data["web"] != want {
		t.Errorf("route table entry\n got %s\nwant %s", cm.Data["web"], want)
	}
	if err := next.SetRoutes(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if err := next.SetPreview(ctx, ref, ""); err != nil {
		t.Fatal(err)
	}
	if cm, _ := e.admin.CoreV1().ConfigMaps(e.ns).Get(ctx, RouteTable, metav1.GetOptions{}); len(cm.Data) != 0 {
		t.Errorf("route table after removing the routes: %v", cm.Data)
	}
	// A driver given Runway's image creates the proxy with the first
	// routes it pushes into the namespace.
	withProxy, err := New(Options{Client: e.sa, Traffic: config.TrafficRunway, ProxyImage: "registry.acme.test/runway:1",
		Domain: func(target.ServiceRef) string { return "acme.test" }})
	if err != nil {
		t.Fatal(err)
	}
	if err := withProxy.SetRoutes(ctx, ref, routes); err != nil {
		t.Fatal(err)
	}
	dep, err := e.admin.AppsV1().Deployments(e.ns).Get(ctx, ProxyName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the proxy's Deployment: %v", err)
	}
	if c := dep.Spec.Template.Spec.Containers[0]; c.Image != "registry.acme.test/runway:1" ||
		!reflect.DeepEqual(c.Args, []string{"proxy", "--kubernetes", "--namespace", e.ns, "--domain", "acme.test", "--http", ":8080", "--admin", ":9090"}) {
		t.Errorf("proxy container %s %v", c.Image, c.Args)
	}
	if svc, err := e.admin.CoreV1().Services(e.ns).Get(ctx, ProxyName, metav1.GetOptions{}); err != nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("the proxy's Service: %+v, %v", svc, err)
	}
	k8stest.Eventually(t, "the proxy's pods ready behind its Service", func() (bool, error) {
		pods, err := k8stest.ReadyEndpoints(ctx, e.admin, e.ns, ProxyName)
		return len(pods) == 2, err
	})
	if c := d.Capabilities(); c.ReplicaRatio || !c.Preview || c.Check() != nil || c.NoStats ||
		c.StatsWindowMin != StatsWindowMin || c.StatsWindowMax != StatsWindowMax {
		t.Errorf("capabilities %+v", c)
	}
	// No replica published yet: no traffic, no error (the proxy's Leases
	// are read with the server's Role).
	if ws, err := d.WindowStats(ctx, ref, g1, time.Minute); err != nil || ws.Requests != 0 {
		t.Errorf("WindowStats before any replica published: %+v, %v", ws, err)
	}
	if c, err := d.Counters(ctx, ref); err != nil || c.Served != 0 {
		t.Errorf("Counters before any replica published: %+v, %v", c, err)
	}
}

// TestLogs: a group's logs through the pods' log API (the API server asks
// the node's kubelet API, kwok's): read with the pod as instance, followed
// (a new line arrives; a pod the group gains is followed from its first
// line), filtered by instance; an instance of no group gives nothing.
func TestLogs(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	d := e.driver(t, config.TrafficService)
	ref := e.ref
	g := groupName(ref, 1)
	if err := e.c.WriteLog("booting " + ref.Environment); err != nil {
		t.Fatal(err)
	}
	if err := d.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: g, Release: release(1), Spec: spec(ref), Count: 1}); err != nil {
		t.Fatal(err)
	}
	healthy(t, d, ref, g, 1)
	ins, err := d.Instances(ctx, ref, g)
	if err != nil || len(ins) != 1 {
		t.Fatalf("instances %v, %v", ins, err)
	}
	first := ins[0].ID
	var got []target.LogLine
	k8stest.Eventually(t, "the pod's boot line", func() (bool, error) {
		got = nil
		err := d.Logs(ctx, ref, target.LogQuery{Group: g, Filter: ref.Environment}, func(l target.LogLine) error { got = append(got, l); return nil })
		return len(got) == 1, err
	})
	if got[0].Instance != first || got[0].Text != "booting "+ref.Environment || got[0].Time.IsZero() {
		t.Errorf("line %+v", got[0])
	}

	fctx, stop := context.WithCancel(ctx)
	defer stop()
	lines := make(chan target.LogLine, 1000)
	done := make(chan error, 1)
	go func() {
		done <- d.Logs(fctx, ref, target.LogQuery{Group: g, Follow: true, Filter: ref.Environment}, func(l target.LogLine) error {
			lines <- l
			return nil
		})
	}()
	wantLine := func(what string, ok func(target.LogLine) bool) target.LogLine {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case l := <-lines:
				if ok(l) {
					return l
				}
			case err := <-done:
				t.Fatalf("following ended waiting for %s: %v", what, err)
			case <-deadline:
				t.Fatalf("%s: no such line", what)
			}
		}
	}
	wantLine("the existing line", func(l target.LogLine) bool { return l.Text == "booting "+ref.Environment })
	if err := e.c.WriteLog("request served " + ref.Environment); err != nil {
		t.Fatal(err)
	}
	wantLine("a line written while following", func(l target.LogLine) bool {
		return l.Instance == first && l.Text == "request served "+ref.Environment
	})
	if err := d.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: g, Release: release(1), Spec: spec(ref), Count: 2}); err != nil {
		t.Fatal(err)
	}
	gained := wantLine("the gained pod's first line", func(l target.LogLine) bool {
		return l.Instance != first && l.Text == "booting "+ref.Environment
	}).Instance
	stop()
	if err := <-done; err != nil {
		t.Errorf("following ended with %v, want nil", err)
	}
	n := 0
	if err := d.Logs(ctx, ref, target.LogQuery{Group: g, Instance: gained}, func(l target.LogLine) error {
		n++
		if l.Instance != gained {
			t.Errorf("instance %s's logs hold a line of %s", gained, l.Instance)
		}
		return nil
	}); err != nil || n == 0 {
		t.Errorf("logs of %s: %d lines, %v", gained, n, err)
	}
	n = 0
	if err := d.Logs(ctx, ref, target.LogQuery{Group: g, Instance: "0000dead"}, func(target.LogLine) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("an instance of no group: %d lines, %v", n, err)
	}
	if r, err := d.CrashReport(ctx, ref, g); err != nil || r.Instance != "" {
		t.Errorf("CrashReport of a group without restarts: %+v, %v", r, err)
	}
}

// TestCrashLoopCounted: a pod whose container crash-loops (the kubelet's
// report of it: restarts, CrashLoopBackOff, the last exit code) is
// unhealthy, its restarts count as terminations, and the crash report
// names it with how it ended.
func TestCrashLoopCounted(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	d := e.driver(t, config.TrafficService)
	ref := e.ref
	g := groupName(ref, 1)
	if err := d.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: g, Release: release(1), Spec: spec(ref), Count: 2}); err != nil {
		t.Fatal(err)
	}
	healthy(t, d, ref, g, 2)
	ins, err := d.Instances(ctx, ref, g)
	if err != nil || len(ins) != 2 {
		t.Fatalf("instances %v, %v", ins, err)
	}
	bad := ins[0].ID
	pod, err := e.admin.CoreV1().Pods(e.ns).Get(ctx, bad, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Labels["crash-loop.k8stest.runway.dev"] = "true"
	if _, err := e.admin.CoreV1().Pods(e.ns).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var st target.GroupStatus
	k8stest.Eventually(t, "the crash loop observed", func() (bool, error) {
		st, err = d.ObserveGroup(ctx, ref, g)
		return st.Unhealthy == 1 && st.Healthy == 1 && st.Terminated == 3, fmt.Errorf("%+v %v", st, err)
	})
	ins, err = d.Instances(ctx, ref, g)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if in.ID == bad && (!in.CrashLoop || in.Restarts != 3 || in.LastExit != "exit status 1" || in.State != "unhealthy") {
			t.Errorf("crash-looping instance %+v", in)
		}
	}
	r, err := d.CrashReport(ctx, ref, g)
	if err != nil || r.Instance != bad || r.Exit != "exit status 1" {
		t.Errorf("CrashReport %+v, %v; want %s, exit status 1", r, err, bad)
	}
}

// TestValidate: the release's image names a registry and its namespace
// exists (when the server may read namespaces; the Role may not).
func TestValidate(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	admin, err := New(Options{Client: e.admin, Traffic: config.TrafficService})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Validate(ctx, e.ref, spec(e.ref)); err != nil {
		t.Errorf("a valid release: %v", err)
	}
	s := spec(e.ref)
	s.Image = "web:{{VERSION}}"
	missing := target.ServiceRef{Project: "acme", Environment: "nowhere", Service: "web"}
	err = admin.Validate(ctx, missing, s)
	if err == nil || !strings.Contains(err.Error(), "image web:1.4.2 names no registry") || !strings.Contains(err.Error(), "namespace acme-nowhere does not exist") ||
		!strings.Contains(err.Error(), "runway kubernetes rbac --namespace acme-nowhere") {
		t.Errorf("Validate = %v", err)
	}
	// The service account cannot read namespaces: no namespace problem.
	if err := e.driver(t, config.TrafficService).Validate(ctx, missing, spec(missing)); err != nil {
		t.Errorf("Validate as the service account: %v", err)
	}
}
