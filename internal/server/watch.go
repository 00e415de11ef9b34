package server

import (
	"context"
	"fmt"
	"sort"
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
		w.service(ctx, drv, spec.Target, ref)
	}
}

func (w *watcher) service(ctx context.Context, drv target.Target, kind string, ref target.ServiceRef) {
	groups, err := drv.ListGroups(ctx, ref)
	if err != nil {
		return // the target is away: look again next time
	}
	rep, _ := drv.(target.InstanceReporter)
	now := map[string]groupSeen{}
	for _, g := range groups {
		gs := groupSeen{desired: g.Status.Desired, instances: map[string]target.InstanceInfo{}}
		if rep != nil {
			ins, err := rep.Instances(ctx, ref, g.Name)
			if err != nil {
				return
			}
			for _, in := range ins {
				gs.instances[in.ID] = in
			}
		}
		now[g.Name] = gs
	}
	prev, known := w.seen[ref]
	w.seen[ref] = now
	if !known && !w.looked {
		return
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
}

func sortedIDs(m map[string]target.InstanceInfo) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
