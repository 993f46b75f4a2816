-- Actors (docs/definitions.md, "Actors"): every event has one, a user (an API key or a token), a
-- timer, a message, a migration or the system; the audit row records its kind next to its name
-- (006). Rows written before are given the kind their source implies. The sqlite twin is
-- migrations/sqlite/010_actor_kind.sql.

-- +goose Up
ALTER TABLE transitions ADD COLUMN actor_kind text NOT NULL DEFAULT '';
UPDATE transitions SET actor_kind = CASE source WHEN 'api' THEN 'user' ELSE source END;
ALTER TABLE transitions ADD CONSTRAINT transitions_actor_kind_valid
    CHECK (actor_kind IN ('', 'user', 'timer', 'message', 'migration', 'system'));

-- +goose Down
ALTER TABLE transitions DROP CONSTRAINT transitions_actor_kind_valid, DROP COLUMN actor_kind;
