-- Retention (docs/definitions.md, "Retention"): a background job deletes the instances that have been
-- final for longer than their definition's `retention: {final_after}`, with their history, timers,
-- webhook deliveries and messages, in short batches. migrations/sqlite/014_retention.sql is the
-- same design in SQLite's types.

-- +goose Up

-- The job's batch: the final instances of a definition finished before a time, oldest first
-- (updated_at is when a final instance became final: nothing changes it afterwards). Only final
-- instances are indexed, so the event path of the running ones pays nothing for it.
CREATE INDEX instances_final_updated_idx ON instances (definition, updated_at, id) WHERE final;

-- The messages addressed to the instances a batch deletes (by sender, messages_sender_target_seq_key
-- serves already).
CREATE INDEX messages_target_idx ON messages (target);

-- +goose Down
DROP INDEX messages_target_idx;
DROP INDEX instances_final_updated_idx;
