-- Secrets (internal/secrets): one row per key with its current version, and
-- one per version with its value sealed under a data key of its own, the
-- data key wrapped by the master key named by key_id. The master key itself
-- is never stored here. service '' is an environment-wide secret. A deleted
-- key keeps its row (deleted = 1) so a key put again continues its version
-- numbers: a release pinning version 2 never receives another value as v2.

-- +goose Up
CREATE TABLE secrets (
    project         TEXT NOT NULL,
    environment     TEXT NOT NULL,
    service         TEXT NOT NULL,
    key             TEXT NOT NULL,
    current_version INTEGER NOT NULL,
    deleted         INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    changed_at      BIGINT NOT NULL,
    accessed_at     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project, environment, service, key)
);

CREATE TABLE secret_versions (
    project     TEXT NOT NULL,
    environment TEXT NOT NULL,
    service     TEXT NOT NULL,
    key         TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    rollback_of INTEGER NOT NULL DEFAULT 0,
    key_id      TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    PRIMARY KEY (project, environment, service, key, version)
);
CREATE INDEX secret_versions_by_key_id ON secret_versions (key_id);

-- +goose Down
DROP TABLE secret_versions;
DROP TABLE secrets;
