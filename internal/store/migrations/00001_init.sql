-- Releases, their events, leases and a small key/value table.
-- Times are Unix nanoseconds (UTC); ids are ULIDs, so ordering by id is
-- ordering by creation. Kept to types PostgreSQL has as well.

-- +goose Up
CREATE TABLE releases (
    id              TEXT PRIMARY KEY,
    environment     TEXT NOT NULL,
    service         TEXT NOT NULL,
    version         TEXT NOT NULL DEFAULT '',
    created_by      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    digest          TEXT NOT NULL DEFAULT '',
    spec            BLOB NOT NULL,
    -- progress, written by the engine before each action
    state           TEXT NOT NULL,
    step            INTEGER NOT NULL DEFAULT 0,
    step_started_at BIGINT NOT NULL DEFAULT 0,
    plan            BLOB,
    error_kind      TEXT NOT NULL DEFAULT '',
    error           TEXT NOT NULL DEFAULT '',
    deadline        BIGINT NOT NULL DEFAULT 0,
    served          BIGINT NOT NULL DEFAULT 0,
    failed          BIGINT NOT NULL DEFAULT 0,
    done            INTEGER NOT NULL DEFAULT 0,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT NOT NULL DEFAULT 0,
    -- written by halt, never by the engine's progress updates
    halt_requested  INTEGER NOT NULL DEFAULT 0,
    halt_reason     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX releases_by_service ON releases (environment, service, id);
CREATE INDEX releases_unfinished ON releases (done, id);

CREATE TABLE release_events (
    id         TEXT PRIMARY KEY,
    release_id TEXT NOT NULL REFERENCES releases (id),
    at         BIGINT NOT NULL,
    state      TEXT NOT NULL,
    step       INTEGER NOT NULL,
    message    TEXT NOT NULL,
    data       BLOB
);
CREATE INDEX release_events_by_release ON release_events (release_id, id);

CREATE TABLE leases (
    key         TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE kv (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, key)
);

-- +goose Down
DROP TABLE kv;
DROP TABLE leases;
DROP TABLE release_events;
DROP TABLE releases;
