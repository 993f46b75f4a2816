-- The design of migrations/postgres/008_messages.sql (read its comments) in SQLite's types.

-- +goose Up

CREATE TABLE messages (
    id         TEXT NOT NULL,
    sender     TEXT NOT NULL,
    sender_seq INTEGER NOT NULL,
    target     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    event      TEXT NOT NULL,
    payload    TEXT NOT NULL,
    status     TEXT NOT NULL DEFAULT 'pending',
    reason     TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    dead_at    TEXT,

    CONSTRAINT messages_pkey PRIMARY KEY (id),
    CONSTRAINT messages_sender_target_seq_key UNIQUE (sender, target, seq),
    CONSTRAINT messages_id_not_empty CHECK (id <> ''),
    CONSTRAINT messages_target_not_empty CHECK (target <> ''),
    CONSTRAINT messages_event_not_empty CHECK (event <> ''),
    CONSTRAINT messages_sender_seq_positive CHECK (sender_seq >= 1),
    CONSTRAINT messages_seq_positive CHECK (seq >= 1),
    CONSTRAINT messages_payload_is_object CHECK (json_valid(payload) AND json_type(payload) = 'object'),
    CONSTRAINT messages_status_valid CHECK (status IN ('pending', 'dead'))
) STRICT;

CREATE INDEX messages_pending_idx ON messages (created_at, id) WHERE status = 'pending';

CREATE INDEX messages_dead_idx ON messages (id) WHERE status = 'dead';

-- The audit rows' source may be 'message': SQLite cannot change a constraint, so the table is
-- rebuilt with the new one (it has no index besides its keys, and nothing refers to it).
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

    CONSTRAINT transitions_pkey PRIMARY KEY (instance_id, seq),
    CONSTRAINT transitions_instance_id_idempotency_key_key UNIQUE (instance_id, idempotency_key),
    CONSTRAINT transitions_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT transitions_seq_positive CHECK (seq >= 1),
    CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration', 'message')),
    CONSTRAINT transitions_idempotency_key_not_empty CHECK (idempotency_key IS NULL OR idempotency_key <> ''),
    CONSTRAINT transitions_guards_is_array CHECK (json_valid(guards) AND json_type(guards) = 'array'),
    CONSTRAINT transitions_payload_is_object CHECK (json_valid(payload) AND json_type(payload) = 'object'),
    CONSTRAINT transitions_context_before_is_object CHECK (json_valid(context_before) AND json_type(context_before) = 'object'),
    CONSTRAINT transitions_context_after_is_object CHECK (json_valid(context_after) AND json_type(context_after) = 'object'),
    CONSTRAINT transitions_definition_version_positive CHECK (definition_version >= 1)
) STRICT;

INSERT INTO transitions_new (instance_id, seq, event, from_state, to_state, branch, guards, payload, context_before,
    context_after, source, request_id, idempotency_key, request_hash, definition_version, at, from_version, dropped, actor)
SELECT instance_id, seq, event, from_state, to_state, branch, guards, payload, context_before,
    context_after, source, request_id, idempotency_key, request_hash, definition_version, at, from_version, dropped, actor
FROM transitions;

DROP TABLE transitions;

ALTER TABLE transitions_new RENAME TO transitions;

-- +goose Down
-- (the audit rows keep the wider constraint: rebuilding the table back would gain nothing)
DELETE FROM transitions WHERE source = 'message';
DROP TABLE messages;
