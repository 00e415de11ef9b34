package kubernetes

import (
	"context"
	"fmt"
	"k8s.io/client-go/kubernetes"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/runenv"
	"github.com/runwayhq/runway/internal/target"
)

// podSpec is the pod of a group or task: the release's image, its command
// when given (the whole argv, replacing the image's entrypoint), env with
// the RUNWAY_* metadata, the pinned secrets from the release's Secret,
// limits, the readiness probe from health, a preStop sleep and the grace
// period from stop_timeout.
func podSpec(ref target.ServiceRef, group, release string, spec *config.Service, secret string, task bool) corev1.PodSpec {
	p := runenv.Process{Project: spec.Project, Service: ref.Service, Environment: ref.Environment, Release: release,
		Version: spec.Version}
	if !task {
		p.Port = strconv.Itoa(spec.Port)
	}
	var env []corev1.EnvVar
	for _, kv := range runenv.ContainerEnviron(p, spec.Env, nil, "RUNWAY_GROUP="+group) {
		k, v, _ := strings.Cut(kv, "=")
		if k == "RUNWAY_INSTANCE_ID" || k == "RUNWAY_INSTANCE" {
			continue
		}
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	env = append(env, corev1.EnvVar{Name: "RUNWAY_INSTANCE_ID", ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}})
	c := corev1.Container{Name: ContainerName, Image: Image(spec), Env: env,
		ImagePullPolicy: corev1.PullIfNotPresent}
	if len(spec.Command) > 0 {
		c.Command = runenv.ExpandAll(spec.Command, p.Values())
	}
	if secret != "" {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}
	}
	if lim := limits(spec.Resources); len(lim) > 0 {
		c.Resources = corev1.ResourceRequirements{Limits: lim, Requests: lim}
	}
	grace := int64(math.Ceil(spec.Hooks.StopTimeout.Seconds()))
	if !task {
		c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: int32(spec.Port), Protocol: corev1.ProtocolTCP}}
		c.ReadinessProbe = probe(spec, p)
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Sleep: &corev1.SleepAction{Seconds: int64(PreStopSleep / time.Second)}}}
		grace += int64(PreStopSleep / time.Second)
	}
	ps := corev1.PodSpec{Containers: []corev1.Container{c}, TerminationGracePeriodSeconds: &grace,
		EnableServiceLinks: new(false)}
	return ps
}

func limits(r config.Resources) corev1.ResourceList {
	l := corev1.ResourceList{}
	if r.CPU > 0 {
		l[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Round(r.CPU*1000)), resource.DecimalSI)
	}
	if r.MemoryMB > 0 {
		l[corev1.ResourceMemory] = *resource.NewQuantity(int64(r.MemoryMB)<<20, resource.BinarySI)
	}
	return l
}

func seconds(d config.Duration, min int32) int32 {
	return max(min, int32(math.Ceil(d.Seconds())))
}

// probe is the readiness probe of the manifest's health check.
func probe(spec *config.Service, p runenv.Process) *corev1.Probe {
	h := spec.Health
	pr := &corev1.Probe{PeriodSeconds: seconds(h.Interval, 1), TimeoutSeconds: seconds(h.Timeout, 1),
		SuccessThreshold: int32(max(1, h.HealthyThreshold)), FailureThreshold: int32(max(1, h.UnhealthyThreshold))}
	switch h.Kind {
	case "tcp":
		pr.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(spec.Port))}
	case "exec":
		pr.Exec = &corev1.ExecAction{Command: runenv.ExpandAll(h.Command, p.Values())}
	default:
		path := h.Path
		if path == "" {
			path = "/"
		}
		pr.HTTPGet = &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(int32(spec.Port))}
	}
	return pr
}

func groupLabels(ref target.ServiceRef, group, release string) map[string]string {
	l := serviceLabels(ref)
	l[LabelGroup] = group
	l[LabelRelease] = labelValue(release)
	return l
}

// deployment is the Deployment of a group.
func deployment(ref target.ServiceRef, ns string, g target.GroupSpec, secret string) *appsv1.Deployment {
	labels := groupLabels(ref, g.Group, g.Release)
	n := int32(g.Count)
	sel := map[string]string{LabelProject: labels[LabelProject], LabelEnvironment: labels[LabelEnvironment],
		LabelService: labels[LabelService], LabelGroup: g.Group}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: g.Group, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			// A group's pods are all of one release: the template never
			// changes, the engine only scales it.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       podSpec(ref, g.Group, g.Release, g.Spec, secret, false),
			},
		},
	}
}

// ensureSecret writes the release's pinned secrets as its Secret (once:
// a release's secrets never change) and returns its name, "" when the
// release has none.
func (d *Driver) ensureSecret(ctx context.Context, ref target.ServiceRef, release string, spec *config.Service) (string, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return "", cerr
	}
	if spec == nil || len(spec.SecretVars()) == 0 || d.opts.Secrets == nil {
		return "", nil
	}
	ns := d.Namespace(ref)
	name := secretName(ref, release)
	if _, err := c.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
		return name, nil
	} else if !isNotFound(err) {
		return "", fmt.Errorf("kubernetes: read the secrets of release %s: %w", release, err)
	}
	values, err := d.opts.Secrets(ctx, release)
	if err != nil {
		return "", fmt.Errorf("kubernetes: secrets of release %s: %w", release, err)
	}
	labels := serviceLabels(ref)
	labels[LabelRelease] = labelValue(release)
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Type: corev1.SecretTypeOpaque, StringData: values, Immutable: new(true)}
	if _, err := c.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		// The error names the Secret, never a value.
		return "", fmt.Errorf("kubernetes: write Secret %s/%s: %s", ns, name, apierrors.ReasonForError(err))
	}
	return name, nil
}

// ownSecret makes owner (a group's Deployment, a task's Job) an owner of
// the release's Secret, so that the cluster deletes the Secret with the
// last object of the release that uses it.
func (d *Driver) ownSecret(ctx context.Context, c kubernetes.Interface, ns, secret string, owner metav1.OwnerReference) error {
	if secret == "" {
		return nil
	}
	secrets := c.CoreV1().Secrets(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := secrets.Get(ctx, secret, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, o := range s.OwnerReferences {
			if o.UID == owner.UID {
				return nil
			}
		}
		s.OwnerReferences = append(s.OwnerReferences, owner)
		_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("kubernetes: Secret %s/%s: own it by %s %s: %s", ns, secret, owner.Kind, owner.Name, apierrors.ReasonForError(err))
	}
	return nil
}

func ownerOf(kind, apiVersion, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid}
}

// EnsureGroup creates the group's Deployment if missing and sets its
// replicas.
func (d *Driver) EnsureGroup(ctx context.Context, g target.GroupSpec) error {
	c, cerr := d.client(g.Ref)
	if cerr != nil {
		return cerr
	}
	if err := checkGroupName(g.Group); err != nil {
		return err
	}
	ns := d.Namespace(g.Ref)
	deps := c.AppsV1().Deployments(ns)
	cur, err := deps.Get(ctx, g.Group, metav1.GetOptions{})
	switch {
	case err == nil:
		return d.setReplicas(ctx, g.Ref, g.Group, g.Count, cur)
	case !isNotFound(err):
		return fmt.Errorf("kubernetes: read Deployment %s/%s: %w", ns, g.Group, err)
	}
	spec := g.Spec
	if spec == nil && d.opts.SpecOf != nil {
		if spec, err = d.opts.SpecOf(ctx, g.Release); err != nil {
			return err
		}
	}
	if spec == nil {
		return fmt.Errorf("kubernetes: group %s: release %s is unknown to this server", g.Group, g.Release)
	}
	g.Spec = spec
	secret, err := d.ensureSecret(ctx, g.Ref, g.Release, spec)
	if err != nil {
		return err
	}
	if err := d.ensureGroupService(ctx, g.Ref, g.Group, g.Release, spec.Port); err != nil {
		return err
	}
	created, err := deps.Create(ctx, deployment(g.Ref, ns, g, secret), metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another call (a server before a crash) created it meanwhile.
		return d.setReplicas(ctx, g.Ref, g.Group, g.Count, nil)
	}
	if err != nil {
		return fmt.Errorf("kubernetes: create Deployment %s/%s: %w", ns, g.Group, err)
	}
	return d.ownSecret(ctx, c, ns, secret, ownerOf("Deployment", "apps/v1", created.Name, created.UID))
}

// setReplicas sets a Deployment's replicas (cur is its last read, nil to
// read it), retrying on conflicts.
func (d *Driver) setReplicas(ctx context.Context, ref target.ServiceRef, group string, count int, cur *appsv1.Deployment) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	ns := d.Namespace(ref)
	deps := c.AppsV1().Deployments(ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if cur == nil {
			var err error
			if cur, err = deps.Get(ctx, group, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		if cur.Spec.Replicas != nil && int(*cur.Spec.Replicas) == count {
			return nil
		}
		n := int32(count)
		cur.Spec.Replicas = &n
		_, err := deps.Update(ctx, cur, metav1.UpdateOptions{})
		cur = nil
		return err
	})
}

// ScaleGroup sets the group's replicas; the pods removed leave the
// Service's endpoints, sleep PreStopSleep and are stopped with their grace
// period (stop_timeout). A missing group scaled to 0 is not an error.
func (d *Driver) ScaleGroup(ctx context.Context, ref target.ServiceRef, group string, count int, drain time.Duration) error {
	err := d.setReplicas(ctx, ref, group, count, nil)
	if isNotFound(err) {
		if count == 0 {
			return nil
		}
		return fmt.Errorf("kubernetes: scale group %s: it does not exist", group)
	}
	if err != nil {
		return fmt.Errorf("kubernetes: scale group %s: %w", group, err)
	}
	return nil
}

// pods returns the group's pods.
func (d *Driver) pods(ctx context.Context, ref target.ServiceRef, group string) ([]corev1.Pod, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return nil, cerr
	}
	l, err := c.CoreV1().Pods(d.Namespace(ref)).List(ctx, metav1.ListOptions{LabelSelector: groupSelector(ref, group)})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list the pods of group %s: %w", group, err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items, nil
}

// podState is an instance state of target.InstanceInfo.
func podState(p *corev1.Pod) string {
	switch {
	case p.DeletionTimestamp != nil:
		return "stopping"
	case p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded:
		return "exited"
	case podReady(p):
		return "healthy"
	case crashLooping(p) || restarts(p) > 0:
		return "unhealthy"
	}
	return "starting"
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func restarts(p *corev1.Pod) int {
	n := 0
	for _, cs := range p.Status.ContainerStatuses {
		n += int(cs.RestartCount)
	}
	return n
}

func crashLooping(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			return true
		}
	}
	return false
}

// ObserveGroup reports the group from its Deployment and pods: healthy
// pods are Ready, starting ones not yet, unhealthy ones not Ready after a
// restart (or crash-looping); Terminated counts the restarts of its pods
// and the pods that failed.
func (d *Driver) ObserveGroup(ctx context.Context, ref target.ServiceRef, group string) (target.GroupStatus, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return target.GroupStatus{}, cerr
	}
	dep, err := c.AppsV1().Deployments(d.Namespace(ref)).Get(ctx, group, metav1.GetOptions{})
	if isNotFound(err) {
		return target.GroupStatus{}, nil
	}
	if err != nil {
		return target.GroupStatus{}, fmt.Errorf("kubernetes: read group %s: %w", group, err)
	}
	pods, err := d.pods(ctx, ref, group)
	if err != nil {
		return target.GroupStatus{}, err
	}
	st := target.GroupStatus{Exists: true}
	if dep.Spec.Replicas != nil {
		st.Desired = int(*dep.Spec.Replicas)
	}
	for i := range pods {
		p := &pods[i]
		st.Terminated += restarts(p)
		switch podState(p) {
		case "healthy":
			st.Healthy++
		case "starting":
			st.Starting++
		case "unhealthy":
			st.Unhealthy++
		case "exited":
			st.Terminated++
		}
	}
	return st, nil
}

// Instances reports the group's pods.
func (d *Driver) Instances(ctx context.Context, ref target.ServiceRef, group string) ([]target.InstanceInfo, error) {
	pods, err := d.pods(ctx, ref, group)
	if err != nil {
		return nil, err
	}
	var out []target.InstanceInfo
	for i := range pods {
		p := &pods[i]
		in := target.InstanceInfo{ID: p.Name, State: podState(p), Restarts: restarts(p), CrashLoop: crashLooping(p)}
		if p.Status.StartTime != nil {
			in.StartedAt = p.Status.StartTime.Time
		}
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.LastTerminationState.Terminated; t != nil {
				in.LastExit = exitText(t)
			}
			if t := cs.State.Terminated; t != nil {
				in.LastExit = exitText(t)
			}
		}
		out = append(out, in)
	}
	return out, nil
}

func exitText(t *corev1.ContainerStateTerminated) string {
	s := fmt.Sprintf("exit status %d", t.ExitCode)
	if t.Reason != "" && t.Reason != "Error" && t.Reason != "Completed" {
		s += " (" + t.Reason + ")"
	}
	return s
}

// DeleteGroup takes the group out of the routes, scales it to 0 and waits
// (at most drain plus its pods' grace period) for its pods to stop, then
// deletes the Deployment. Missing is not an error.
func (d *Driver) DeleteGroup(ctx context.Context, ref target.ServiceRef, group string, drain time.Duration) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	if err := d.unroute(ctx, ref, group); err != nil {
		return err
	}
	ns := d.Namespace(ref)
	dep, err := c.AppsV1().Deployments(ns).Get(ctx, group, metav1.GetOptions{})
	if isNotFound(err) {
		return d.deleteGroupService(ctx, ref, group)
	}
	if err != nil {
		return fmt.Errorf("kubernetes: read group %s: %w", group, err)
	}
	if err := d.setReplicas(ctx, ref, group, 0, dep); err != nil && !isNotFound(err) {
		return fmt.Errorf("kubernetes: scale group %s to 0: %w", group, err)
	}
	grace := time.Duration(0)
	if gp := dep.Spec.Template.Spec.TerminationGracePeriodSeconds; gp != nil {
		grace = time.Duration(*gp) * time.Second
	}
	deadline := time.Now().Add(drain + grace)
	for {
		pods, err := d.pods(ctx, ref, group)
		if err != nil {
			return err
		}
		if len(pods) == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.opts.Poll):
		}
	}
	bg := metav1.DeletePropagationBackground
	err = c.AppsV1().Deployments(ns).Delete(ctx, group, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("kubernetes: delete Deployment %s/%s: %w", ns, group, err)
	}
	return d.deleteGroupService(ctx, ref, group)
}

// ListGroups returns the service's groups (its Deployments), sorted.
func (d *Driver) ListGroups(ctx context.Context, ref target.ServiceRef) ([]target.GroupInfo, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return nil, cerr
	}
	l, err := c.AppsV1().Deployments(d.Namespace(ref)).List(ctx, metav1.ListOptions{LabelSelector: serviceSelector(ref) + "," + LabelGroup})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list the groups of %s: %w", ref, err)
	}
	var out []target.GroupInfo
	for i := range l.Items {
		dep := &l.Items[i]
		if dep.DeletionTimestamp != nil {
			continue
		}
		st, err := d.ObserveGroup(ctx, ref, dep.Name)
		if err != nil {
			return nil, err
		}
		if !st.Exists {
			continue
		}
		out = append(out, target.GroupInfo{Name: dep.Name, Release: dep.Labels[LabelRelease], Status: st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
