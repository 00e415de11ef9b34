package local

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/target"
)

// Generations is where the driver keeps, per service, the agent generation
// it last saw: the server's store (store.SQLite). See docs/design.md,
// "Fencing".
type Generations interface {
	AgentGeneration(ctx context.Context, environment, service string) (int64, error)
	RecordAgentGeneration(ctx context.Context, environment, service string, generation int64) error
}

// Fencing makes every mutating agent call of the driver carry the
// generation recorded in gens (Runway-Expect-Generation) and record the
// generation the agent answers, so that an agent refuses this server once
// its store is behind. recover names, for a service, how to recover (the
// `runway server resync` command line).
func (d *Driver) Fencing(gens Generations, recover func(target.ServiceRef) string) {
	d.gens, d.recover = gens, recover
}

// fence is the record of one service during one driver call.
type fence struct {
	d   *Driver
	ref target.ServiceRef

	mu     sync.Mutex
	expect int64
}

// Expect implements agentapi.Fence.
func (f *fence) Expect() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.expect
}

// Saw implements agentapi.Fence: the generation is recorded before the driver
// sends it, so what a call carries is always in the store.
func (f *fence) Saw(ctx context.Context, g int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g <= f.expect {
		return
	}
	if err := f.d.gens.RecordAgentGeneration(context.WithoutCancel(ctx), f.ref.Environment, f.ref.Service, g); err != nil {
		// The next call sends the older record, which the agent admits.
		f.d.log.Warn("record the agent generation", "service", f.ref.String(), "generation", g, "err", err)
		return
	}
	f.expect = g
}

// fenced returns ctx carrying ref's fence (ctx itself without fencing).
func (d *Driver) fenced(ctx context.Context, ref target.ServiceRef) (context.Context, error) {
	if d.gens == nil {
		return ctx, nil
	}
	g, err := d.gens.AgentGeneration(ctx, ref.Environment, ref.Service)
	if err != nil {
		return nil, err
	}
	return agentapi.WithFence(ctx, &fence{d: d, ref: ref, expect: g}), nil
}

// refusal turns the agent's store-behind refusal into an error wrapping
// target.ErrStoreBehind that says what is wrong and how to recover, and
// logs it.
func (d *Driver) refusal(ctx context.Context, ref target.ServiceRef, err error) error {
	if err == nil || errors.Is(err, target.ErrStoreBehind) || !agentapi.IsStoreBehind(err) {
		return err
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	msg, herr := d.StoreBehind(hctx, ref)
	if herr != nil || msg == "" {
		msg = fmt.Sprintf("the agent refused to act on %s: %v; %s", ref, err, d.recoverHint(ref))
	}
	d.log.Error("refusing to act on a service: the store is behind the agent", "service", ref.String(), "problem", msg)
	return storeBehindError(msg)
}

// storeBehindError is a refusal whose message says it all;
// errors.Is(err, target.ErrStoreBehind) is true.
type storeBehindError string

func (e storeBehindError) Error() string { return string(e) }

// Is makes errors.Is(err, target.ErrStoreBehind) true.
func (e storeBehindError) Is(err error) bool { return err == target.ErrStoreBehind }

func (d *Driver) recoverHint(ref target.ServiceRef) string {
	if d.recover != nil {
		return d.recover(ref)
	}
	return "run `runway server resync` to adopt the agent's current state"
}

// StoreBehind reports whether this server's record of ref is behind the
// agent: then a message that says so and how to recover, else "". It asks
// the agent (an error when it is unreachable).
func (d *Driver) StoreBehind(ctx context.Context, ref target.ServiceRef) (string, error) {
	h, err := d.agent.Health(ctx)
	if err != nil {
		return "", err
	}
	if d.gens == nil {
		return "", nil
	}
	for _, g := range h.Generations {
		if g.Environment != ref.Environment || g.Service != ref.Service {
			continue
		}
		rec, err := d.gens.AgentGeneration(ctx, ref.Environment, ref.Service)
		if err != nil {
			return "", err
		}
		if rec >= g.Fence {
			return "", nil
		}
		return fmt.Sprintf("this server's store is behind the agent for %s: it recorded agent generation %d, but a server already acted "+
			"at generation %d (the agent is at %d). The store was restored from an older copy or lost its WAL; acting on it could bring "+
			"back an old version, so this server does not touch %s. %s",
			ref, rec, g.Fence, g.Generation, ref, d.recoverHint(ref)), nil
	}
	return "", nil
}
