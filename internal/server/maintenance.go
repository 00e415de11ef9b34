package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// Maintenance implements api.Backend: the service's maintenance page on
// its target's traffic layer, on or off, recorded as an event.
func (b *backend) Maintenance(ctx context.Context, project, env, service string, req apiwire.MaintenanceRequest, actor string) (*apiwire.Maintenance, error) {
	drv, err := b.targetOf(ctx, project, env)
	if err != nil {
		return nil, err
	}
	m, ok := drv.(target.Maintainer)
	if !ok {
		return nil, apiwire.Problemf(http.StatusUnprocessableEntity, apiwire.KindBadRequest, "the target of environment %s has no maintenance mode", env)
	}
	if len(req.Message) > agentapi.MaxMaintenanceLen {
		return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"message\" is %d bytes; at most %d", len(req.Message), agentapi.MaxMaintenanceLen)
	}
	ref := target.ServiceRef{Project: project, Environment: env, Service: service}
	err = m.SetMaintenance(ctx, ref, req.On, req.Message)
	if errors.Is(err, target.ErrNoRoute) {
		return nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "service %s in %s has no route yet: release it first (runway deploy)", service, env)
	}
	if err != nil {
		return nil, err
	}
	msg, err := m.Maintenance(ctx, ref)
	if err != nil {
		return nil, err
	}
	what := "maintenance off"
	if req.On {
		what = "maintenance on: " + msg
	}
	b.record(ctx, &store.ServiceEvent{Kind: "service.maintenance", Project: project, Environment: env, Service: service, Actor: actor,
		Target: project + "/" + env + "/" + service, Message: what})
	return &apiwire.Maintenance{On: msg != "", Message: msg}, nil
}
