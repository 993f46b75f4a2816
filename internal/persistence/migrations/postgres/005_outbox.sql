-- The transactional outbox (package outbox): the webhook deliveries of accepted transitions, one row
-- per (transition, webhook its definition's `notify` selects), inserted in the transaction that
-- accepts the transition, delivered by a dispatcher in every process, deleted once delivered.
-- migrations/sqlite/005_outbox.sql is the same design in SQLite's types. (004 is the timers'.)

-- +goose Up

CREATE TABLE outbox (
    -- the delivery id, sent as Fsmd-Delivery-Id on every attempt: time-ordered and random, unique
    -- across databases, so that a receiver can deduplicate by it.
    id          text COLLATE "C" NOT NULL,
    instance_id text COLLATE "C" NOT NULL,
    -- the transition announced: its seq in the instance's history.
    seq         bigint NOT NULL,
    definition  text COLLATE "C" NOT NULL,
    version     integer NOT NULL,
    -- the webhook's name in the definition's `notify`, and its URL when the transition was accepted.
    webhook     text COLLATE "C" NOT NULL,
    url         text NOT NULL,
    -- scheme://host:port of url: what a dispatcher's circuit breaker counts failures of.
    destination text NOT NULL,
    -- the request body, the exact bytes sent and signed on every attempt (text, not jsonb, which
    -- would normalize them).
    body        text NOT NULL,
    -- pending: to deliver, due at next_try_at; at most one row of an instance and webhook is
    -- pending, the earliest: the others are waiting, and the earliest waiting one becomes pending
    -- when the pending one is delivered or dead. dead: given up on (the dead letters), until
    -- re-driven. A delivered row is deleted.
    status      text NOT NULL,
    -- failed attempts so far.
    attempts    integer NOT NULL DEFAULT 0,
    -- when the row is due. A dispatcher that claims a row moves it past the end of its delivery
    -- (its lease), so that no other claims it meanwhile, and a row whose dispatcher died is due
    -- again once the lease ends.
    next_try_at timestamptz NOT NULL,
    -- the random token of the claim that holds the row; NULL when none does. A dispatcher
    -- finishes a row only under its own claim.
    claim       text,
    last_error  text NOT NULL DEFAULT '',
    last_try_at timestamptz,
    created_at  timestamptz NOT NULL,

    CONSTRAINT outbox_pkey PRIMARY KEY (id),
    -- one delivery per transition and webhook; also the index of an instance's rows per webhook
    -- in seq order (the row to lock when appending, the next one to make pending).
    CONSTRAINT outbox_instance_id_webhook_seq_key UNIQUE (instance_id, webhook, seq),
    CONSTRAINT outbox_id_not_empty CHECK (id <> ''),
    CONSTRAINT outbox_seq_positive CHECK (seq >= 1),
    CONSTRAINT outbox_version_positive CHECK (version >= 1),
    CONSTRAINT outbox_status_valid CHECK (status IN ('waiting', 'pending', 'dead')),
    CONSTRAINT outbox_attempts_not_negative CHECK (attempts >= 0),
    CONSTRAINT outbox_url_not_empty CHECK (url <> ''),
    CONSTRAINT outbox_body_not_empty CHECK (body <> '')
);

-- the pending rows by when they are due: what the dispatchers claim.
CREATE INDEX outbox_due_idx ON outbox (next_try_at, id) WHERE status = 'pending';

-- the waiting rows of each instance and webhook: the next to make pending.
CREATE INDEX outbox_waiting_idx ON outbox (instance_id, webhook, seq) WHERE status = 'waiting';

-- the dead letters in id order: GET /v1/outbox/dead pages them.
CREATE INDEX outbox_dead_idx ON outbox (id) WHERE status = 'dead';

-- +goose Down
DROP TABLE outbox;
