-- The design of migrations/postgres/006_actor.sql (read its comments) in SQLite's types.

-- +goose Up
ALTER TABLE transitions ADD COLUMN actor TEXT;

-- +goose Down
ALTER TABLE transitions DROP COLUMN actor;
