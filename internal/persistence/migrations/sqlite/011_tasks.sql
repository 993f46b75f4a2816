-- The design of migrations/postgres/011_tasks.sql (read its comments) in SQLite's types: the
-- worklist reads assignees with json_each, over the instances that have any.

-- +goose Up
ALTER TABLE instances ADD COLUMN assignees TEXT
    CHECK (assignees IS NULL OR (json_valid(assignees) AND json_type(assignees) = 'array'));
ALTER TABLE instances ADD COLUMN due_at TEXT;
CREATE INDEX instances_assigned_idx ON instances (id) WHERE assignees IS NOT NULL;
CREATE INDEX instances_due_idx ON instances (due_at) WHERE due_at IS NOT NULL;

-- The audit rows' source may be 'assign': SQLite cannot change a constraint, so the table is
-- rebuilt with the new one, as 008_messages.sql did.
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
    CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration', 'message', 'assign')),
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

-- +goose Down
-- (the audit rows keep the wider constraint: rebuilding the table back would gain nothing)
DELETE FROM transitions WHERE source = 'assign';
DROP INDEX instances_due_idx;
DROP INDEX instances_assigned_idx;
ALTER TABLE instances DROP COLUMN due_at;
ALTER TABLE instances DROP COLUMN assignees;
