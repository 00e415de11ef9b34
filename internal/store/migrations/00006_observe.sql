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

-- +goose Down
DROP TABLE service_events;
