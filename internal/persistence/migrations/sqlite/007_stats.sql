-- The stats rollups and the rejection counts: the design of migrations/postgres/007_stats.sql
-- (read its comments) in SQLite's types. Times are the fixed-width UTC text of every time column
-- (2026-01-02T15:00:00.000000000Z), so an hour or a day is a prefix of it padded with zeros, and
-- the milliseconds of a time are exact integers: unix seconds (strftime) * 1000 + its digits 21-23.

-- +goose Up

CREATE TABLE transition_stats_hourly (
    definition  TEXT NOT NULL,
    hour        TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    event       TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    count       INTEGER NOT NULL,

    CONSTRAINT transition_stats_hourly_pkey PRIMARY KEY (definition, hour, from_state, to_state, event, duration_ms),
    CONSTRAINT transition_stats_hourly_duration_not_negative CHECK (duration_ms >= 0),
    CONSTRAINT transition_stats_hourly_count_positive CHECK (count >= 1)
) STRICT;

CREATE TABLE transition_stats_daily (
    definition  TEXT NOT NULL,
    day         TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    event       TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    count       INTEGER NOT NULL,

    CONSTRAINT transition_stats_daily_pkey PRIMARY KEY (definition, day, from_state, to_state, event, duration_ms),
    CONSTRAINT transition_stats_daily_duration_not_negative CHECK (duration_ms >= 0),
    CONSTRAINT transition_stats_daily_count_positive CHECK (count >= 1)
) STRICT;

CREATE TABLE rejections (
    definition TEXT NOT NULL,
    hour       TEXT NOT NULL,
    state      TEXT NOT NULL,
    event      TEXT NOT NULL,
    code       TEXT NOT NULL,
    count      INTEGER NOT NULL,

    CONSTRAINT rejections_pkey PRIMARY KEY (definition, hour, state, event, code),
    CONSTRAINT rejections_code_not_empty CHECK (code <> ''),
    CONSTRAINT rejections_count_positive CHECK (count >= 1)
) STRICT;

-- every transition that left its state, with the time spent in it (ms, exact): for the backfill.
CREATE TEMPORARY VIEW transition_stays AS
SELECT i.definition AS definition, t.instance_id AS instance_id, t.seq AS seq, t.at AS at,
    t.from_state AS from_state, t.to_state AS to_state, t.event AS event,
    max(0, (CAST(strftime('%s', substr(t.at, 1, 19)) AS INTEGER) * 1000 + CAST(substr(t.at, 21, 3) AS INTEGER))
        - (CAST(strftime('%s', substr(e.at, 1, 19)) AS INTEGER) * 1000 + CAST(substr(e.at, 21, 3) AS INTEGER))) AS ms
FROM transitions t
JOIN instances i ON i.id = t.instance_id
JOIN (SELECT t2.instance_id AS instance_id, t2.seq AS seq, COALESCE(
        (SELECT p.at FROM transitions p WHERE p.instance_id = t2.instance_id AND p.seq < t2.seq
            AND p.dropped IS NULL AND p.source <> 'migration' ORDER BY p.seq DESC LIMIT 1),
        (SELECT c.created_at FROM instances c WHERE c.id = t2.instance_id)) AS at
      FROM transitions t2) e ON e.instance_id = t.instance_id AND e.seq = t.seq
WHERE t.dropped IS NULL AND t.source <> 'migration';

-- The audit log written before this migration, rolled up.
INSERT INTO transition_stats_hourly (definition, hour, from_state, to_state, event, duration_ms, count)
SELECT definition, substr(at, 1, 13) || ':00:00.000000000Z', from_state, to_state, event,
    CASE WHEN ms < 100 THEN ms ELSE CAST(substr(CAST(ms AS TEXT), 1, 2) || substr('0000000000000000000', 1, length(CAST(ms AS TEXT)) - 2) AS INTEGER) END AS b,
    count(*)
FROM transition_stays WHERE true GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO transition_stats_daily (definition, day, from_state, to_state, event, duration_ms, count)
SELECT definition, substr(at, 1, 10) || 'T00:00:00.000000000Z', from_state, to_state, event,
    CASE WHEN ms < 100 THEN ms ELSE CAST(substr(CAST(ms AS TEXT), 1, 2) || substr('0000000000000000000', 1, length(CAST(ms AS TEXT)) - 2) AS INTEGER) END AS b,
    count(*)
FROM transition_stays WHERE true GROUP BY 1, 2, 3, 4, 5, 6;

DROP VIEW transition_stays;

-- +goose Down
DROP TABLE rejections;
DROP TABLE transition_stats_daily;
DROP TABLE transition_stats_hourly;
