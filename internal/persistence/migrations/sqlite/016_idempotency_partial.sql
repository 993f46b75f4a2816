-- The design of migrations/postgres/016_idempotency_partial.sql (read its comments) in SQLite. A
-- UNIQUE constraint of the table cannot be dropped: the table is rebuilt without it, as
-- 012_admin.sql did (once: the audit log is copied), and the key becomes a partial unique index.
-- On SQLite an insert wrote that index's page for every row, keyed or not: 1 of the 4 pages an
-- event's commit wrote to the WAL once instanceStayQuery had saved 3.

-- +goose Up
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
CREATE UNIQUE INDEX transitions_idempotency_key_idx ON transitions (instance_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- +goose Down
-- (the table keeps its shape: a unique index on the same columns without the predicate is the
-- old constraint's meaning)
DROP INDEX transitions_idempotency_key_idx;
CREATE UNIQUE INDEX transitions_instance_id_idempotency_key_key ON transitions (instance_id, idempotency_key);
