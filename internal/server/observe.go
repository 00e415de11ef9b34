package server

import (
	"context"
	"time"

	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// observation is what one look through the target's contracts saw of a
// service: its groups with their statistics, and the sums alarms, `runway
// top` and `runway status` read.
type observation struct {
	groups []groupObservation
	// weight is the sum of the routes' weights (0: no traffic routed).
	weight           int
	requests, errors int64
	window           time.Duration
	p99              time.Duration
	// p50 is the busiest group's (medians of groups do not add up).
	p50       time.Duration
	healthy   int
	total     int
	restarts  int
	cpu       float64
	rss       int64
	routed    bool
	crashLoop bool
	releases  []*store.Release // newest first, when the caller read them
}

// groupObservation is one group: as listed, its share of the routes'
// weight and its statistics (none without a route).
type groupObservation struct {
	target.GroupInfo
	weight int
	stats  bool
}

// observe reads a service's groups, routes, instances (when the target
// reports them) and statistics over window, clamped to the windows the
// target measures.
func observe(ctx context.Context, drv target.Target, ref target.ServiceRef, window time.Duration) (*observation, error) {
	caps := drv.Capabilities()
	o := &observation{window: min(max(window, caps.StatsWindowMin), caps.StatsWindowMax)}
	groups, err := drv.ListGroups(ctx, ref)
	if err != nil {
		return nil, err
	}
	routes, err := drv.Routes(ctx, ref)
	if err != nil {
		return nil, err
	}
	weights := map[string]int{}
	for _, r := range routes {
		weights[r.Group] += r.Weight
		o.weight += r.Weight
	}
	o.routed = o.weight > 0
	rep, _ := drv.(target.InstanceReporter)
	var busiest int64
	for _, g := range groups {
		gobs := groupObservation{GroupInfo: g, weight: weights[g.Name]}
		o.healthy += g.Status.Healthy
		o.total += g.Status.Healthy + g.Status.Starting + g.Status.Unhealthy
		if rep != nil {
			ins, err := rep.Instances(ctx, ref, g.Name)
			if err != nil {
				return nil, err
			}
			for _, in := range ins {
				o.restarts += in.Restarts
				o.cpu += in.CPUPercent
				o.rss += in.RSSBytes
				o.crashLoop = o.crashLoop || in.CrashLoop
			}
		} else {
			o.restarts += g.Status.Terminated
		}
		if ws, err := drv.WindowStats(ctx, ref, g.Name, o.window); err == nil {
			gobs.stats = true
			o.requests += ws.Requests
			o.errors += ws.Errors
			o.p99 = max(o.p99, ws.P99)
			if ws.Requests > busiest {
				busiest, o.p50 = ws.Requests, ws.P50
			}
		}
		o.groups = append(o.groups, gobs)
	}
	return o, nil
}

// errorRate is errors over requests, 0 without requests.
func (o *observation) errorRate() float64 {
	if o.requests == 0 {
		return 0
	}
	return float64(o.errors) / float64(o.requests)
}
