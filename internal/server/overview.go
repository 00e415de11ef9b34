package server

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/driver/local"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// overviewWindow is the statistics window of `runway top` (clamped to what
// the target can measure).
const overviewWindow = 30 * time.Second

// Overview implements api.Backend: per service of the environment its
// groups (version, traffic share, health), the window's request rate,
// errors and latency, and its instances' CPU, memory and restarts, read
// from the target through its contracts.
func (b *backend) Overview(ctx context.Context, project, env string) (*apiwire.Overview, error) {
	drv, err := b.targetOf(ctx, project, env)
	if err != nil {
		return nil, err
	}
	caps := drv.Capabilities()
	window := min(max(overviewWindow, caps.StatsWindowMin), caps.StatsWindowMax) // as observe clamps it
	list, err := b.st.ListReleases(ctx, store.ReleaseFilter{Project: project, Environment: env, Limit: 1000})
	if err != nil {
		return nil, err
	}
	byService := map[string][]*store.Release{}
	var names []string
	for _, r := range list {
		if byService[r.Service] == nil {
			names = append(names, r.Service)
		}
		byService[r.Service] = append(byService[r.Service], r)
	}
	sort.Strings(names)
	out := &apiwire.Overview{Project: project, Environment: env, At: time.Now().UTC(), Window: window.String(), Services: []apiwire.ServiceOverview{}}
	// Each service's figures are a few calls to its target, mostly waiting:
	// overviewParallel at once keep a frame of 100 services quick (the
	// dashboard's environment page and runway top read one per refresh).
	// One listing of the agent's groups for every service of the frame.
	ctx = local.WithGroupsSnapshot(ctx)
	out.Services = make([]apiwire.ServiceOverview, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, overviewParallel)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ref := target.ServiceRef{Project: project, Environment: env, Service: name}
			so, err := b.serviceOverview(ctx, drv, ref, byService[name], window)
			if err != nil {
				err = fmt.Errorf("overview of %s: %w", ref, err)
			}
			out.Services[i], errs[i] = so, err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// overviewParallel is how many services an overview reads at once.
const overviewParallel = 16

func (b *backend) serviceOverview(ctx context.Context, drv target.Target, ref target.ServiceRef, releases []*store.Release, window time.Duration) (apiwire.ServiceOverview, error) {
	so := apiwire.ServiceOverview{Service: ref.Service, Versions: []apiwire.VersionShare{}, Alarms: []string{}}
	versions := map[string]string{}
	for _, r := range releases {
		versions[r.ID] = r.Version
		if !r.Done && so.InProgress == "" {
			so.InProgress = r.State
		}
	}
	o, err := observe(ctx, drv, ref, window)
	if err != nil {
		return so, err
	}
	for _, g := range o.groups {
		share := 0
		if o.weight > 0 {
			share = g.weight * 100 / o.weight
		}
		so.Versions = append(so.Versions, apiwire.VersionShare{Version: versions[g.Release], Group: g.Name, Release: g.Release,
			Weight: share, Healthy: g.Status.Healthy, Total: g.Status.Healthy + g.Status.Starting + g.Status.Unhealthy})
	}
	so.Healthy, so.Total, so.Restarts, so.CPUPercent, so.RSSBytes = o.healthy, o.total, o.restarts, o.cpu, o.rss
	so.RequestsPerSecond = float64(o.requests) / o.window.Seconds()
	so.ErrorRate, so.P50Seconds, so.P99Seconds = o.errorRate(), o.p50.Seconds(), o.p99.Seconds()
	so.Alarms = b.alertsOf(ctx, ref, builtinAlerts(releases, o.routed, o.healthy, o.crashLoop))
	if m, ok := drv.(target.Maintainer); ok {
		so.Maintenance, _ = m.Maintenance(ctx, ref)
	}
	return so, nil
}

// Built-in alarms (issue 14): evaluated on every read from what the
// target reports and the store holds, named as `runway status` and `runway
// top` show them when in ALERT.
const (
	AlarmFailureDirty = "release_failure_dirty"
	AlarmNoHealthy    = "no_healthy_instance"
	AlarmCrashLoop    = "instance_crash_looping"
)

// builtinAlerts lists the built-in alarms of a service in ALERT: a
// FailureDirty release not yet resolved (by a later Success), a routed
// service without a healthy instance, an instance crash-looping.
// releases are the service's, newest first.
func builtinAlerts(releases []*store.Release, routed bool, healthy int, crashLoop bool) []string {
	out := []string{}
	if len(unresolvedDirty(releases)) > 0 {
		out = append(out, AlarmFailureDirty)
	}
	if routed && healthy == 0 {
		out = append(out, AlarmNoHealthy)
	}
	if crashLoop {
		out = append(out, AlarmCrashLoop)
	}
	return out
}

// unresolvedDirty returns the releases (newest first) that ended
// FailureDirty after the service's last Success: their clean-up is still
// owed. A later successful release replaced what they left.
func unresolvedDirty(releases []*store.Release) []*store.Release {
	var out []*store.Release
	for _, r := range releases {
		if r.State == string(engine.StateSuccess) {
			break
		}
		if r.State == string(engine.StateFailureDirty) {
			out = append(out, r)
		}
	}
	return out
}
