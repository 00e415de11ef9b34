package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// ResyncHint is how to recover a service whose store is behind the agent.
func ResyncHint(dataDir string, ref target.ServiceRef) string {
	return fmt.Sprintf("Check `runway status %s --env %s`, then run `runway server resync --data-dir %s %s --env %s` to adopt the agent's current state (docs/operations.md).",
		ref.Service, ref.Environment, dataDir, ref.Service, ref.Environment)
}

// withRecovery adds to a damaged-database error how to recover.
func withRecovery(err error, dataDir string) error {
	if !errors.Is(err, store.ErrDamaged) {
		return err
	}
	db := filepath.Join(dataDir, DatabaseFile)
	return fmt.Errorf("%w. Nothing was changed. Restore the database from a backup (docs/operations.md, \"Restore\"): "+
		"stop the server, copy the backup to %s and remove the %s-wal and %s-shm beside it. Without a backup, move %s, %s-wal "+
		"and %s-shm out of %s and rebuild the current state from the agent with `runway server resync --data-dir %s`",
		err, db, DatabaseFile, DatabaseFile, DatabaseFile, DatabaseFile, DatabaseFile, dataDir, dataDir)
}

// refuseLostHistory refuses to start on a new (missing or empty) database,
// or one that holds no release and no agent generation (what is left of a
// database whose WAL was lost before its first checkpoint), when the agent
// holds the state a server recorded: the server's history is gone, and
// starting empty would hide that. An unreachable agent is not
// a reason to refuse: its fence still refuses every call of this server
// on those services.
func refuseLostHistory(ctx context.Context, ac *agentapi.Client, dataDir, agentURL, what string) error {
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h, err := ac.Health(hctx)
	if err != nil {
		return nil
	}
	var known []string
	for _, g := range h.Generations {
		if g.Fence > 0 {
			known = append(known, fmt.Sprintf("%s/%s at generation %d", g.Environment, g.Service, g.Generation))
		}
	}
	if len(known) == 0 {
		return nil
	}
	db := filepath.Join(dataDir, DatabaseFile)
	return fmt.Errorf("the database %s %s, but the agent at %s holds the state of services a server recorded (%s): "+
		"this server's history is gone. Nothing was changed. Restore the database from a backup (docs/operations.md, \"Restore\"), "+
		"or rebuild the current state from the agent with `runway server resync --data-dir %s`, then start the server again",
		db, what, agentURL, strings.Join(known, ", "), dataDir)
}

// logStoreBehind logs, at start, every service the agent fences this
// server from.
func (s *Server) logStoreBehind(ctx context.Context) {
	if s.drv == nil {
		return // no agent
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h, err := s.agent.Health(hctx)
	if err != nil {
		s.opts.Logger.Warn("cannot check the agent's generations at start", "err", err)
		return
	}
	for _, g := range h.Generations {
		ref := target.ServiceRef{Environment: g.Environment, Service: g.Service}
		msg, err := s.drv.StoreBehind(hctx, ref)
		if err == nil && msg != "" {
			s.opts.Logger.Error("the store is behind the agent: the server will not act on this service", "service", ref.String(), "problem", msg)
		}
	}
}

// emptyHistory reports whether st holds no release and no agent generation.
func emptyHistory(ctx context.Context, st *store.SQLite) (bool, error) {
	rs, err := st.ListReleases(ctx, store.ReleaseFilter{Limit: 1})
	if err != nil || len(rs) > 0 {
		return false, err
	}
	gs, err := st.AgentGenerations(ctx)
	return len(gs) == 0, err
}
