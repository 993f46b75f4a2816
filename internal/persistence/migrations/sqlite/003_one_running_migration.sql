-- One running migration per definition: two at once would take the same instances. Starting a
-- second fails on this index, and fsmd answers 409 migration_running with the first one's id.

-- +goose Up
CREATE UNIQUE INDEX migrations_one_running_idx ON migrations (definition) WHERE status = 'running';

-- +goose Down
DROP INDEX migrations_one_running_idx;
