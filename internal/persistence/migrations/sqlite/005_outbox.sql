-- The design of migrations/postgres/005_outbox.sql (read its comments) in SQLite's types.

-- +goose Up

CREATE TABLE outbox (
    id          TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    webhook     TEXT NOT NULL,
    url         TEXT NOT NULL,
    destination TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_at TEXT NOT NULL,
    claim       TEXT,
    last_error  TEXT NOT NULL DEFAULT '',
    last_try_at TEXT,
    created_at  TEXT NOT NULL,

    CONSTRAINT outbox_pkey PRIMARY KEY (id),
    CONSTRAINT outbox_instance_id_webhook_seq_key UNIQUE (instance_id, webhook, seq),
    CONSTRAINT outbox_id_not_empty CHECK (id <> ''),
    CONSTRAINT outbox_seq_positive CHECK (seq >= 1),
    CONSTRAINT outbox_version_positive CHECK (version >= 1),
    CONSTRAINT outbox_status_valid CHECK (status IN ('waiting', 'pending', 'dead')),
    CONSTRAINT outbox_attempts_not_negative CHECK (attempts >= 0),
    CONSTRAINT outbox_url_not_empty CHECK (url <> ''),
    CONSTRAINT outbox_body_is_object CHECK (json_valid(body) AND json_type(body) = 'object')
) STRICT;

CREATE INDEX outbox_due_idx ON outbox (next_try_at, id) WHERE status = 'pending';

CREATE INDEX outbox_waiting_idx ON outbox (instance_id, webhook, seq) WHERE status = 'waiting';

CREATE INDEX outbox_dead_idx ON outbox (id) WHERE status = 'dead';

-- +goose Down
DROP TABLE outbox;
