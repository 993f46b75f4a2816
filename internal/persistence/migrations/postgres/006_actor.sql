-- Who did it: the name of the API key that sent the event (its line in the keys file), on the
-- audit row of every transition sent through the API with a key; NULL without keys, and for
-- timers and migrations.

-- +goose Up
ALTER TABLE transitions ADD COLUMN actor text;

-- +goose Down
ALTER TABLE transitions DROP COLUMN actor;
