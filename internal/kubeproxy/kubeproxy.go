// Package kubeproxy feeds Runway's proxy from a Kubernetes namespace, for
// target kubernetes' traffic "runway": the routes and preview groups the
// server pushed into the namespace's route table (the ConfigMap
// kubernetes.RouteTable), and each group's ready pods from the
// EndpointSlices of the group's headless Service. Load reads them once;
// Run keeps a proxy up to date.
package kubeproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"sort"
	"strconv"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/proxy"
)

// Load reads the namespace's routing table: a route per service with
// routes (its host <service>.<environment>.<domain>), a preview route per
// service with a preview group, and the ready endpoints of every group
// they name.
func Load(ctx context.Context, c kubernetes.Interface, ns, domain string) (proxy.Config, error) {
	cfg := proxy.Config{Groups: map[string][]proxy.Target{}}
	cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, k8sdriver.RouteTable, metav1.GetOptions{})
	if err != nil {
		return cfg, fmt.Errorf("kubeproxy: read the route table %s/%s: %w", ns, k8sdriver.RouteTable, err)
	}
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	groups := map[string]bool{}
	for _, k := range keys {
		var e k8sdriver.TableEntry
		if err := json.Unmarshal([]byte(cm.Data[k]), &e); err != nil {
			return cfg, fmt.Errorf("kubeproxy: route table entry %q: %w", k, err)
		}
		if len(e.Routes) > 0 {
			r := proxy.Route{Project: e.Project, Environment: e.Environment, Service: e.Service,
				Hosts: []string{naming.Service(e.Service, e.Environment, domain)}}
			for _, b := range e.Routes {
				r.Backends = append(r.Backends, proxy.Backend{Group: b.Group, Weight: b.Weight})
				groups[b.Group] = true
			}
			cfg.Routes = append(cfg.Routes, r)
		}
		if e.Preview != "" {
			cfg.Routes = append(cfg.Routes, proxy.Route{Project: e.Project, Environment: e.Environment, Service: e.Service,
				Preview: true, Hosts: []string{naming.Preview(e.Service, e.Environment, domain)},
				Backends: []proxy.Backend{{Group: e.Preview, Weight: 1}}})
			groups[e.Preview] = true
		}
	}
	slices, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: k8sdriver.LabelGroup})
	if err != nil {
		return cfg, fmt.Errorf("kubeproxy: list the groups' EndpointSlices: %w", err)
	}
	for i := range slices.Items {
		s := &slices.Items[i]
		g := s.Labels[discoveryv1.LabelServiceName]
		if !groups[g] {
			continue
		}
		cfg.Groups[g] = append(cfg.Groups[g], targets(s)...)
	}
	for g := range groups {
		ts := cfg.Groups[g]
		sort.Slice(ts, func(i, j int) bool { return ts[i].Instance < ts[j].Instance })
		cfg.Groups[g] = ts
	}
	return cfg, nil
}

// targets are a slice's ready, not terminating endpoints.
func targets(s *discoveryv1.EndpointSlice) []proxy.Target {
	if len(s.Ports) == 0 || s.Ports[0].Port == nil {
		return nil
	}
	port := strconv.Itoa(int(*s.Ports[0].Port))
	var out []proxy.Target
	for _, ep := range s.Endpoints {
		if ep.Conditions.Ready == nil || !*ep.Conditions.Ready || (ep.Conditions.Terminating != nil && *ep.Conditions.Terminating) {
			continue
		}
		if len(ep.Addresses) == 0 {
			continue
		}
		name := ep.Addresses[0]
		if ep.TargetRef != nil {
			name = ep.TargetRef.Name
		}
		out = append(out, proxy.Target{Instance: name, Addr: net.JoinHostPort(ep.Addresses[0], port)})
	}
	return out
}

// Run loads the table every interval and updates p when it changed, until
// ctx ends. A table that fails to load or that p refuses keeps the last
// one (logged).
func Run(ctx context.Context, p *proxy.Proxy, c kubernetes.Interface, ns, domain string, interval time.Duration, log *slog.Logger) error {
	var last *proxy.Config
	for {
		cfg, err := Load(ctx, c, ns, domain)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				log.Warn("kubeproxy: routing table not loaded; keeping the last one", "err", err)
			}
		case last == nil || !reflect.DeepEqual(*last, cfg):
			if err := p.Update(cfg); err != nil {
				log.Warn("kubeproxy: routing table refused; keeping the last one", "err", err)
			} else {
				last = &cfg
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
