-- Projects are held by the server (runway project apply): a release belongs
-- to a project, and two projects never share a release, lock or route.
-- Releases recorded before projects existed take the project their
-- resolved manifest names (their groups on the agent carry it too).

-- +goose Up
ALTER TABLE releases ADD COLUMN project TEXT NOT NULL DEFAULT '';
-- +runway sqlite
UPDATE releases SET project = COALESCE(json_extract(CAST(spec AS TEXT), '$.service.project'), '')
    WHERE project = '' AND json_valid(CAST(spec AS TEXT));
-- +runway end
-- (PostgreSQL stores start at the current schema: no release predates projects.)
DROP INDEX releases_by_service;
CREATE INDEX releases_by_service ON releases (project, environment, service, id);

CREATE TABLE projects (
    name       TEXT PRIMARY KEY,
    source     BLOB NOT NULL,   -- runway.hcl as applied
    digest     TEXT NOT NULL,   -- sha256 of source
    version    INTEGER NOT NULL, -- 1 on first apply, +1 on every change
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE projects;
DROP INDEX releases_by_service;
CREATE INDEX releases_by_service ON releases (environment, service, id);
ALTER TABLE releases DROP COLUMN project;
