-- fsmd's schema on PostgreSQL. Three tables: the registered definitions, the instances running on
-- them, and the transitions (the audit log: one row per accepted event, written in the transaction
-- that changes the instance). migrations/sqlite/001_initial_schema.sql is the same design in
-- SQLite's types; a change to one is made to both.
--
-- Identifiers (definition names, instance ids) are COLLATE "C": ids are paged in byte order, the
-- same on every server whatever its locale, and the same as on SQLite.

-- +goose Up

-- definitions: every version of every definition ever registered. A version is immutable: new
-- content is registered as the next version, the same content (by hash) maps to its version.
CREATE TABLE definitions (
    name        text COLLATE "C" NOT NULL,
    version     integer NOT NULL,
    -- hash of the source, for the content deduplication: the same YAML is the same version.
    hash        text NOT NULL,
    -- the YAML as it was registered, verbatim.
    source      text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,

    CONSTRAINT definitions_pkey PRIMARY KEY (name, version),
    CONSTRAINT definitions_name_hash_key UNIQUE (name, hash),
    CONSTRAINT definitions_name_not_empty CHECK (name <> ''),
    CONSTRAINT definitions_version_positive CHECK (version >= 1),
    CONSTRAINT definitions_hash_not_empty CHECK (hash <> '')
);

-- instances: one row per instance, its current state. Changed only with its audit row, in one
-- transaction; revision counts the changes (it equals the seq of the last transition).
CREATE TABLE instances (
    id          text COLLATE "C" NOT NULL,
    definition  text COLLATE "C" NOT NULL,
    -- the version of the definition the instance runs on.
    version     integer NOT NULL,
    state       text NOT NULL,
    -- the instance's context, a JSON object.
    context     jsonb NOT NULL,
    revision    bigint NOT NULL,
    -- true once the instance is in a final state: it takes no more events.
    final       boolean NOT NULL,
    -- hash of the creation request, so that repeating it (same id, same body) is idempotent.
    create_hash text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    -- when the instance entered its current state (the timers count from here).
    entered_at  timestamptz NOT NULL,

    CONSTRAINT instances_pkey PRIMARY KEY (id),
    CONSTRAINT instances_definition_fkey FOREIGN KEY (definition, version)
        REFERENCES definitions (name, version),
    CONSTRAINT instances_id_not_empty CHECK (id <> ''),
    CONSTRAINT instances_state_not_empty CHECK (state <> ''),
    CONSTRAINT instances_context_is_object CHECK (jsonb_typeof(context) = 'object'),
    CONSTRAINT instances_revision_not_negative CHECK (revision >= 0)
);

-- GET /v1/instances?definition=&state= pages in id order.
CREATE INDEX instances_definition_state_id_idx ON instances (definition, state, id);

-- the running (not final) instances of a definition: counted for GET /v1/definitions, migrated.
CREATE INDEX instances_definition_final_idx ON instances (definition, final);

-- transitions: the audit log, append-only. seq numbers the instance's transitions 1, 2, 3... with no
-- gap; the (instance_id, idempotency_key) key makes an Idempotency-Key usable once per instance
-- (NULL, no key, is never a duplicate).
CREATE TABLE transitions (
    instance_id        text COLLATE "C" NOT NULL,
    seq                bigint NOT NULL,
    event              text NOT NULL,
    from_state         text NOT NULL,
    to_state           text NOT NULL,
    -- the index of the branch taken among the event's branches in from_state.
    branch             integer NOT NULL,
    -- the guards evaluated, a JSON array.
    guards             jsonb NOT NULL,
    payload            jsonb NOT NULL,
    context_before     jsonb NOT NULL,
    context_after      jsonb NOT NULL,
    -- what caused the transition: a request (api), a timer, or a migration to another version.
    source             text NOT NULL,
    request_id         text NOT NULL,
    idempotency_key    text,
    -- hash of the request, to tell a replay (same key, same body) from a mismatch.
    request_hash       text NOT NULL,
    definition_version integer NOT NULL,
    at                 timestamptz NOT NULL,

    CONSTRAINT transitions_pkey PRIMARY KEY (instance_id, seq),
    CONSTRAINT transitions_instance_id_idempotency_key_key UNIQUE (instance_id, idempotency_key),
    CONSTRAINT transitions_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT transitions_seq_positive CHECK (seq >= 1),
    CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration')),
    CONSTRAINT transitions_idempotency_key_not_empty CHECK (idempotency_key IS NULL OR idempotency_key <> ''),
    CONSTRAINT transitions_guards_is_array CHECK (jsonb_typeof(guards) = 'array'),
    CONSTRAINT transitions_payload_is_object CHECK (jsonb_typeof(payload) = 'object'),
    CONSTRAINT transitions_context_before_is_object CHECK (jsonb_typeof(context_before) = 'object'),
    CONSTRAINT transitions_context_after_is_object CHECK (jsonb_typeof(context_after) = 'object'),
    CONSTRAINT transitions_definition_version_positive CHECK (definition_version >= 1)
);

-- +goose Down
DROP TABLE transitions;
DROP TABLE instances;
DROP TABLE definitions;
