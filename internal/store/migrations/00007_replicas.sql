-- Several servers on one database (docs/design.md, "Several servers"): the
-- replica that runs each unfinished release (its runner), until when its
-- claim holds, and the claim's epoch, raised by every claim: a write that
-- carries an older epoch comes from a runner that was taken over, and is
-- refused (fencing).

-- +goose Up
ALTER TABLE releases ADD COLUMN runner TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN runner_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE releases ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE releases DROP COLUMN epoch;
ALTER TABLE releases DROP COLUMN runner_until;
ALTER TABLE releases DROP COLUMN runner;
