-- The number of migrations/postgres/013_find.sql, which creates fsmd_ctx_time: SQLite's key of a
-- time is an expression of its built-in functions (persistence/ctxfield.go), so nothing is created.

-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
