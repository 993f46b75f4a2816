-- The design of migrations/postgres/012_admin.sql (read its comments) in SQLite's types.

-- +goose Up
ALTER TABLE instances ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0 CHECK (suspended IN (0, 1));
ALTER TABLE instances ADD COLUMN terminated INTEGER NOT NULL DEFAULT 0 CHECK (terminated IN (0, 1));
CREATE INDEX instances_suspended_idx ON instances (id) WHERE suspended;

-- The audit rows' source may be 'admin', 'repair' or 'bulk': SQLite cannot change a constraint, so
-- the table is rebuilt with the new one, as 008_messages.sql did.
CREATE TABLE transitions_new (
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
    from_version       INTEGER,
    dropped            TEXT,
    actor              TEXT,
    actor_kind         TEXT NOT NULL DEFAULT ''
        CHECK (actor_kind IN ('', 'user', 'timer', 'message', 'migration', 'system')),

    CONSTRAINT transitions_pkey PRIMARY KEY (instance_id, seq),
    CONSTRAINT transitions_instance_id_idempotency_key_key UNIQUE (instance_id, idempotency_key),
    CONSTRAINT transitions_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT transitions_seq_positive CHECK (seq >= 1),
    CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration', 'message', 'assign', 'admin', 'repair', 'bulk')),
    CONSTRAINT transitions_idempotency_key_not_empty CHECK (idempotency_key IS NULL OR idempotency_key <> ''),
    CONSTRAINT transitions_guards_is_array CHECK (json_valid(guards) AND json_type(guards) = 'array'),
    CONSTRAINT transitions_payload_is_object CHECK (json_valid(payload) AND json_type(payload) = 'object'),
    CONSTRAINT transitions_context_before_is_object CHECK (json_valid(context_before) AND json_type(context_before) = 'object'),
    CONSTRAINT transitions_context_after_is_object CHECK (json_valid(context_after) AND json_type(context_after) = 'object'),
    CONSTRAINT transitions_definition_version_positive CHECK (definition_version >= 1)
) STRICT;

INSERT INTO transitions_new (instance_id, seq, event, from_state, to_state, branch, guards, payload, context_before,
    context_after, source, request_id, idempotency_key, request_hash, definition_version, at, from_version, dropped, actor, actor_kind)
SELECT instance_id, seq, event, from_state, to_state, branch, guards, payload, context_before,
    context_after, source, request_id, idempotency_key, request_hash, definition_version, at, from_version, dropped, actor, actor_kind
FROM transitions;

DROP TABLE transitions;

ALTER TABLE transitions_new RENAME TO transitions;

CREATE TABLE bulks (
    id          TEXT NOT NULL,
    definition  TEXT NOT NULL,
    request     TEXT NOT NULL CHECK (json_valid(request)),
    status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'cancelled', 'failed')),
    total       INTEGER NOT NULL DEFAULT 0,
    applied     INTEGER NOT NULL DEFAULT 0,
    refused     INTEGER NOT NULL DEFAULT 0,
    outcomes    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(outcomes)),
    cursor      TEXT NOT NULL DEFAULT '',
    pending     TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    finished_at TEXT,

    CONSTRAINT bulks_pkey PRIMARY KEY (id)
) STRICT;
CREATE UNIQUE INDEX bulks_one_running_idx ON bulks (definition) WHERE status = 'running';

-- +goose Down
-- (the audit rows keep the wider constraint: rebuilding the table back would gain nothing)
DROP TABLE bulks;
DELETE FROM transitions WHERE source IN ('admin', 'repair', 'bulk');
DROP INDEX instances_suspended_idx;
ALTER TABLE instances DROP COLUMN terminated;
ALTER TABLE instances DROP COLUMN suspended;
