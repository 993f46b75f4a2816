-- Messages between instances (processes.md §3; docs/definitions.md, `send`): the events a
-- transition sends to other instances, one row per target, inserted in the statement (or
-- transaction) that accepts the transition, so that a message exists exactly when its transition
-- does. migrations/sqlite/008_messages.sql is the same design in SQLite's types. (007 is the stats'.)

-- +goose Up

CREATE TABLE messages (
    -- the message id: time-ordered and random, unique across databases (the target's audit row
    -- gets it as its request_id when the message is delivered).
    id         text COLLATE "C" NOT NULL,
    -- the sending instance, and the seq of the transition that sent it in its history.
    sender     text COLLATE "C" NOT NULL,
    sender_seq bigint NOT NULL,
    -- the id of the instance the message is addressed to, as the sender's expression computed it:
    -- it need not exist.
    target     text COLLATE "C" NOT NULL,
    -- the order of the messages from sender to target: one more than the highest of the pair's rows
    -- still in the table when it is written. A sender's transitions are written one at a time (each
    -- on the condition of its revision), so a pair's seqs only grow while any of its rows remain.
    seq        bigint NOT NULL,
    event      text NOT NULL,
    -- the payload's values as the sender computed them: the target's definition types them when
    -- the message is delivered.
    payload    jsonb NOT NULL,
    -- pending: to deliver, once every earlier message of its pair is delivered or dead. dead: its
    -- target does not exist (or could not take any event), kept with the reason until re-driven
    -- (POST /v1/messages/dead/{id}/redrive). A delivered message, or one its target refused (the
    -- target's history then has a dropped row), is deleted.
    status     text NOT NULL DEFAULT 'pending',
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    -- when it was found dead; NULL while pending.
    dead_at    timestamptz,

    CONSTRAINT messages_pkey PRIMARY KEY (id),
    -- the pair's messages in order; also what the next seq of a pair is read from.
    CONSTRAINT messages_sender_target_seq_key UNIQUE (sender, target, seq),
    CONSTRAINT messages_id_not_empty CHECK (id <> ''),
    CONSTRAINT messages_target_not_empty CHECK (target <> ''),
    CONSTRAINT messages_event_not_empty CHECK (event <> ''),
    CONSTRAINT messages_sender_seq_positive CHECK (sender_seq >= 1),
    CONSTRAINT messages_seq_positive CHECK (seq >= 1),
    CONSTRAINT messages_payload_is_object CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT messages_status_valid CHECK (status IN ('pending', 'dead'))
);

-- the pending messages, oldest first: what the dispatchers claim.
CREATE INDEX messages_pending_idx ON messages (created_at, id) WHERE status = 'pending';

-- the dead messages in id order: GET /v1/messages/dead pages them.
CREATE INDEX messages_dead_idx ON messages (id) WHERE status = 'dead';

-- A delivered message's audit row, in its target's history, has the source 'message'.
ALTER TABLE transitions DROP CONSTRAINT transitions_source_valid,
    ADD CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration', 'message'));

-- +goose Down
DELETE FROM transitions WHERE source = 'message';
ALTER TABLE transitions DROP CONSTRAINT transitions_source_valid,
    ADD CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration'));
DROP TABLE messages;
