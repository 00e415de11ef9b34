package kubeproxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/runwayhq/runway/internal/config"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/k8stest"
	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// TestLoad: what the server pushes through the driver (traffic "runway":
// weighted routes, a preview group, a headless Service per group) is, read
// back from the cluster, the proxy's routing table: the service's host
// with the exact weights, the preview host, and each group's ready pods by
// their pod IPs. A real proxy accepts it.
func TestLoad(t *testing.T) {
	kc := k8stest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := "acme-prod"
	if _, err := kc.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, err := k8sdriver.New(k8sdriver.Options{Client: kc.Client, Traffic: config.TrafficRunway})
	if err != nil {
		t.Fatal(err)
	}
	ref := target.ServiceRef{Project: "acme", Environment: "prod", Service: "web"}
	spec := &config.Service{Name: "web", Project: "acme", Environment: "prod", Version: "1", Image: "registry.acme.test/web:1", Port: 8080,
		Health: config.Health{Kind: "http", Path: "/"}}
	stable, canary := strategy.GroupName("web", "01JKP00000000000000000001", k8sdriver.GroupNameMax), strategy.GroupName("web", "01JKP00000000000000000002", k8sdriver.GroupNameMax)
	for _, g := range []struct {
		name string
		n    int
	}{{stable, 3}, {canary, 1}} {
		if err := d.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: g.name, Release: "r", Spec: spec, Count: g.n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SetRoutes(ctx, ref, []strategy.Route{{Group: stable, Weight: 9}, {Group: canary, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPreview(ctx, ref, canary); err != nil {
		t.Fatal(err)
	}
	podAddrs := func(group string) ([]proxy.Target, error) {
		pods, err := kc.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: k8sdriver.LabelGroup + "=" + group})
		if err != nil {
			return nil, err
		}
		var out []proxy.Target
		for _, p := range pods.Items {
			if p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
				return nil, fmt.Errorf("pod %s not running yet", p.Name)
			}
			out = append(out, proxy.Target{Instance: p.Name, Addr: net.JoinHostPort(p.Status.PodIP, "8080")})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
		return out, nil
	}
	var cfg proxy.Config
	k8stest.Eventually(t, "every pod in the routing table", func() (bool, error) {
		cfg, err = Load(ctx, kc.Client, ns, "acme.test")
		if err != nil {
			return false, err
		}
		s, err := podAddrs(stable)
		if err != nil {
			return false, err
		}
		c, err := podAddrs(canary)
		if err != nil {
			return false, err
		}
		return len(s) == 3 && reflect.DeepEqual(cfg.Groups[stable], s) && reflect.DeepEqual(cfg.Groups[canary], c),
			fmt.Errorf("groups %v", cfg.Groups)
	})
	want := []proxy.Route{
		{Project: "acme", Environment: "prod", Service: "web", Hosts: []string{"web.prod.acme.test"},
			Backends: []proxy.Backend{{Group: stable, Weight: 9}, {Group: canary, Weight: 1}}},
		{Project: "acme", Environment: "prod", Service: "web", Preview: true, Hosts: []string{"web-preview.prod.acme.test"},
			Backends: []proxy.Backend{{Group: canary, Weight: 1}}},
	}
	if !reflect.DeepEqual(cfg.Routes, want) {
		t.Errorf("routes\n got %+v\nwant %+v", cfg.Routes, want)
	}
	p, err := proxy.New(proxy.Options{HTTPAddr: "127.0.0.1:0", HTTPSAddr: proxy.Off, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Run keeps the proxy's table: its targets are the pods' addresses.
	rctx, stopRun := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() {
		ran <- Run(rctx, p, kc.Client, ns, "acme.test", 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() {
		stopRun()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	k8stest.Eventually(t, "the proxy's targets", func() (bool, error) {
		got := map[string]bool{}
		for _, ts := range p.Targets() {
			if !ts.Retired {
				got[ts.Group+" "+ts.Addr] = true
			}
		}
		want := map[string]bool{}
		for g, ts := range cfg.Groups {
			for _, tg := range ts {
				want[g+" "+tg.Addr] = true
			}
		}
		return reflect.DeepEqual(got, want), fmt.Errorf("targets %v, want %v", got, want)
	})
	// A group deleted: its pods leave the table, its Service goes.
	if err := d.SetPreview(ctx, ref, ""); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteGroup(ctx, ref, canary, time.Second); err != nil {
		t.Fatal(err)
	}
	k8stest.Eventually(t, "the deleted group out of the table", func() (bool, error) {
		cfg, err = Load(ctx, kc.Client, ns, "acme.test")
		_, has := cfg.Groups[canary]
		return err == nil && len(cfg.Routes) == 1 && len(cfg.Routes[0].Backends) == 1 && !has, err
	})
	if _, err := kc.Client.CoreV1().Services(ns).Get(ctx, canary, metav1.GetOptions{}); err == nil {
		t.Errorf("the deleted group's Service %s is left", canary)
	}
}
