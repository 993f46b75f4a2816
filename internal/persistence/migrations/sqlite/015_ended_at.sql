-- The retention job's index on ended_at rather than updated_at: migrations/postgres/015_ended_at.sql
-- says why (an index naming updated_at makes every event's update a non-HOT one there). SQLite has
-- no HOT updates, but the two databases keep one schema and one retention query. A VIRTUAL column:
-- SQLite cannot add a STORED one to a table; the index stores its values.

-- +goose Up
ALTER TABLE instances ADD COLUMN ended_at TEXT
    GENERATED ALWAYS AS (CASE WHEN final THEN updated_at END) VIRTUAL;
CREATE INDEX instances_ended_idx ON instances (definition, ended_at, id) WHERE ended_at IS NOT NULL;
DROP INDEX instances_final_updated_idx;

-- +goose Down
CREATE INDEX instances_final_updated_idx ON instances (definition, updated_at, id) WHERE final;
DROP INDEX instances_ended_idx;
ALTER TABLE instances DROP COLUMN ended_at;
