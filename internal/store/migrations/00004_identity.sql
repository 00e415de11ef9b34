-- Identity: users with roles, their API tokens (stored only as hashes), and
-- the audit log, an append-only hash chain (internal/audit computes the
-- hashes; the triggers refuse updates and deletes, and `runway audit
-- verify` checks that they still exist).

-- +goose Up
CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    roles      TEXT NOT NULL,            -- JSON array of role strings
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users (name),
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL UNIQUE,     -- sha256 of the token; the token itself is never stored
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,          -- 0: never
    revoked_at BIGINT NOT NULL DEFAULT 0,
    last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_by_user ON tokens (user_name, id);

CREATE TABLE audit (
    seq            INTEGER PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    token_id       TEXT NOT NULL,
    source         TEXT NOT NULL,
    action         TEXT NOT NULL,
    project        TEXT NOT NULL,
    environment    TEXT NOT NULL,
    target         TEXT NOT NULL,
    request_digest TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
-- +runway sqlite
-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- +goose StatementEnd
-- +runway end
--postgres CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
--postgres CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
--postgres CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
--postgres CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- +goose Down
-- +runway sqlite
DROP TRIGGER audit_no_delete;
DROP TRIGGER audit_no_update;
-- +runway end
--postgres DROP TRIGGER audit_no_truncate ON audit;
--postgres DROP TRIGGER audit_no_delete ON audit;
--postgres DROP TRIGGER audit_no_update ON audit;
--postgres DROP FUNCTION audit_append_only();
DROP TABLE audit;
DROP INDEX tokens_by_user;
DROP TABLE tokens;
DROP TABLE users;
