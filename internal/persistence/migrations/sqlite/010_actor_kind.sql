-- The design of migrations/postgres/010_actor_kind.sql (read its comments) in SQLite's types.

-- +goose Up
ALTER TABLE transitions ADD COLUMN actor_kind TEXT NOT NULL DEFAULT ''
    CHECK (actor_kind IN ('', 'user', 'timer', 'message', 'migration', 'system'));
UPDATE transitions SET actor_kind = CASE source WHEN 'api' THEN 'user' ELSE source END;

-- +goose Down
ALTER TABLE transitions DROP COLUMN actor_kind;
