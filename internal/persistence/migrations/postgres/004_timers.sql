-- Durable timers (definitions.md "Timers"): entering a state arms its timers in the transaction of
-- the transition; leaving it (or re-entering it) deletes them in that same transaction, so a timer
-- present is a live one. Every change of an instance's timers happens under the instance's row
-- lock: a transition, a migration, a timer firing. migrations/sqlite/004_timers.sql is the same
-- design in SQLite's types.

-- +goose Up

CREATE TABLE timers (
    instance_id text COLLATE "C" NOT NULL,
    -- the instance's revision when it entered the state that armed the timer.
    revision    bigint NOT NULL,
    -- the timer's place in its state's list: a state may have two timers of one event.
    idx         integer NOT NULL,
    event       text NOT NULL,
    due_at      timestamptz NOT NULL,
    -- when a scheduler may take it: due_at, or later after a failure to fire it.
    next_try_at timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text NOT NULL DEFAULT '',

    CONSTRAINT timers_pkey PRIMARY KEY (instance_id, revision, idx),
    CONSTRAINT timers_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT timers_event_not_empty CHECK (event <> ''),
    CONSTRAINT timers_attempts_not_negative CHECK (attempts >= 0)
);

-- what the schedulers look for: the timers whose time has come, earliest first.
CREATE INDEX timers_next_try_at_idx ON timers (next_try_at);

-- a timer whose event the instance's state refused when it fired (a guard, or a state that no
-- longer handles it after a migration): its audit row says why, and nothing else changed.
ALTER TABLE transitions ADD COLUMN dropped text;

-- +goose Down
ALTER TABLE transitions DROP COLUMN dropped;
DROP TABLE timers;
