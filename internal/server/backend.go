package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/driver/local"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
)

// backend implements api.Backend over the store and the engine.
type backend struct {
	st  store.Store
	eng *engine.Engine
	drv *local.Driver
}

var _ api.Backend = (*backend)(nil)

// Namespaces of the key/value table.
const (
	nsRequests  = "requests"    // request id -> release id (replay protection)
	nsRollbacks = "rollback_of" // release id -> the release it rolls back to
)

func (b *backend) Deploy(ctx context.Context, req api.DeployRequest, actor string) (*api.Release, error) {
	rel, id, err := b.replayed(ctx, req.RequestID)
	if rel != nil || err != nil {
		return rel, err
	}
	var svc config.Service
	if err := json.Unmarshal(req.Manifest, &svc); err != nil {
		return nil, api.Problemf(http.StatusBadRequest, "BadRelease", "field \"manifest\" is not a resolved manifest: %v", err)
	}
	if svc.Name != req.Service || svc.Environment != req.Environment {
		return nil, api.Problemf(http.StatusBadRequest, "BadRelease", "the manifest is for service %q in environment %q, not %q in %q", svc.Name, svc.Environment, req.Service, req.Environment)
	}
	return b.submit(ctx, req.RequestID, id, engine.Request{Environment: req.Environment, Protected: svc.Protected, Service: svc, Version: req.Version, CreatedBy: actor}, "")
}

// submit records and starts a release. Its id is chosen and mapped to the
// request id (and to the release it rolls back to) before the release is
// recorded: a server killed in between leaves a mapping without a release,
// which the retried request (same request id) completes, never a release the
// retry cannot find and would duplicate. id is the id a previous attempt of
// the request chose, or empty.
func (b *backend) submit(ctx context.Context, requestID, id string, req engine.Request, rollbackOf string) (*api.Release, error) {
	if id == "" {
		id = store.NewID(time.Now())
		if err := b.st.Put(ctx, nsRequests, requestID, []byte(id)); err != nil {
			return nil, err
		}
	}
	if rollbackOf != "" {
		if err := b.st.Put(ctx, nsRollbacks, id, []byte(rollbackOf)); err != nil {
			return nil, err
		}
	}
	req.ID = id
	r, err := b.eng.Submit(ctx, req)
	if errors.Is(err, store.ErrExists) {
		// A concurrent retry of the same request recorded it first.
		if r, err = b.st.GetRelease(ctx, id); err == nil {
			return b.toAPI(ctx, r, false), nil
		}
	}
	if err != nil {
		return nil, err
	}
	return b.toAPI(ctx, r, false), nil
}

// replayed returns the release a request id already created, or, when an
// earlier attempt of the request chose an id but did not record its release
// (the server died in between), that id to record it under.
func (b *backend) replayed(ctx context.Context, requestID string) (*api.Release, string, error) {
	id, err := b.st.Get(ctx, nsRequests, requestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	r, err := b.st.GetRelease(ctx, string(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, string(id), nil
	}
	if err != nil {
		return nil, "", err
	}
	return b.toAPI(ctx, r, false), "", nil
}

func (b *backend) Rollback(ctx context.Context, req api.RollbackRequest, actor string) (*api.Release, error) {
	rel, id, err := b.replayed(ctx, req.RequestID)
	if rel != nil || err != nil {
		return rel, err
	}
	list, err := b.st.ListReleases(ctx, store.ReleaseFilter{Environment: req.Environment, Service: req.Service, Limit: 200})
	if err != nil {
		return nil, err
	}
	if rel, ok, err := b.switchBack(ctx, req, list, actor); ok || err != nil {
		return rel, err
	}
	var target *store.Release
	if req.To != "" {
		for _, r := range list {
			if r.ID == req.To {
				target = r
			}
		}
		if target == nil {
			return nil, api.Problemf(http.StatusNotFound, "NotFound", "release %s is not a release of %s in %s", req.To, req.Service, req.Environment)
		}
	} else {
		// The newest successful release is what serves now; roll back to the
		// successful one before it.
		seen := 0
		for _, r := range list {
			if r.State == string(engine.StateSuccess) {
				seen++
				if seen == 2 {
					target = r
					break
				}
			}
		}
		if target == nil {
			return nil, api.Problemf(http.StatusConflict, "NothingToRollBack", "%s in %s has no earlier successful release to roll back to; name one with --to", req.Service, req.Environment)
		}
	}
	spec, err := engine.DecodeSpec(target.Spec)
	if err != nil {
		return nil, err
	}
	return b.submit(ctx, req.RequestID, id, engine.Request{Environment: spec.Environment, Protected: spec.Protected, Service: spec.Service, CreatedBy: actor}, target.ID)
}

// switchBack is the instant rollback: while the newest release of the
// service is in CleanUpSuccess, its scale_down_delay may still keep the
// previous groups; halting it then switches the traffic straight back to them
// (the engine ignores the halt once the window has closed, and the release
// ends Success). It applies when no target is named or the target is the
// release that served before. list is newest first.
func (b *backend) switchBack(ctx context.Context, req api.RollbackRequest, list []*store.Release, actor string) (*api.Release, bool, error) {
	var cur, prev *store.Release
	for _, r := range list {
		switch {
		case cur == nil && !r.Done:
			if r.State != string(engine.StateCleanUpSuccess) {
				return nil, false, nil
			}
			cur = r
		case cur != nil && r.State == string(engine.StateSuccess):
			prev = r
		}
		if prev != nil {
			break
		}
	}
	if cur == nil || prev == nil || (req.To != "" && req.To != prev.ID) {
		return nil, false, nil
	}
	if err := b.eng.Halt(ctx, cur.ID, fmt.Sprintf("rolled back by %s: switching back to release %s", actor, prev.ID)); err != nil {
		return nil, false, err
	}
	if err := b.st.Put(ctx, nsRollbacks, cur.ID, []byte(prev.ID)); err != nil {
		return nil, false, err
	}
	if err := b.st.Put(ctx, nsRequests, req.RequestID, []byte(cur.ID)); err != nil {
		return nil, false, err
	}
	out := b.toAPI(ctx, cur, false)
	out.SwitchBack = true
	return out, true, nil
}

func (b *backend) Halt(ctx context.Context, id, reason, actor string) error {
	r, err := b.st.GetRelease(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return api.Problemf(http.StatusNotFound, "NotFound", "no release %s", id)
	}
	if err != nil {
		return err
	}
	if r.Done {
		return api.Problemf(http.StatusConflict, "ReleaseFinished", "release %s already ended in %s", id, r.State)
	}
	if reason == "" {
		reason = "halted by " + actor
	}
	return b.eng.Halt(ctx, id, reason)
}

func (b *backend) Release(ctx context.Context, id string) (*api.ReleaseDetail, error) {
	r, err := b.st.GetRelease(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.Problemf(http.StatusNotFound, "NotFound", "no release %s", id)
	}
	if err != nil {
		return nil, err
	}
	evs, err := b.st.ListEvents(ctx, id)
	if err != nil {
		return nil, err
	}
	out := &api.ReleaseDetail{Release: *b.toAPI(ctx, r, true), Events: []api.Event{}}
	for _, e := range evs {
		out.Events = append(out.Events, api.Event{At: e.At, State: e.State, Step: e.Step, Message: e.Message})
	}
	return out, nil
}

func (b *backend) Releases(ctx context.Context, f api.ReleaseFilter) ([]*api.Release, error) {
	list, err := b.st.ListReleases(ctx, store.ReleaseFilter{Environment: f.Environment, Service: f.Service, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]*api.Release, 0, len(list))
	for _, r := range list {
		out = append(out, b.toAPI(ctx, r, false))
	}
	return out, nil
}

func (b *backend) Status(ctx context.Context, env, service string) (*api.ServiceStatus, error) {
	list, err := b.st.ListReleases(ctx, store.ReleaseFilter{Environment: env, Service: service, Limit: 100})
	if err != nil {
		return nil, err
	}
	st := &api.ServiceStatus{Environment: env, Service: service, Groups: []api.Group{}, Routes: []api.Route{}}
	versions := map[string]string{}
	for _, r := range list {
		versions[r.ID] = r.Version
		if !r.Done && st.InProgress == nil {
			st.InProgress = b.toAPI(ctx, r, false)
		}
		if r.State == string(engine.StateSuccess) && st.Current == nil {
			st.Current = b.toAPI(ctx, r, true)
		}
	}
	ref := engine.ServiceRef{Environment: env, Service: service}
	groups, err := b.drv.ListGroups(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("list groups of %s: %w", ref, err)
	}
	for _, g := range groups {
		st.Groups = append(st.Groups, api.Group{Name: g.Name, Release: g.Release, Version: versions[g.Release],
			Desired: g.Status.Desired, Healthy: g.Status.Healthy, Starting: g.Status.Starting, Unhealthy: g.Status.Unhealthy})
	}
	routes, err := b.drv.Routes(ctx, ref)
	if err != nil {
		return nil, err
	}
	lead, best := "", 0
	for _, r := range routes {
		st.Routes = append(st.Routes, api.Route{Group: r.Group, Weight: r.Weight})
		if r.Weight > best {
			lead, best = r.Group, r.Weight
		}
	}
	// The current release is the one that serves: the finished release of
	// the group with the most traffic, when the store knows it (after a
	// restored backup the newest Success may no longer be what runs).
	for _, g := range groups {
		if g.Name != lead {
			continue
		}
		known := false
		for _, r := range list {
			if r.ID == g.Release {
				known = true
				if r.Done {
					st.Current = b.toAPI(ctx, r, true)
				}
			}
		}
		if !known {
			// What serves is unknown to this server's records (they went
			// back in time): naming an older release would be false.
			st.Current = nil
		}
	}
	if msg, err := b.drv.StoreBehind(ctx, ref); err == nil {
		st.StoreBehind = msg
	}
	return st, nil
}

// toAPI converts a stored release; withManifest includes the resolved manifest.
func (b *backend) toAPI(ctx context.Context, r *store.Release, withManifest bool) *api.Release {
	out := &api.Release{
		ID: r.ID, Environment: r.Environment, Service: r.Service, Version: r.Version, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt, Digest: r.Digest, State: r.State, Done: r.Done, ErrorKind: r.ErrorKind, Error: r.Error,
		Served: r.Served, Failed: r.Failed,
	}
	if !r.FinishedAt.IsZero() {
		t := r.FinishedAt
		out.FinishedAt = &t
	}
	if v, err := b.st.Get(ctx, nsRollbacks, r.ID); err == nil {
		out.RollbackOf = string(v)
	}
	if withManifest {
		if spec, err := engine.DecodeSpec(r.Spec); err == nil {
			out.Manifest, _ = json.Marshal(spec.Service)
		}
	}
	return out
}
