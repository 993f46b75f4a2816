-- An Idempotency-Key is usable once per instance: that unique key now indexes only the audit rows
-- that have one (issue 18). Most events are sent without a key, and the constraint's index held an
-- entry for each of their rows all the same (a B-tree indexes NULLs): one more index page written
-- per event, for nothing. Every lookup by key (idempotency_key = $2) implies the predicate, so it
-- uses the partial index; ON CONFLICT DO NOTHING without a target still covers it.
-- migrations/sqlite/016_idempotency_partial.sql is the same design in SQLite.

-- +goose Up
CREATE UNIQUE INDEX transitions_idempotency_key_idx ON transitions (instance_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
ALTER TABLE transitions DROP CONSTRAINT transitions_instance_id_idempotency_key_key;

-- +goose Down
ALTER TABLE transitions ADD CONSTRAINT transitions_instance_id_idempotency_key_key UNIQUE (instance_id, idempotency_key);
DROP INDEX transitions_idempotency_key_idx;
