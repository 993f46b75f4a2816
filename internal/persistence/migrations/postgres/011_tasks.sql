-- Tasks (docs/definitions.md, "Tasks"): a state may name who should act in it and by when. An
-- instance gets its assignees and due date when it enters such a state and loses them when it
-- leaves (a stay and a migration keep them); POST /v1/instances/{id}/assign replaces the
-- assignees until then. migrations/sqlite/011_tasks.sql is the same design in SQLite's types.

-- +goose Up

ALTER TABLE instances
    -- user names and "group:NAME"s, a JSON array; NULL for none.
    ADD COLUMN assignees jsonb,
    -- when the task is due; NULL for no date.
    ADD COLUMN due_at    timestamptz,
    ADD CONSTRAINT instances_assignees_is_array CHECK (assignees IS NULL OR jsonb_typeof(assignees) = 'array');

-- GET /v1/worklist finds the instances assigned to a user or to one of their groups (assignees @>
-- '["name"]', one per name and group); only assigned instances are indexed, so the event path of
-- the others pays nothing for it.
CREATE INDEX instances_assignees_idx ON instances USING gin (assignees jsonb_path_ops) WHERE assignees IS NOT NULL;

-- the overdue ones (?overdue=true, fsmd_instances_overdue, the stats), and the worklist's order.
CREATE INDEX instances_due_idx ON instances (due_at) WHERE due_at IS NOT NULL;

-- A reassignment is audited: its row in the history has the source 'assign' (the event "assign",
-- the state unchanged, the payload {to, reason}).
ALTER TABLE transitions DROP CONSTRAINT transitions_source_valid,
    ADD CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration', 'message', 'assign'));

-- +goose Down
DELETE FROM transitions WHERE source = 'assign';
ALTER TABLE transitions DROP CONSTRAINT transitions_source_valid,
    ADD CONSTRAINT transitions_source_valid CHECK (source IN ('api', 'timer', 'migration', 'message'));
DROP INDEX instances_due_idx;
DROP INDEX instances_assignees_idx;
ALTER TABLE instances DROP CONSTRAINT instances_assignees_is_array, DROP COLUMN due_at, DROP COLUMN assignees;
