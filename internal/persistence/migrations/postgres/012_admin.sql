-- Operators act on instances (docs/operators.md): suspend, resume, terminate and repair one, or
-- act on many at once with a bulk. migrations/sqlite/012_admin.sql is the same design in SQLite's
-- types.

-- +goose Up

ALTER TABLE instances
    -- a suspended instance refuses events (instance_suspended), its timers are held (their
    -- next_try_at put off to the end of time) and messages to it wait, until it is resumed.
    ADD COLUMN suspended  boolean NOT NULL DEFAULT false,
    -- an operator ended it where it was: it is final (final is true too), in a state that is not.
    ADD COLUMN terminated boolean NOT NULL DEFAULT false;

-- ?suspended=true
CREATE INDEX instances_suspended_idx ON instances (id) WHERE suspended;

-- The audit rows of operators: suspend, resume and terminate have the source 'admin', a repair
-- 'repair', an event a bulk sent (or its action) 'bulk'.
ALTER TABLE transitions DROP CONSTRAINT transitions_source_valid,
    ADD CONSTRAINT transitions_source_valid
        CHECK (source IN ('api', 'timer', 'migration', 'message', 'assign', 'admin', 'repair', 'bulk'));

-- A bulk: one event (or action) sent to the running instances of a definition that match a filter,
-- in batches of instances in id order. Each batch commits with its instances' transitions and the
-- bulk's progress (cursor: the last id done), so a bulk resumed after a crash starts after it and
-- no instance gets the event twice.
CREATE TABLE bulks (
    id          text COLLATE "C" NOT NULL,
    definition  text COLLATE "C" NOT NULL,
    -- the request: {filter, event, payload} or {filter, action}, as given.
    request     jsonb NOT NULL,
    status      text NOT NULL,
    total       bigint NOT NULL DEFAULT 0,  -- the instances that matched when it started
    applied     bigint NOT NULL DEFAULT 0,
    refused     bigint NOT NULL DEFAULT 0,
    -- [{from_state, to_state | code, count, sample}], as the batches found them.
    outcomes    jsonb NOT NULL DEFAULT '[]',
    cursor      text COLLATE "C" NOT NULL DEFAULT '',
    -- the last id of the batch being done ('' between batches): a batch found pending is being
    -- done again after a crash, and takes its instances that match no more because it moved them.
    pending     text COLLATE "C" NOT NULL DEFAULT '',
    error       text NOT NULL DEFAULT '',
    actor       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    finished_at timestamptz,

    CONSTRAINT bulks_pkey PRIMARY KEY (id),
    CONSTRAINT bulks_status_valid CHECK (status IN ('running', 'done', 'cancelled', 'failed'))
);

-- One running bulk per definition: a second is refused (409).
CREATE UNIQUE INDEX bulks_one_running_idx ON bulks (definition) WHERE status = 'running';

-- +goose Down
DROP TABLE bulks;
DELETE FROM transitions WHERE source IN ('admin', 'repair', 'bulk');
ALTER TABLE transitions DROP CONSTRAINT transitions_source_valid,
    ADD CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration', 'message', 'assign'));
DROP INDEX instances_suspended_idx;
ALTER TABLE instances DROP COLUMN terminated, DROP COLUMN suspended;
