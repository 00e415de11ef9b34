-- Observability (issue 14): what happened to a service besides its releases'
-- steps (those stay in release_events): instances starting, exiting, turning
-- healthy or unhealthy, groups scaled, halts asked for, projects applied.
-- Ids are ULIDs from the same generator as release_events', so the two
-- tables merge in order by id (store.Feed).

-- +goose Up
CREATE TABLE service_events (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    project     TEXT NOT NULL DEFAULT '',
    environment TEXT NOT NULL DEFAULT '',
    service     TEXT NOT NULL DEFAULT '',
    release_id  TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL DEFAULT '',
    target      TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL
);
CREATE INDEX service_events_by_service ON service_events (project, environment, service, id);

-- The state of every alarm (a manifest's alarm blocks and the built-in
-- ones), as the server last evaluated it.
CREATE TABLE alarm_states (
    project       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    service       TEXT NOT NULL,
    name          TEXT NOT NULL,
    state         TEXT NOT NULL,   -- OK, ALERT, NO_DATA
    since         BIGINT NOT NULL, -- when it entered state
    pending_since BIGINT NOT NULL DEFAULT 0, -- when its condition began to hold (for)
    value         TEXT NOT NULL DEFAULT '',
    detail        BLOB,            -- the alarm's definition, JSON
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (project, environment, service, name)
);

-- Notifications to webhooks: one row per alarm change and channel, retried
-- with backoff until delivered or 10 minutes old.
CREATE TABLE notifications (
    id           TEXT PRIMARY KEY,
    created_at   BIGINT NOT NULL,
    project      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    service      TEXT NOT NULL,
    alarm        TEXT NOT NULL,
    channel      TEXT NOT NULL,
    payload      BLOB NOT NULL,
    state        TEXT NOT NULL,   -- pending, delivered, failed
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    delivered_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX notifications_due ON notifications (state, next_at);

-- +goose Down
DROP TABLE notifications;
DROP TABLE alarm_states;
DROP TABLE service_events;
