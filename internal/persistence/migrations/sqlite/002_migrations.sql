-- The design of migrations/postgres/002_migrations.sql (read its comments) in SQLite's types.

-- +goose Up

CREATE TABLE migrations (
    id           TEXT NOT NULL,
    definition   TEXT NOT NULL,
    to_version   INTEGER NOT NULL,
    from_version INTEGER NOT NULL DEFAULT 0,
    from_state   TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL,
    total        INTEGER NOT NULL DEFAULT 0,
    migrated     INTEGER NOT NULL DEFAULT 0,
    stranded     INTEGER NOT NULL DEFAULT 0,
    result       TEXT NOT NULL DEFAULT '{}',
    error        TEXT NOT NULL DEFAULT '',
    started_at   TEXT NOT NULL,
    finished_at  TEXT,

    CONSTRAINT migrations_pkey PRIMARY KEY (id),
    CONSTRAINT migrations_definition_fkey FOREIGN KEY (definition, to_version)
        REFERENCES definitions (name, version),
    CONSTRAINT migrations_status_valid CHECK (status IN ('running', 'done', 'failed')),
    CONSTRAINT migrations_result_is_object CHECK (json_valid(result) AND json_type(result) = 'object')
) STRICT;

CREATE INDEX migrations_status_idx ON migrations (status);

ALTER TABLE transitions ADD COLUMN from_version INTEGER;

CREATE INDEX instances_definition_version_id_idx ON instances (definition, version, id) WHERE NOT final;

-- +goose Down
DROP INDEX instances_definition_version_id_idx;
ALTER TABLE transitions DROP COLUMN from_version;
DROP TABLE migrations;
