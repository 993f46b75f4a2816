-- Process insight from the audit log (GET /v1/definitions/{name}/stats): rollups of the
-- transitions, and the count of refused events. migrations/sqlite/007_stats.sql is the same design
-- in SQLite's types. (006 is the audit actor's.)
--
-- The stats of a window of up to a year must not read the audit log itself (millions of rows,
-- with no definition column): two rollups of it are kept, by hour and by day. A window reads the
-- days it covers whole from the daily rollup and its ragged hours from the hourly one. Each process
-- counts its accepted transitions and refused events in memory and adds them to the rows about
-- every second (internal/service/stats.go), in key order: no row lock is taken in the event's
-- own transaction, so events on the same transition do not queue behind each other's commits.
--
-- A row of a rollup counts the transitions of a definition (every version) in an hour (a day),
-- by from_state, to_state, event and duration_ms: the time the instance had spent in from_state
-- (since it entered the state: entered_at, which a dropped timer event does not change), in
-- milliseconds kept to 2 significant digits (1234 ms counts as 1200 ms: within 10%), so that the
-- rows of a state hold a histogram of its times, from which the median and p95 are read.

-- +goose Up

-- fsmd_duration_bucket is a duration in ms kept to 2 significant digits (under 100 ms: exact), as
-- durationBucket does in Go: for the backfill below.
-- +goose StatementBegin
CREATE FUNCTION fsmd_duration_bucket(ms bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN ms < 100 THEN GREATEST(ms, 0)
        ELSE (substr(ms::text, 1, 2) || substr('0000000000000000000', 1, length(ms::text) - 2))::bigint END
$$;
-- +goose StatementEnd

CREATE TABLE transition_stats_hourly (
    definition  text COLLATE "C" NOT NULL,
    -- the hour (UTC) the transitions were in.
    hour        timestamptz NOT NULL,
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    event       text NOT NULL,
    duration_ms bigint NOT NULL,
    count       bigint NOT NULL,

    CONSTRAINT transition_stats_hourly_pkey PRIMARY KEY (definition, hour, from_state, to_state, event, duration_ms),
    CONSTRAINT transition_stats_hourly_duration_not_negative CHECK (duration_ms >= 0),
    CONSTRAINT transition_stats_hourly_count_positive CHECK (count >= 1)
);

CREATE TABLE transition_stats_daily (
    definition  text COLLATE "C" NOT NULL,
    -- the day (UTC) the transitions were in.
    day         timestamptz NOT NULL,
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    event       text NOT NULL,
    duration_ms bigint NOT NULL,
    count       bigint NOT NULL,

    CONSTRAINT transition_stats_daily_pkey PRIMARY KEY (definition, day, from_state, to_state, event, duration_ms),
    CONSTRAINT transition_stats_daily_duration_not_negative CHECK (duration_ms >= 0),
    CONSTRAINT transition_stats_daily_count_positive CHECK (count >= 1)
);

-- rejections: the events refused by the engine (unknown_event, guard_rejected, ...), which are not
-- transitions and leave no audit row, counted by definition, hour, state, event and error code.
CREATE TABLE rejections (
    definition text COLLATE "C" NOT NULL,
    hour       timestamptz NOT NULL,
    state      text NOT NULL,
    event      text NOT NULL,
    code       text NOT NULL,
    count      bigint NOT NULL,

    CONSTRAINT rejections_pkey PRIMARY KEY (definition, hour, state, event, code),
    CONSTRAINT rejections_code_not_empty CHECK (code <> ''),
    CONSTRAINT rejections_count_positive CHECK (count >= 1)
);

-- The audit log written before this migration, rolled up (a stay begins at the transition before
-- that was not a dropped timer event nor a migration, which keep entered_at, or at the creation;
-- migrations are not counted, as the service does not count them).
CREATE TEMPORARY TABLE stays AS
SELECT i.definition, t.at, t.from_state, t.to_state, t.event,
    fsmd_duration_bucket(floor(extract(epoch FROM t.at - COALESCE(
        lag(t.at) OVER (PARTITION BY t.instance_id ORDER BY t.seq), i.created_at)) * 1000)::bigint) AS duration_ms
FROM transitions t JOIN instances i ON i.id = t.instance_id
WHERE t.dropped IS NULL AND t.source <> 'migration';

INSERT INTO transition_stats_hourly (definition, hour, from_state, to_state, event, duration_ms, count)
SELECT definition, date_trunc('hour', at, 'UTC'), from_state, to_state, event, duration_ms, count(*)
FROM stays GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO transition_stats_daily (definition, day, from_state, to_state, event, duration_ms, count)
SELECT definition, date_trunc('day', at, 'UTC'), from_state, to_state, event, duration_ms, count(*)
FROM stays GROUP BY 1, 2, 3, 4, 5, 6;

DROP TABLE stays;

-- +goose Down
DROP TABLE rejections;
DROP TABLE transition_stats_daily;
DROP TABLE transition_stats_hourly;
DROP FUNCTION fsmd_duration_bucket(bigint);
