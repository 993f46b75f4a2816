-- The design of migrations/postgres/009_children.sql (read its comments) in SQLite's types.

-- +goose Up
ALTER TABLE instances ADD COLUMN parent_id TEXT;
ALTER TABLE instances ADD COLUMN parent_group TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN parent_rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN parent_index INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN on_final TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN children TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(children) AND json_type(children) = 'object');
ALTER TABLE messages ADD COLUMN child_final INTEGER NOT NULL DEFAULT 0 CHECK (child_final IN (0, 1));
CREATE INDEX instances_parent_idx ON instances (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE INDEX instances_parent_group_idx ON instances (parent_id, parent_group, parent_rev, final)
    WHERE parent_id IS NOT NULL;

-- +goose Down
ALTER TABLE messages DROP COLUMN child_final;
DROP INDEX instances_parent_group_idx;
DROP INDEX instances_parent_idx;
ALTER TABLE instances DROP COLUMN children;
ALTER TABLE instances DROP COLUMN depth;
ALTER TABLE instances DROP COLUMN on_final;
ALTER TABLE instances DROP COLUMN parent_index;
ALTER TABLE instances DROP COLUMN parent_rev;
ALTER TABLE instances DROP COLUMN parent_group;
ALTER TABLE instances DROP COLUMN parent_id;
