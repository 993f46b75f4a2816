-- The retention job's index without updated_at (issue 18): an index on a column an UPDATE changes
-- makes every update of the row a non-HOT one, which writes a new entry into each of the table's
-- indexes. instances_final_updated_idx was partial (WHERE final), but PostgreSQL decides HOT by
-- the columns an index names, its predicate's included, not by whether the row is in it: every
-- event, which sets updated_at, paid for all of the instances' indexes. ended_at is when a final
-- instance became final and NULL for a running one: an event on a running instance leaves it NULL,
-- so a stay (or a transition that changes no indexed column) can be a HOT update. It is computed
-- from final and updated_at, so no write path has to remember it. migrations/sqlite/015_ended_at.sql
-- is the same design in SQLite's types.

-- +goose Up

-- Room on each page for the new versions of its rows, which a HOT update must put on the same
-- page; the rewrite ADD COLUMN ... STORED makes below packs the existing rows to it.
ALTER TABLE instances SET (fillfactor = 85);
ALTER TABLE instances ADD COLUMN ended_at timestamptz
    GENERATED ALWAYS AS (CASE WHEN final THEN updated_at END) STORED;
CREATE INDEX instances_ended_idx ON instances (definition, ended_at, id) WHERE ended_at IS NOT NULL;
DROP INDEX instances_final_updated_idx;

-- +goose Down
CREATE INDEX instances_final_updated_idx ON instances (definition, updated_at, id) WHERE final;
DROP INDEX instances_ended_idx;
ALTER TABLE instances DROP COLUMN ended_at;
ALTER TABLE instances RESET (fillfactor);
