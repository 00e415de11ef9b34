-- Fencing (docs/design.md, "Fencing"): the agent generation this server last
-- saw per service, and, with each release step, the generation the release's
-- service was at when the step was recorded.

-- +goose Up
CREATE TABLE agent_generations (
    environment TEXT NOT NULL,
    service     TEXT NOT NULL,
    generation  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (environment, service)
);
ALTER TABLE releases ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE releases DROP COLUMN generation;
DROP TABLE agent_generations;
