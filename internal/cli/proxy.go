package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/kubeproxy"
	"github.com/runwayhq/runway/internal/proxy"
)

// newProxyCmd: Runway's proxy on its own, fed from a Kubernetes namespace
// (target kubernetes, traffic "runway"): the in-cluster proxy.
func newProxyCmd(g *Globals) *cobra.Command {
	var (
		kube                               bool
		namespace, domain, httpAddr, admin string
		kubeconfig, kubeContext, logLevel  string
		replica                            string
		interval, drainTimeout, statsEvery time.Duration
	)
	cmd := &cobra.Command{
		Use:   "proxy --kubernetes --namespace NS",
		Short: "Run Runway's proxy in a Kubernetes namespace (target kubernetes, traffic \"runway\")",
		Long: `Serves the namespace's services as target kubernetes' traffic "runway" does: the routes
and preview groups the server pushes into the ConfigMap runway-routes, to each group's
ready pods (the EndpointSlices of its headless Service), with exact weights. It reloads
the table every --interval. /healthz on --admin answers 200 once a table is loaded.
Every --stats-interval it publishes what it measured per group (requests, errors,
latency, in 5-second buckets) into the Lease runway-stats-<replica>, which the server
sums over the replicas for canary analysis and alarms.
The runway-proxy Deployment runs it; its Role reads only the table and EndpointSlices,
and writes the statistics Leases (runway kubernetes rbac).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !kube {
				return UsageErrorf("runway proxy runs in a Kubernetes namespace only: give --kubernetes --namespace NS (the local target's proxy runs inside runway agent)")
			}
			if namespace == "" {
				return UsageErrorf("--namespace is required")
			}
			if interval <= 0 {
				return UsageErrorf("--interval is %s; give a positive duration such as 1s", interval)
			}
			if statsEvery < time.Second || statsEvery > k8sdriver.StatsRenew {
				return UsageErrorf("--stats-interval is %s; give a duration from 1s to %s", statsEvery, k8sdriver.StatsRenew)
			}
			if replica == "" {
				return UsageErrorf("--replica is required outside a pod (POD_NAME is not set and the host has no name)")
			}
			if err := kubeproxy.CheckReplica(replica); err != nil {
				return UsageErrorf("--replica: %v", err)
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return UsageErrorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
			c, _, err := k8sdriver.Client(kubeconfig, kubeContext)
			if err != nil {
				return err
			}
			p, err := proxy.New(proxy.Options{HTTPAddr: httpAddr, HTTPSAddr: proxy.Off, DrainTimeout: drainTimeout, Logger: log})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			var loaded atomic.Bool
			mux := http.NewServeMux()
			mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
				if !loaded.Load() {
					http.Error(w, "no routing table loaded yet", http.StatusServiceUnavailable)
					return
				}
				fmt.Fprintln(w, "ok")
			})
			ln, err := net.Listen("tcp", admin)
			if err != nil {
				return fmt.Errorf("admin listener: %w", err)
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = srv.Serve(ln) }()
			defer srv.Close()
			// The first table before serving: no request meets an empty one.
			for {
				cfg, err := kubeproxy.Load(ctx, c, namespace, domain)
				if err == nil {
					err = p.Update(cfg)
				}
				if err == nil {
					break
				}
				log.Warn("waiting for the routing table", "err", err)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
			loaded.Store(true)
			if err := p.Start(ctx); err != nil {
				return err
			}
			fmt.Fprintf(g.Stderr, "runway proxy serving namespace %s on %s (admin %s), statistics in Lease %s%s\n", namespace, p.HTTPAddr(), ln.Addr(), k8sdriver.StatsLeasePrefix, replica)
			pub := &kubeproxy.Publisher{Client: c, Namespace: namespace, Replica: replica, Source: p, Interval: statsEvery, Log: log}
			// The publisher outlives the drain, so that its last
			// publication holds every request served.
			pctx, stopPub := context.WithCancel(context.Background())
			published := make(chan error, 1)
			go func() { published <- pub.Run(pctx) }()
			defer func() {
				stopPub()
				if perr := <-published; perr != nil {
					log.Warn("statistics publisher", "err", perr)
				}
			}()
			err = kubeproxy.Run(ctx, p, c, namespace, domain, interval, log)
			sctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			defer cancel()
			if serr := p.Shutdown(sctx); serr != nil && !errors.Is(serr, context.DeadlineExceeded) {
				log.Warn("proxy shutdown", "err", serr)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&kube, "kubernetes", false, "take routes and endpoints from a Kubernetes namespace (required)")
	f.StringVar(&namespace, "namespace", "", "the environment's namespace")
	f.StringVar(&domain, "domain", "", "the project's domain: services are served as <service>.<environment>.<domain> (default localhost)")
	f.StringVar(&httpAddr, "http", ":8080", "address of the HTTP listener")
	f.StringVar(&admin, "admin", ":9090", "address of /healthz")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default: KUBECONFIG, ~/.kube/config, else the pod's service account)")
	f.StringVar(&kubeContext, "kube-context", "", "context of the kubeconfig")
	f.DurationVar(&interval, "interval", time.Second, "how often the routing table is reloaded")
	f.DurationVar(&drainTimeout, "drain-timeout", 25*time.Second, "how long requests in flight may finish at shutdown")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&replica, "replica", defaultReplica(), "this replica's name, which names its statistics Lease (default: $POD_NAME, else the host name)")
	f.DurationVar(&statsEvery, "stats-interval", k8sdriver.StatsInterval, "how often the statistics are published while they change")
	return cmd
}

// defaultReplica is the pod's name (POD_NAME, from the Deployment's
// downward API), else the host's name (a pod's host name is its name).
func defaultReplica() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	n, _ := os.Hostname()
	return strings.ToLower(n)
}
