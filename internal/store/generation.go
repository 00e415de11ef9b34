package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AgentGeneration is the generation of one service on the agent that this
// store last recorded (docs/design.md, "Fencing").
type AgentGeneration struct {
	Environment string
	Service     string
	Generation  int64
}

// AgentGeneration returns the agent generation recorded for a service; 0
// when none is.
func (s *SQLite) AgentGeneration(ctx context.Context, environment, service string) (int64, error) {
	var g int64
	err := s.db.QueryRowContext(ctx, `SELECT generation FROM agent_generations WHERE environment = ? AND service = ?`, environment, service).Scan(&g)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the agent generation of %s/%s: %w", environment, service, err)
	}
	return g, nil
}

// RecordAgentGeneration records that the agent answered with generation g
// for a service. Records only go up: an answer that arrives after a newer
// one does not lower it.
func (s *SQLite) RecordAgentGeneration(ctx context.Context, environment, service string, g int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO agent_generations (environment, service, generation, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (environment, service) DO UPDATE SET generation = excluded.generation, updated_at = excluded.updated_at
		WHERE excluded.generation > agent_generations.generation`,
		environment, service, g, nanos(s.now()))
	if err != nil {
		return fmt.Errorf("record the agent generation of %s/%s: %w", environment, service, err)
	}
	return nil
}

// ResetAgentGeneration sets the recorded generation of a service to g, lower
// or higher: `runway server resync` adopts the agent's.
func (s *SQLite) ResetAgentGeneration(ctx context.Context, environment, service string, g int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO agent_generations (environment, service, generation, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (environment, service) DO UPDATE SET generation = excluded.generation, updated_at = excluded.updated_at`,
		environment, service, g, nanos(s.now()))
	if err != nil {
		return fmt.Errorf("record the agent generation of %s/%s: %w", environment, service, err)
	}
	return nil
}

// AgentGenerations lists every recorded service generation.
func (s *SQLite) AgentGenerations(ctx context.Context) ([]AgentGeneration, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT environment, service, generation FROM agent_generations ORDER BY environment, service`)
	if err != nil {
		return nil, fmt.Errorf("list agent generations: %w", err)
	}
	defer rows.Close()
	var out []AgentGeneration
	for rows.Next() {
		var g AgentGeneration
		if err := rows.Scan(&g.Environment, &g.Service, &g.Generation); err != nil {
			return nil, fmt.Errorf("list agent generations: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
