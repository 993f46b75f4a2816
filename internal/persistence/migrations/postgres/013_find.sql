-- Find and correlate (docs/operators.md): a definition's `index` and `keys` make expression
-- indexes on instances' context, created when a version is registered (persistence/ctxindex.go).
-- A context holds times as RFC 3339 text, whose fractions and offsets vary in width, so text order
-- is not time order; the cast to timestamptz is, but PostgreSQL marks it STABLE (it reads the
-- session's settings for text without an offset), and an index takes only IMMUTABLE expressions.
-- fsmd_ctx_time casts only text that has an offset, which reads no setting: IMMUTABLE holds. It
-- cuts the fraction to the microsecond as SQLite's key does (persistence/ctxfield.go), and returns
-- NULL for anything else (a value of an older version; the year 0, which PostgreSQL lacks), so that no row makes an index fail.
-- migrations/sqlite/013_find.sql has nothing to create.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION fsmd_ctx_time(t text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT CASE WHEN left(t, 4) <> '0000' AND t ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$'
        THEN regexp_replace(t, '(\.[0-9]{1,6})[0-9]*', '\1')::timestamptz END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION fsmd_ctx_time(text);
