package server

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// watcher records what the targets' instances do as events: starts, exits
// and restarts, health changes, crash loops, groups scaled and deleted. It
// only reads the targets (a fault here never reaches the data plane) and
// compares each look with the previous one. The services live at the
// server's first look get it as their baseline and record nothing for it
// (what happened while no server watched is unknown); a service released
// later starts from nothing, so its first instances' starts are recorded.
type watcher struct {
	b        *backend
	interval time.Duration
	seen     map[target.ServiceRef]map[string]groupSeen // by group name
	looked   bool                                       // a first look is done
	// alarms are the built-in alarms' states by service; gauge, when set,
	// is told how many alarms are in each state after every look.
	alarms map[target.ServiceRef]map[string]string
	gauge  func(byState map[string]int)
}

type groupSeen struct {
	desired   int
	instances map[string]target.InstanceInfo
}

// run looks every interval until ctx ends.
func (w *watcher) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.look(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// look observes every service that has a live release once.
func (w *watcher) look(ctx context.Context) {
	rs, err := w.b.st.LiveReleases(ctx)
	if err != nil {
		return
	}
	defer func() { w.looked = true }()
	byState := map[string]int{"OK": 0, "ALERT": 0, "NO_DATA": 0}
	for _, r := range rs {
		spec, err := engine.DecodeSpec(r.Spec)
		if err != nil {
			continue
		}
		drv, err := w.b.drivers.For(spec.Target)
		if err != nil || drv == nil {
			continue
		}
		ref := target.ServiceRef{Project: r.Project, Environment: r.Environment, Service: r.Service}
		for _, st := range w.evaluate(ctx, ref, w.service(ctx, drv, spec.Target, ref)) {
			byState[st]++
		}
	}
	if w.gauge != nil && ctx.Err() == nil {
		w.gauge(byState)
	}
}

// serviceHealth is what one look saw of a service, for its alarms; ok is
// false when the target could not be read.
type serviceHealth struct {
	ok        bool
	routed    bool
	healthy   int
	crashLoop bool
}

// evaluate sets the service's built-in alarms from one look and records
// each change of state as an event; it returns the alarms' states.
func (w *watcher) evaluate(ctx context.Context, ref target.ServiceRef, h serviceHealth) map[string]string {
	states := map[string]string{}
	names := []string{AlarmFailureDirty, AlarmNoHealthy, AlarmCrashLoop}
	for _, n := range names {
		states[n] = "NO_DATA"
	}
	if h.ok {
		rs, err := w.b.st.ListReleases(ctx, store.ReleaseFilter{Project: ref.Project, Environment: ref.Environment, Service: ref.Service, Limit: 100})
		if err == nil {
			for _, n := range names {
				states[n] = "OK"
			}
			for _, n := range builtinAlerts(rs, h.routed, h.healthy, h.crashLoop) {
				states[n] = "ALERT"
			}
		}
	}
	if w.alarms == nil {
		w.alarms = map[target.ServiceRef]map[string]string{}
	}
	prev, known := w.alarms[ref]
	w.alarms[ref] = states
	for _, n := range names {
		was := prev[n]
		if !known {
			was = "OK"
			if !w.looked {
				continue // the baseline: the state before is unknown
			}
		}
		if states[n] != was && states[n] != "NO_DATA" {
			w.b.record(ctx, &store.ServiceEvent{Kind: "alarm." + strings.ToLower(states[n]), Project: ref.Project, Environment: ref.Environment,
				Service: ref.Service, Actor: "runway", Target: "alarm " + n, Message: fmt.Sprintf("alarm %s of %s: %s → %s", n, ref, was, states[n])})
		}
	}
	return states
}

func (w *watcher) service(ctx context.Context, drv target.Target, kind string, ref target.ServiceRef) serviceHealth {
	groups, err := drv.ListGroups(ctx, ref)
	if err != nil {
		return serviceHealth{} // the target is away: look again next time
	}
	h := serviceHealth{ok: true}
	if routes, err := drv.Routes(ctx, ref); err == nil {
		for _, r := range routes {
			h.routed = h.routed || r.Weight > 0
		}
	} else {
		h.ok = false
	}
	rep, _ := drv.(target.InstanceReporter)
	now := map[string]groupSeen{}
	for _, g := range groups {
		gs := groupSeen{desired: g.Status.Desired, instances: map[string]target.InstanceInfo{}}
		h.healthy += g.Status.Healthy
		if rep != nil {
			ins, err := rep.Instances(ctx, ref, g.Name)
			if err != nil {
				return serviceHealth{}
			}
			for _, in := range ins {
				gs.instances[in.ID] = in
				h.crashLoop = h.crashLoop || in.CrashLoop
			}
		}
		now[g.Name] = gs
	}
	prev, known := w.seen[ref]
	w.seen[ref] = now
	if !known && !w.looked {
		return h
	}
	rec := func(kindOf, release, tgt, msg string) {
		w.b.record(ctx, &store.ServiceEvent{Kind: kindOf, Project: ref.Project, Environment: ref.Environment, Service: ref.Service,
			ReleaseID: release, Actor: kind, Target: tgt, Message: msg})
	}
	release := map[string]string{}
	for _, g := range groups {
		release[g.Name] = g.Release
	}
	for _, g := range groups {
		p, had := prev[g.Name]
		cur := now[g.Name]
		if had && p.desired != cur.desired {
			rec("group.scaled", g.Release, "group "+g.Name, fmt.Sprintf("group %s scaled from %d to %d instances", g.Name, p.desired, cur.desired))
		}
		for _, id := range sortedIDs(cur.instances) {
			in := cur.instances[id]
			old, was := p.instances[id]
			tgt := "instance " + id
			switch {
			case !was:
				rec("instance.started", g.Release, tgt, fmt.Sprintf("instance %s of %s started (%s)", id, g.Name, in.State))
				continue
			case in.Restarts > old.Restarts:
				msg := fmt.Sprintf("instance %s of %s restarted (%d restarts)", id, g.Name, in.Restarts)
				if in.LastExit != "" {
					msg += ": " + in.LastExit
				}
				rec("instance.restarted", g.Release, tgt, msg)
			case in.State != old.State:
				msg := fmt.Sprintf("instance %s of %s is %s (was %s)", id, g.Name, in.State, old.State)
				if in.State == "exited" && in.LastExit != "" {
					msg += ": " + in.LastExit
				}
				rec("instance."+in.State, g.Release, tgt, msg)
			}
			if in.CrashLoop && !old.CrashLoop {
				rec("instance.crash_loop", g.Release, tgt, fmt.Sprintf("instance %s of %s is crash-looping (%d restarts): %s", id, g.Name, in.Restarts, in.LastExit))
			}
		}
		for _, id := range sortedIDs(p.instances) {
			if _, ok := cur.instances[id]; !ok {
				rec("instance.stopped", g.Release, "instance "+id, fmt.Sprintf("instance %s of %s stopped", id, g.Name))
			}
		}
	}
	var gone []string
	for name := range prev {
		if _, ok := now[name]; !ok {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		rec("group.deleted", "", "group "+name, fmt.Sprintf("group %s deleted (%d instances)", name, len(prev[name].instances)))
	}
	return h
}

func sortedIDs(m map[string]target.InstanceInfo) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
