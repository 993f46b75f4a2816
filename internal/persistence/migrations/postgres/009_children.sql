-- Child instances (docs/definitions.md, "Children"): a state may start instances of another
-- definition when it is entered, in the transaction that enters it. A child knows its parent, the
-- group and entry that started it and its place there; a parent keeps the counts of the groups of
-- its current entry. migrations/sqlite/009_children.sql is the same design in SQLite's types.

-- +goose Up

ALTER TABLE instances
    -- the instance that started it (NULL for an instance created through the API), the group, the
    -- parent's revision after the transition that started it (the entry), and its index there.
    ADD COLUMN parent_id    text COLLATE "C",
    ADD COLUMN parent_group text NOT NULL DEFAULT '',
    ADD COLUMN parent_rev   bigint NOT NULL DEFAULT 0,
    ADD COLUMN parent_index integer NOT NULL DEFAULT 0,
    -- the event its parent gets when it reaches a final state ('' for none): its group's on_final,
    -- fixed when it starts, as its parent's definition version said.
    ADD COLUMN on_final     text NOT NULL DEFAULT '',
    -- how many levels of parents it has (at most 8).
    ADD COLUMN depth        integer NOT NULL DEFAULT 0,
    -- the child groups started by the current entry of its state: {group: {rev, total, final}},
    -- final counting the on_final messages received (groups with on_final only). Replaced when a
    -- state is entered, unchanged by a stay.
    ADD COLUMN children     jsonb NOT NULL DEFAULT '{}',
    ADD CONSTRAINT instances_children_is_object CHECK (jsonb_typeof(children) = 'object'),
    ADD CONSTRAINT instances_depth_valid CHECK (depth BETWEEN 0 AND 8);

-- A child's message to its parent when it reaches a final state (its group's on_final) is marked:
-- only those count in the parent's group, whatever id an instance that sends the same event has.
ALTER TABLE messages ADD COLUMN child_final boolean NOT NULL DEFAULT false;

-- GET /v1/instances?parent= and /v1/instances/{id}/children page a parent's children in id order.
CREATE INDEX instances_parent_idx ON instances (parent_id, id) WHERE parent_id IS NOT NULL;

-- the children of one entry of a group, final or not: their counts, and the ids of the running ones.
CREATE INDEX instances_parent_group_idx ON instances (parent_id, parent_group, parent_rev, final)
    WHERE parent_id IS NOT NULL;

-- +goose Down
ALTER TABLE messages DROP COLUMN child_final;
DROP INDEX instances_parent_group_idx;
DROP INDEX instances_parent_idx;
ALTER TABLE instances DROP CONSTRAINT instances_depth_valid, DROP CONSTRAINT instances_children_is_object,
    DROP COLUMN children, DROP COLUMN depth, DROP COLUMN on_final, DROP COLUMN parent_index,
    DROP COLUMN parent_rev, DROP COLUMN parent_group, DROP COLUMN parent_id;
