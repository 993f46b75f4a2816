// Package persistence is fsmd's database adapter and the only place with SQL: the definitions,
// instances and transitions (audit log) tables, over sqlx with two drivers sharing one schema design,
// PostgreSQL through lib/pq (production) and SQLite through modernc.org/sqlite (the embedded
// default).
//
// Shape, after riverqueue/river's driver:
//
//   - [Open] connects and applies the embedded, numbered goose migrations (migrations/postgres,
//     migrations/sqlite) before it returns.
//   - [DB.WithTx] is the one transaction helper. It commits when fn returns nil, rolls back otherwise
//     (also on panic, and under [context.WithoutCancel] so a canceled request still releases its
//     transaction), retries the whole fn on a serialization failure, a deadlock or SQLITE_BUSY, and
//     translates database errors once into [ErrNotFound], [ErrConflict], [ErrInvalidText] and
//     [ErrUnavailable].
//   - [AdvanceGroup] writes several instances' transitions, each as [InstanceAdvance] does, in one
//     transaction that they share (group commit), one's failure failing none of the others.
//   - Store functions are named noun-then-verb (DefinitionGet, InstanceUpdate). Reads take an
//     [Executor] (a *DB or a *Tx); writes take the caller's *Tx and never begin their own.
//   - Inserts use ON CONFLICT DO NOTHING and report ErrConflict from the row count, so a conflict
//     leaves the transaction usable on PostgreSQL too (no "current transaction is aborted").
//   - On PostgreSQL the queries of the event path are prepared statements, prepared once per pooled
//     connection (preparedQueries in query.go), so that the server does not parse and plan them on
//     every event; on SQLite those of an event's read and write are (sqlitePreparedQueries), where
//     parsing a statement cost as much as running it.
//
// Times are timestamptz on PostgreSQL (microsecond precision: written truncated to the microsecond)
// and fixed-width UTC RFC 3339 text with nanoseconds on SQLite; both come back as UTC time.Time.
// JSON columns are jsonb on PostgreSQL (so the text comes back normalized: key order and spacing
// may change, the value does not) and text checked by json_valid on SQLite (byte for byte).
package persistence
