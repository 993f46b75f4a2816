-- fsmd's schema on SQLite: the design of migrations/postgres/001_initial_schema.sql (read its
-- comments for what each table and column is) in SQLite's types. A change to one is made to both.
--
-- STRICT tables: a value of the wrong type is refused, not converted.
--   * times are TEXT, UTC RFC 3339 with nanoseconds at fixed width (2026-01-02T15:04:05.000000000Z),
--     so they sort as text; the column type is TEXT, not DATETIME, so the driver hands the text back
--     as it is and persistence parses it.
--   * JSON is TEXT checked by json_valid, stored byte for byte.
--   * booleans are INTEGER 0 or 1.
-- Text compares in byte order (BINARY), as COLLATE "C" does on PostgreSQL.

-- +goose Up

CREATE TABLE definitions (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    source      TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,

    CONSTRAINT definitions_pkey PRIMARY KEY (name, version),
    CONSTRAINT definitions_name_hash_key UNIQUE (name, hash),
    CONSTRAINT definitions_name_not_empty CHECK (name <> ''),
    CONSTRAINT definitions_version_positive CHECK (version >= 1),
    CONSTRAINT definitions_hash_not_empty CHECK (hash <> '')
) STRICT;

CREATE TABLE instances (
    id          TEXT NOT NULL,
    definition  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    state       TEXT NOT NULL,
    context     TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    final       INTEGER NOT NULL,
    create_hash TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    entered_at  TEXT NOT NULL,

    CONSTRAINT instances_pkey PRIMARY KEY (id),
    CONSTRAINT instances_definition_fkey FOREIGN KEY (definition, version)
        REFERENCES definitions (name, version),
    CONSTRAINT instances_id_not_empty CHECK (id <> ''),
    CONSTRAINT instances_state_not_empty CHECK (state <> ''),
    CONSTRAINT instances_context_is_object CHECK (json_valid(context) AND json_type(context) = 'object'),
    CONSTRAINT instances_revision_not_negative CHECK (revision >= 0),
    CONSTRAINT instances_final_is_boolean CHECK (final IN (0, 1))
) STRICT;

-- GET /v1/instances?definition=&state= pages in id order.
CREATE INDEX instances_definition_state_id_idx ON instances (definition, state, id);

-- the running (not final) instances of a definition.
CREATE INDEX instances_definition_final_idx ON instances (definition, final);

CREATE TABLE transitions (
    instance_id        TEXT NOT NULL,
    seq                INTEGER NOT NULL,
    event              TEXT NOT NULL,
    from_state         TEXT NOT NULL,
    to_state           TEXT NOT NULL,
    branch             INTEGER NOT NULL,
    guards             TEXT NOT NULL,
    payload            TEXT NOT NULL,
    context_before     TEXT NOT NULL,
    context_after      TEXT NOT NULL,
    source             TEXT NOT NULL,
    request_id         TEXT NOT NULL,
    idempotency_key    TEXT,
    request_hash       TEXT NOT NULL,
    definition_version INTEGER NOT NULL,
    at                 TEXT NOT NULL,

    CONSTRAINT transitions_pkey PRIMARY KEY (instance_id, seq),
    CONSTRAINT transitions_instance_id_idempotency_key_key UNIQUE (instance_id, idempotency_key),
    CONSTRAINT transitions_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT transitions_seq_positive CHECK (seq >= 1),
    CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration')),
    CONSTRAINT transitions_idempotency_key_not_empty CHECK (idempotency_key IS NULL OR idempotency_key <> ''),
    CONSTRAINT transitions_guards_is_array CHECK (json_valid(guards) AND json_type(guards) = 'array'),
    CONSTRAINT transitions_payload_is_object CHECK (json_valid(payload) AND json_type(payload) = 'object'),
    CONSTRAINT transitions_context_before_is_object CHECK (json_valid(context_before) AND json_type(context_before) = 'object'),
    CONSTRAINT transitions_context_after_is_object CHECK (json_valid(context_after) AND json_type(context_after) = 'object'),
    CONSTRAINT transitions_definition_version_positive CHECK (definition_version >= 1)
) STRICT;

-- +goose Down
DROP TABLE transitions;
DROP TABLE instances;
DROP TABLE definitions;
