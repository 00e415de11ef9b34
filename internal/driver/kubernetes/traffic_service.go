package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"

	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// Traffic "service": one Service per Runway service, named after it, in
// front of the groups' pods. Its selector is the service's labels plus
// the group's when one group has weight; with several weighted groups it
// selects the whole service, whose pods are then exactly the weighted
// groups' and in the ratio of their weights (SetRoutes refuses otherwise).
// The routes as set are kept in the Service's annotation.

// noGroup is the group a Service without routes selects: no group has
// this name (GroupName always ends in a hash), so it has no endpoints.
const noGroup = "none"

// ServiceName is the Kubernetes Service of a Runway service.
func ServiceName(ref target.ServiceRef) string { return ref.Service }

func (d *Driver) service(ctx context.Context, ref target.ServiceRef) (*corev1.Service, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return nil, cerr
	}
	s, err := c.CoreV1().Services(d.Namespace(ref)).Get(ctx, ServiceName(ref), metav1.GetOptions{})
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: read Service %s: %w", ServiceName(ref), err)
	}
	return s, nil
}

// Routes returns the routes last set (nil without any).
func (d *Driver) Routes(ctx context.Context, ref target.ServiceRef) ([]strategy.Route, error) {
	if d.opts.Traffic == "runway" {
		return d.proxyRoutes(ctx, ref)
	}
	s, err := d.service(ctx, ref)
	if err != nil || s == nil {
		return nil, err
	}
	return decodeRoutes(s.Annotations[AnnotRoutes])
}

func decodeRoutes(a string) ([]strategy.Route, error) {
	if a == "" {
		return nil, nil
	}
	var rs []strategy.Route
	if err := json.Unmarshal([]byte(a), &rs); err != nil {
		return nil, fmt.Errorf("kubernetes: annotation %s: %w", AnnotRoutes, err)
	}
	if len(rs) == 0 {
		return nil, nil
	}
	return rs, nil
}

func (d *Driver) checkRoutes(routes []strategy.Route) error {
	c := d.Capabilities()
	if len(routes) > c.MaxWeightedGroups {
		return fmt.Errorf("kubernetes: %d weighted groups: this target carries at most %d", len(routes), c.MaxWeightedGroups)
	}
	for _, r := range routes {
		if r.Weight < 0 || r.Weight > c.MaxWeight {
			return fmt.Errorf("kubernetes: group %s: weight %d outside 0 to %d", r.Group, r.Weight, c.MaxWeight)
		}
		if err := checkGroupName(r.Group); err != nil {
			return err
		}
	}
	return nil
}

// SetRoutes points the Service at the weighted groups.
func (d *Driver) SetRoutes(ctx context.Context, ref target.ServiceRef, routes []strategy.Route) error {
	if err := d.checkRoutes(routes); err != nil {
		return err
	}
	if d.opts.Traffic == "runway" {
		return d.setProxyRoutes(ctx, ref, routes)
	}
	var weighted []strategy.Route
	for _, r := range routes {
		if r.Weight > 0 {
			weighted = append(weighted, r)
		}
	}
	sel := map[string]string{LabelProject: labelValue(ref.Project), LabelEnvironment: labelValue(ref.Environment),
		LabelService: labelValue(ref.Service)}
	port := int32(0)
	switch len(weighted) {
	case 0:
		if s, err := d.service(ctx, ref); err != nil || s == nil {
			return err // no Service, no routes: nothing to remove
		}
		sel[LabelGroup] = noGroup
	case 1:
		sel[LabelGroup] = weighted[0].Group
	default:
		if err := d.checkRatio(ctx, ref, weighted); err != nil {
			return err
		}
	}
	for _, r := range weighted {
		p, err := d.groupPort(ctx, ref, r.Group)
		if err != nil {
			return err
		}
		if port != 0 && p != port {
			return fmt.Errorf("kubernetes: groups %s and %s listen on different ports: one Service cannot route to both", weighted[0].Group, r.Group)
		}
		port = p
	}
	var enc []byte
	if len(routes) > 0 {
		enc, _ = json.Marshal(routes)
	}
	return d.writeService(ctx, ref, sel, port, string(enc))
}

// groupPort is the container port of a group's pods.
func (d *Driver) groupPort(ctx context.Context, ref target.ServiceRef, group string) (int32, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return 0, cerr
	}
	dep, err := c.AppsV1().Deployments(d.Namespace(ref)).Get(ctx, group, metav1.GetOptions{})
	if err != nil {
		return 0, fmt.Errorf("kubernetes: route to group %s: %w", group, err)
	}
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			return p.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("kubernetes: group %s has no port", group)
}

// checkRatio: with one Service over several groups, each gets the share
// of its instances among the service's instances; refuse weights those
// counts do not give, and groups with instances but no route.
func (d *Driver) checkRatio(ctx context.Context, ref target.ServiceRef, weighted []strategy.Route) error {
	groups, err := d.ListGroups(ctx, ref)
	if err != nil {
		return err
	}
	want := map[string]int{}
	totalW := 0
	for _, r := range weighted {
		want[r.Group] = r.Weight
		totalW += r.Weight
	}
	count := map[string]int{}
	total := 0
	for _, g := range groups {
		if _, ok := want[g.Name]; !ok {
			if g.Status.Desired > 0 {
				return fmt.Errorf("kubernetes: group %s has %d instances but no route: one Service over several groups would send it requests; scale it to 0 first (traffic \"service\")", g.Name, g.Status.Desired)
			}
			continue
		}
		count[g.Name] = g.Status.Desired
		total += g.Status.Desired
	}
	if total == 0 {
		return nil
	}
	exact, counts := true, true
	for _, r := range weighted {
		exact = exact && count[r.Group]*totalW == r.Weight*total
		counts = counts && r.Weight <= count[r.Group]
	}
	// A rolling deploy routes by instance counts, traffic first: weights
	// that are the counts the groups are about to be scaled down to are
	// the ratio once they are (the instances leaving go out of the
	// endpoints as they stop, after their preStop sleep).
	if exact || counts {
		return nil
	}
	for _, r := range weighted {
		if count[r.Group]*totalW != r.Weight*total {
			return fmt.Errorf("kubernetes: weights %v are not the groups' instance ratio (%v of %d): traffic \"service\" splits requests by instances; use traffic \"runway\" for exact weights: %w",
				weighted, count, total, target.ErrUnsupported)
		}
	}
	return nil
}

func (d *Driver) writeService(ctx context.Context, ref target.ServiceRef, sel map[string]string, port int32, routes string) error {
	c, cerr := d.client(ref)
	if cerr != nil {
		return cerr
	}
	ns := d.Namespace(ref)
	svcs := c.CoreV1().Services(ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := svcs.Get(ctx, ServiceName(ref), metav1.GetOptions{})
		if isNotFound(err) {
			if port == 0 {
				return nil
			}
			s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: ServiceName(ref), Namespace: ns, Labels: serviceLabels(ref),
				Annotations: map[string]string{AnnotRoutes: routes}},
				Spec: corev1.ServiceSpec{Selector: sel, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP,
					TargetPort: intstr.FromInt32(port)}}}}
			_, err = svcs.Create(ctx, s, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("services"), s.Name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		cur.Annotations[AnnotRoutes] = routes
		cur.Spec.Selector = sel
		if port != 0 && len(cur.Spec.Ports) > 0 {
			cur.Spec.Ports[0].TargetPort = intstr.FromInt32(port)
		}
		_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
}

// unroute takes group out of the routes (DeleteGroup).
func (d *Driver) unroute(ctx context.Context, ref target.ServiceRef, group string) error {
	routes, err := d.Routes(ctx, ref)
	if err != nil {
		return err
	}
	var keep []strategy.Route
	found := false
	for _, r := range routes {
		if r.Group == group {
			found = true
			continue
		}
		keep = append(keep, r)
	}
	if !found {
		return nil
	}
	return d.SetRoutes(ctx, ref, keep)
}

// SetPreview: traffic "service" has no preview host (Capabilities.Preview
// is false); traffic "runway" routes the proxy's preview host.
func (d *Driver) SetPreview(ctx context.Context, ref target.ServiceRef, group string) error {
	if d.opts.Traffic == "runway" {
		return d.setProxyPreview(ctx, ref, group)
	}
	if group == "" {
		return nil
	}
	return fmt.Errorf("kubernetes: a preview host needs traffic \"runway\": %w", target.ErrUnsupported)
}
