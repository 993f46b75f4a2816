-- The design of migrations/postgres/004_timers.sql (read its comments) in SQLite's types.

-- +goose Up

CREATE TABLE timers (
    instance_id TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    event       TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    next_try_at TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',

    CONSTRAINT timers_pkey PRIMARY KEY (instance_id, revision, idx),
    CONSTRAINT timers_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT timers_event_not_empty CHECK (event <> ''),
    CONSTRAINT timers_attempts_not_negative CHECK (attempts >= 0)
) STRICT;

CREATE INDEX timers_next_try_at_idx ON timers (next_try_at);

ALTER TABLE transitions ADD COLUMN dropped TEXT;

-- +goose Down
ALTER TABLE transitions DROP COLUMN dropped;
DROP TABLE timers;
