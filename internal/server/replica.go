package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/store"
)

// Several servers on one PostgreSQL database (docs/design.md, "Several
// servers"). Every replica serves the whole API. Releases are run by the
// replica that claims them (internal/engine/replica.go); the schedulers
// (the instance watcher, alarm evaluation and webhook delivery) run on the
// one replica that holds the scheduler lease, below.

// SchedulerLease is the store lease of the replica that runs the schedulers.
const SchedulerLease = "scheduler"

// openStore opens the store Options.Store names: SQLite in the data dir
// (refusing a lost history, as always), or a PostgreSQL database.
func openStore(ctx context.Context, ac *agentapi.Client, opts Options) (*store.SQLite, error) {
	if opts.Store != "" {
		if !store.IsPostgresURL(opts.Store) {
			return nil, fmt.Errorf("--store %q: want a postgres:// (or postgresql://) URL, or no --store for SQLite in the data dir", store.RedactURL(opts.Store))
		}
		po := opts.Postgres
		return store.OpenPostgres(ctx, opts.Store, po)
	}
	dbPath := filepath.Join(opts.DataDir, DatabaseFile)
	if err := store.CheckFiles(dbPath); err != nil {
		return nil, withRecovery(err, opts.DataDir)
	}
	if store.IsNew(dbPath) {
		if err := refuseLostHistory(ctx, ac, opts.DataDir, opts.AgentURL, "is new (missing or empty)"); err != nil {
			return nil, err
		}
	}
	st, err := store.OpenSQLite(ctx, dbPath, store.Options{})
	if err != nil {
		return nil, withRecovery(err, opts.DataDir)
	}
	return st, nil
}

// refuseEmptyPostgres is refuseLostHistory for a PostgreSQL store that
// holds nothing while the agent holds what a server recorded: the state is
// elsewhere (an embedded server's data dir, another database).
func refuseEmptyPostgres(ctx context.Context, ac *agentapi.Client, opts Options) error {
	err := refuseLostHistory(ctx, ac, opts.DataDir, opts.AgentURL, "")
	if err == nil {
		return nil
	}
	return fmt.Errorf("the store %s holds no release and no record of the agent, but the agent at %s holds the state of services a server recorded. "+
		"Nothing was changed. If an embedded server ran them, stop it and copy its state with `runway server migrate --from ITS_DATA_DIR --to %s`; "+
		"if other servers use another database, give that database's URL to --store",
		store.RedactURL(opts.Store), opts.AgentURL, store.RedactURL(opts.Store))
}

// replicaName is Options.Replica, else host name and listen address: unique
// among servers, and the same after a restart, so a restarted replica takes
// its own releases back at once.
func replicaName(opts Options) string {
	if opts.Replica != "" {
		return opts.Replica
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return h + "/" + opts.Listen
}

func (s *Server) claimTTL() time.Duration {
	if s.opts.ClaimTTL > 0 {
		return s.opts.ClaimTTL
	}
	return 15 * time.Second
}

// Replica is this server's name among replicas; empty on SQLite.
func (s *Server) Replica() string { return s.replica }

// leadership runs fn while this replica holds the lease on SchedulerLease.
type leadership struct {
	st    store.Store
	owner string
	ttl   time.Duration
	log   *slog.Logger
}

// run tries to take the lease every third of its ttl; while it holds it
// fn runs, and it is cancelled (and waited for) as soon as the lease is
// lost, or could not be renewed for a whole ttl (another replica may hold
// it by then). At the end the lease is freed, so another replica takes
// over at its next try.
func (l *leadership) run(ctx context.Context, fn func(context.Context)) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		if _, err := l.st.AcquireLock(ctx, SchedulerLease, l.owner, l.ttl); err == nil {
			l.log.Info("this replica runs the schedulers (alarms, notifications, instance events)", "replica", l.owner)
			l.lead(ctx, t, fn)
			if ctx.Err() != nil {
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = l.st.ReleaseLock(rctx, SchedulerLease, l.owner)
				cancel()
				return
			}
		} else if !errors.Is(err, store.ErrLockHeld) && ctx.Err() == nil {
			l.log.Warn("take the scheduler lease", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (l *leadership) lead(ctx context.Context, t *time.Ticker, fn func(context.Context)) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); fn(lctx) }()
	defer func() { cancel(); <-done }()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := l.st.RenewLock(ctx, SchedulerLease, l.owner, l.ttl)
		switch {
		case err == nil:
			renewed = time.Now()
		case errors.Is(err, store.ErrNotOwner):
			l.log.Warn("lost the scheduler lease to another replica", "replica", l.owner)
			return
		case ctx.Err() != nil:
			return
		default:
			l.log.Warn("renew the scheduler lease", "err", err)
			if time.Since(renewed) >= l.ttl {
				return
			}
		}
	}
}
