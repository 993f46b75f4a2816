-- The design of migrations/postgres/014_retention.sql (read its comments) in SQLite's types.

-- +goose Up
CREATE INDEX instances_final_updated_idx ON instances (definition, updated_at, id) WHERE final;
CREATE INDEX messages_target_idx ON messages (target);

-- +goose Down
DROP INDEX messages_target_idx;
DROP INDEX instances_final_updated_idx;
