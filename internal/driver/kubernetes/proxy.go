package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"k8s.io/client-go/kubernetes"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// Traffic "runway": Runway's proxy runs in the namespace as a Deployment
// and a Service (ProxyObjects). The server pushes each service's routes and
// preview group into the route table, the ConfigMap RouteTable, one key
// per service; the proxy watches it and the groups' EndpointSlices and
// routes to the groups' ready pods with exact weights.

// RouteTable is the ConfigMap of the namespace's routes.
const RouteTable = "runway-routes"

// ProxyName names the proxy's Deployment, Service and ServiceAccount.
const ProxyName = "runway-proxy"

// TableEntry is one service's entry in the route table.
type TableEntry struct {
	Project     string           `json:"project"`
	Environment string           `json:"environment"`
	Service     string           `json:"service"`
	Routes      []strategy.Route `json:"routes,omitempty"`
	Preview     string           `json:"preview,omitempty"`
}

func (d *Driver) tableEntry(ctx context.Context, ref target.ServiceRef) (TableEntry, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return TableEntry{}, cerr
	}
	e := TableEntry{Project: ref.Project, Environment: ref.Environment, Service: ref.Service}
	cm, err := c.CoreV1().ConfigMaps(d.Namespace(ref)).Get(ctx, RouteTable, metav1.GetOptions{})
	if isNotFound(err) {
		return e, nil
	}
	if err != nil {
		return e, fmt.Errorf("kubernetes: read the route table: %w", err)
	}
	if v, ok := cm.Data[ref.Service]; ok {
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			return e, fmt.Errorf("kubernetes: route table entry %s: %w", ref.Service, err)
		}
	}
	return e, nil
}

// updateTable applies change to ref's entry, creating the table if
// missing; an entry without routes and preview is removed.
func (d *Driver) updateTable(ctx context.Context, ref target.ServiceRef, change func(*TableEntry)) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	ns := d.Namespace(ref)
	cms := c.CoreV1().ConfigMaps(ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := cms.Get(ctx, RouteTable, metav1.GetOptions{})
		create := isNotFound(err)
		if err != nil && !create {
			return err
		}
		if create {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: RouteTable, Namespace: ns,
				Labels: map[string]string{LabelManaged: ManagedBy}}}
		}
		e := TableEntry{Project: ref.Project, Environment: ref.Environment, Service: ref.Service}
		if v, ok := cm.Data[ref.Service]; ok {
			if err := json.Unmarshal([]byte(v), &e); err != nil {
				return err
			}
		}
		change(&e)
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		if len(e.Routes) == 0 && e.Preview == "" {
			if _, ok := cm.Data[ref.Service]; !ok {
				return nil
			}
			delete(cm.Data, ref.Service)
		} else {
			b, _ := json.Marshal(e)
			cm.Data[ref.Service] = string(b)
		}
		if create {
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), RouteTable, err)
			}
			return err
		}
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
}

func (d *Driver) proxyRoutes(ctx context.Context, ref target.ServiceRef) ([]strategy.Route, error) {
	e, err := d.tableEntry(ctx, ref)
	if err != nil || len(e.Routes) == 0 {
		return nil, err
	}
	return e.Routes, nil
}

// ensureNamespaceProxy creates the namespace's proxy once per driver when
// Options.ProxyImage is set.
func (d *Driver) ensureNamespaceProxy(ctx context.Context, ref target.ServiceRef) error {
	if d.opts.ProxyImage == "" {
		return nil
	}
	c, err := d.client(ref)
	if err != nil {
		return err
	}
	ns := d.Namespace(ref)
	d.proxiesMu.Lock()
	done := d.proxies[proxyKey{c, ns}]
	d.proxiesMu.Unlock()
	if done {
		return nil
	}
	domain := ""
	if d.opts.Domain != nil {
		domain = d.opts.Domain(ref)
	}
	if err := d.ensureProxy(ctx, c, ProxyOptions{Namespace: ns, Image: d.opts.ProxyImage, Domain: domain}); err != nil {
		return err
	}
	d.proxiesMu.Lock()
	if d.proxies == nil {
		d.proxies = map[proxyKey]bool{}
	}
	d.proxies[proxyKey{c, ns}] = true
	d.proxiesMu.Unlock()
	return nil
}

func (d *Driver) setProxyRoutes(ctx context.Context, ref target.ServiceRef, routes []strategy.Route) error {
	if len(routes) > 0 {
		if err := d.ensureNamespaceProxy(ctx, ref); err != nil {
			return err
		}
	}
	if err := d.updateTable(ctx, ref, func(e *TableEntry) { e.Routes = routes }); err != nil {
		return fmt.Errorf("kubernetes: push the routes of %s: %w", ref, err)
	}
	return nil
}

func (d *Driver) setProxyPreview(ctx context.Context, ref target.ServiceRef, group string) error {
	if group != "" {
		if err := checkGroupName(group); err != nil {
			return err
		}
	}
	if err := d.updateTable(ctx, ref, func(e *TableEntry) { e.Preview = group }); err != nil {
		return fmt.Errorf("kubernetes: push the preview of %s: %w", ref, err)
	}
	return nil
}

// ProxyOptions shape the in-cluster proxy's objects.
type ProxyOptions struct {
	Namespace string
	// Image is Runway's image (the proxy is `runway proxy --kubernetes`).
	Image string
	// Domain is the project's domain (hosts <service>.<environment>.<domain>).
	Domain string
	// Replicas of the proxy (2 when zero).
	Replicas int
	// ServiceType exposes it: LoadBalancer (the default), NodePort or
	// ClusterIP (behind the cluster's Ingress).
	ServiceType corev1.ServiceType
}

// ProxyObjects are the in-cluster proxy's ServiceAccount, Deployment and
// Service.
func ProxyObjects(o ProxyOptions) (*corev1.ServiceAccount, *appsv1.Deployment, *corev1.Service) {
	if o.Replicas <= 0 {
		o.Replicas = 2
	}
	if o.ServiceType == "" {
		o.ServiceType = corev1.ServiceTypeLoadBalancer
	}
	labels := map[string]string{LabelManaged: ManagedBy, "app.kubernetes.io/name": ProxyName}
	n := int32(o.Replicas)
	grace := int64(30)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ProxyName, Namespace: o.Namespace, Labels: labels}}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: ProxyName, Namespace: o.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &n, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{ServiceAccountName: ProxyName, TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{Name: "proxy", Image: o.Image,
						Args: []string{"proxy", "--kubernetes", "--namespace", o.Namespace, "--domain", o.Domain,
							"--http", ":8080", "--admin", ":9090"},
						// The replica's name names its statistics Lease (stats.go).
						Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "admin", ContainerPort: 9090}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
							Path: "/healthz", Port: intstr.FromString("admin")}}, PeriodSeconds: 2},
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
							Sleep: &corev1.SleepAction{Seconds: int64(PreStopSleep.Seconds())}}},
					}}}}}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ProxyName, Namespace: o.Namespace, Labels: labels},
		Spec: corev1.ServiceSpec{Type: o.ServiceType, Selector: labels,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}}
	return sa, dep, svc
}

// ensureProxy creates the proxy's objects where missing (they are the
// operator's to change afterwards: an existing object is left as it is).
func (d *Driver) ensureProxy(ctx context.Context, c kubernetes.Interface, o ProxyOptions) error {
	sa, dep, svc := ProxyObjects(o)
	if _, err := c.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubernetes: create the proxy's ServiceAccount: %w", err)
	}
	if _, err := c.AppsV1().Deployments(o.Namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubernetes: create the proxy's Deployment: %w", err)
	}
	if _, err := c.CoreV1().Services(o.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubernetes: create the proxy's Service: %w", err)
	}
	return nil
}

// groupService is the headless Service of a group in traffic "runway": its
// EndpointSlices list the group's pods (ready or not) for the proxy.
func groupService(ref target.ServiceRef, ns, group, release string, port int32) *corev1.Service {
	labels := groupLabels(ref, group, release)
	sel := map[string]string{LabelProject: labels[LabelProject], LabelEnvironment: labels[LabelEnvironment],
		LabelService: labels[LabelService], LabelGroup: group}
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: group, Namespace: ns, Labels: labels},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: sel,
			Ports: []corev1.ServicePort{{Name: "http", Port: port, TargetPort: intstr.FromInt32(port)}}}}
}

// ensureGroupService creates the group's headless Service (traffic
// "runway" only).
func (d *Driver) ensureGroupService(ctx context.Context, ref target.ServiceRef, group, release string, port int) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	if d.opts.Traffic != config.TrafficRunway {
		return nil
	}
	ns := d.Namespace(ref)
	_, err := c.CoreV1().Services(ns).Create(ctx, groupService(ref, ns, group, release, int32(port)), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubernetes: create the Service of group %s: %w", group, err)
	}
	return nil
}

// deleteGroupService deletes it; missing is not an error.
func (d *Driver) deleteGroupService(ctx context.Context, ref target.ServiceRef, group string) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	if d.opts.Traffic != config.TrafficRunway {
		return nil
	}
	ns := d.Namespace(ref)
	if err := c.CoreV1().Services(ns).Delete(ctx, group, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
		return fmt.Errorf("kubernetes: delete the Service of group %s: %w", group, err)
	}
	return nil
}
