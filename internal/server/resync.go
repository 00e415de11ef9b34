package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// ResyncOptions say whose records `runway server resync` rebuilds.
type ResyncOptions struct {
	DataDir        string
	AgentURL       string
	AgentTokenFile string
	// Environment and Service select one service (of Project, or of every
	// project the agent runs it for when Project is empty); both empty:
	// every service the agent knows.
	Project, Environment, Service string
}

// ServiceResync is what resync did for one service.
type ServiceResync struct {
	Project     string `json:"project,omitempty"`
	Environment string `json:"environment"`
	Service     string `json:"service"`
	// Previous is the generation the store had recorded; Generation the
	// agent's, now recorded.
	Previous   int64 `json:"previous_generation"`
	Generation int64 `json:"generation"`
	// Groups are the service's groups on the agent: "name (release R,
	// version V, weight W)".
	Groups []string `json:"groups"`
	// Ended are unfinished releases ended so they never resume.
	Ended []string `json:"ended"`
	// Recorded are releases the store did not know, recorded from the agent.
	Recorded []string `json:"recorded"`
}

// Resync rebuilds a service's records from the agent, which is what runs:
// it ends the service's unfinished releases (they would resume from a
// point the world has left), records the releases of the agent's groups
// that the store lacks (so status names what serves), and adopts the
// agent's generation, so that the server may act on the service again.
// It changes nothing on the agent. It may run while the server runs.
func Resync(ctx context.Context, o ResyncOptions) ([]ServiceResync, error) {
	if (o.Environment == "") != (o.Service == "") {
		return nil, errors.New("name both the service and its environment (SERVICE --env ENV), or neither for every service")
	}
	tok, err := fsutil.ReadToken(o.AgentTokenFile)
	if err != nil {
		return nil, fmt.Errorf("read the agent's token %s: %w (pass --agent-token-file)", o.AgentTokenFile, unwrap(err))
	}
	ac := agentapi.NewClient(o.AgentURL, tok)
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h, err := ac.Health(actx)
	if err != nil {
		return nil, fmt.Errorf("resync reads the agent's state: %w", err)
	}
	groups, err := ac.Groups(actx)
	if err != nil {
		return nil, fmt.Errorf("list the agent's groups: %w", err)
	}
	routes, err := ac.Routes(actx)
	if err != nil {
		return nil, fmt.Errorf("list the agent's routes: %w", err)
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(o.DataDir, DatabaseFile), store.Options{})
	if err != nil {
		return nil, withRecovery(err, o.DataDir)
	}
	defer st.Close()

	// Generations are kept per environment and service (the agent's fence);
	// groups and routes also name their project.
	type scope struct{ env, service string }
	gens := map[scope]int64{}
	refs := map[target.ServiceRef]bool{}
	for _, g := range groups {
		refs[target.ServiceRef{Project: g.Spec.Project, Environment: g.Spec.Environment, Service: g.Spec.Service}] = true
	}
	for _, r := range routes {
		refs[target.ServiceRef{Project: r.Project, Environment: r.Environment, Service: r.Service}] = true
	}
	for _, g := range h.Generations {
		gens[scope{g.Environment, g.Service}] = g.Generation
		known := false
		for ref := range refs {
			known = known || (ref.Environment == g.Environment && ref.Service == g.Service)
		}
		if !known {
			refs[target.ServiceRef{Environment: g.Environment, Service: g.Service}] = true
		}
	}
	var todo []target.ServiceRef
	for ref := range refs {
		if o.Service == "" || (ref.Environment == o.Environment && ref.Service == o.Service && (o.Project == "" || ref.Project == o.Project)) {
			todo = append(todo, ref)
		}
	}
	if o.Service != "" && len(todo) == 0 {
		todo = []target.ServiceRef{{Project: o.Project, Environment: o.Environment, Service: o.Service}}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].String() < todo[j].String() })
	var out []ServiceResync
	for _, ref := range todo {
		res, err := resyncService(ctx, st, ref, gens[scope{ref.Environment, ref.Service}], groups, routes)
		if err != nil {
			return out, fmt.Errorf("resync %s: %w", ref, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func resyncService(ctx context.Context, st *store.SQLite, ref target.ServiceRef, gen int64, groups []agentapi.GroupStatus, routes []agentapi.Route) (ServiceResync, error) {
	res := ServiceResync{Project: ref.Project, Environment: ref.Environment, Service: ref.Service, Generation: gen,
		Groups: []string{}, Ended: []string{}, Recorded: []string{}}
	prev, err := st.AgentGeneration(ctx, ref.Environment, ref.Service)
	if err != nil {
		return res, err
	}
	res.Previous = prev
	weight := map[string]int{}
	for _, r := range routes {
		if r.Project == ref.Project && r.Environment == ref.Environment && r.Service == ref.Service && !r.Preview {
			for _, b := range r.Backends {
				weight[b.Group] += b.Weight
			}
		}
	}
	now := time.Now()
	// Unfinished releases would resume from a point the world has left.
	// One that holds a live lease is being run by a server: that server
	// ends it (the agent refuses it), or must be stopped first.
	open, err := st.ListReleases(ctx, store.ReleaseFilter{Project: ref.Project, Environment: ref.Environment, Service: ref.Service, Unfinished: true})
	if err != nil {
		return res, err
	}
	for _, r := range open {
		if l, err := st.GetLock(ctx, engine.LockKey(ref)); err == nil && l.Owner == r.ID && l.ExpiresAt.After(now) {
			return res, fmt.Errorf("release %s is running (it holds the lock of %s until %s): wait until it ends "+
				"(a server whose store is behind ends it StoreBehind) or stop the server, then run resync again",
				r.ID, ref, l.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	for _, r := range open {
		p := r.Progress
		was := fmt.Sprintf("%s step %d", p.State, p.Step)
		p.State, p.Done, p.ErrorKind = string(engine.StateFailureDirty), true, engine.ErrStoreBehind.Error()
		p.Error = fmt.Sprintf("ended by `runway server resync` in %s: the store was behind the agent, and the agent's state was adopted", was)
		ev := &store.Event{State: p.State, Step: -1, Message: was + " → " + p.State + ": " + p.Error}
		if err := st.SaveProgress(ctx, r.ID, p, ev); err != nil && !errors.Is(err, store.ErrFinished) {
			return res, err
		}
		if err := st.ReleaseLock(ctx, engine.LockKey(ref), r.ID); err != nil && !errors.Is(err, store.ErrNotOwner) {
			return res, err
		}
		res.Ended = append(res.Ended, fmt.Sprintf("%s (v%s, was %s)", r.ID, r.Version, was))
	}
	for _, g := range groups {
		if g.Spec.Project != ref.Project || g.Spec.Environment != ref.Environment || g.Spec.Service != ref.Service || g.State == agentapi.GroupDeleting {
			continue
		}
		res.Groups = append(res.Groups, fmt.Sprintf("%s (release %s, version %s, weight %d)", g.Name, g.Spec.ReleaseID, g.Spec.Version, weight[g.Name]))
		if _, err := st.GetRelease(ctx, g.Spec.ReleaseID); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return res, err
		}
		spec, err := json.Marshal(engine.ReleaseSpec{Project: ref.Project, Environment: ref.Environment, Service: config.Service{
			Name: ref.Service, Environment: ref.Environment, Project: g.Spec.Project, Version: g.Spec.Version}})
		if err != nil {
			return res, err
		}
		rel := &store.Release{ID: g.Spec.ReleaseID, Project: ref.Project, Environment: ref.Environment, Service: ref.Service, Version: g.Spec.Version,
			CreatedBy: "runway server resync", CreatedAt: g.CreatedAt, Spec: spec,
			Progress: store.Progress{State: string(engine.StateSuccess), Done: true, FinishedAt: now}}
		if weight[g.Name] == 0 {
			rel.State, rel.ErrorKind = string(engine.StateFailureDirty), engine.ErrStoreBehind.Error()
			rel.Error = fmt.Sprintf("recorded by `runway server resync`: group %s runs on the agent without traffic", g.Name)
		}
		if err := st.CreateRelease(ctx, rel); err != nil {
			return res, err
		}
		if err := st.AppendEvent(ctx, &store.Event{ReleaseID: rel.ID, State: rel.State, Step: -1,
			Message: fmt.Sprintf("recorded by runway server resync from the agent's group %s (weight %d); the store had no record of this release", g.Name, weight[g.Name])}); err != nil {
			return res, err
		}
		res.Recorded = append(res.Recorded, fmt.Sprintf("%s (v%s, %s)", rel.ID, rel.Version, rel.State))
	}
	if err := st.ResetAgentGeneration(ctx, ref.Environment, ref.Service, gen); err != nil {
		return res, err
	}
	return res, nil
}
