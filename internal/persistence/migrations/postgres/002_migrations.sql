-- Migrations of running instances from older versions of a definition to a newer one
-- (internal/migration). migrations/sqlite/002_migrations.sql is the same design in SQLite's types.

-- +goose Up

-- migrations: one row per requested or automatic migration, its progress and its result. A
-- migration interrupted by a crash is still 'running': fsmd resumes it at start.
CREATE TABLE migrations (
    id          text COLLATE "C" NOT NULL,
    definition  text COLLATE "C" NOT NULL,
    to_version  integer NOT NULL,
    -- the body's filter: only instances of this version and/or state (0 and '' for any).
    from_version integer NOT NULL DEFAULT 0,
    from_state  text NOT NULL DEFAULT '',
    status      text NOT NULL,
    total       bigint NOT NULL DEFAULT 0,
    migrated    bigint NOT NULL DEFAULT 0,
    stranded    bigint NOT NULL DEFAULT 0,
    -- the plan's shape (moves and stranded per version and state) of what was done; {} while running.
    result      jsonb NOT NULL DEFAULT '{}',
    error       text NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,

    CONSTRAINT migrations_pkey PRIMARY KEY (id),
    CONSTRAINT migrations_definition_fkey FOREIGN KEY (definition, to_version)
        REFERENCES definitions (name, version),
    CONSTRAINT migrations_status_valid CHECK (status IN ('running', 'done', 'failed'))
);

CREATE INDEX migrations_status_idx ON migrations (status);

-- the version an instance came from, on a migration's audit row (NULL on the others).
ALTER TABLE transitions ADD COLUMN from_version integer;

-- the running instances of a version, in id order: what a migration reads batch by batch.
CREATE INDEX instances_definition_version_id_idx ON instances (definition, version, id) WHERE NOT final;

-- +goose Down
DROP INDEX instances_definition_version_id_idx;
ALTER TABLE transitions DROP COLUMN from_version;
DROP TABLE migrations;
