package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// preparedQueries are the queries of the event path and of instance creation. On PostgreSQL they
// are prepared once at Open, and database/sql then prepares each on every pooled connection the
// first time that connection runs it and keeps it there: PostgreSQL parses and plans them once per
// connection instead of on every call, which is most of its work on them besides the writes.
// The other queries (the lists, the definitions) run unprepared.
var preparedQueries = append([]string{
	instanceInsertQuery,
	instanceGetQuery,
	instanceGetForUpdateQuery,
	instanceUpdateQuery,
	instanceStayQuery,
	transitionInsertQuery,
	transitionByKeyQuery,
	advanceRowsQuery,
}, advanceQueries...)

// sqlitePreparedQueries are the queries of the event path prepared on SQLite: those of an event's
// read and of its write (advanceInTx). There, parsing a statement took about as long as running
// it (modernc.org/sqlite prepares each query it is not given prepared), and the group commit's
// writer runs them one after the other for every event of a group.
var sqlitePreparedQueries = []string{
	instanceGetQuery,
	instanceUpdateQuery,
	instanceStayQuery,
	transitionInsertQuery,
	transitionByKeyQuery,
}

// prepare prepares preparedQueries on PostgreSQL, sqlitePreparedQueries on SQLite.
func (db *DB) prepare(ctx context.Context) error {
	queries := preparedQueries
	switch {
	case db.Dialect != Postgres:
		queries = sqlitePreparedQueries
	case db.Citus: // and the statements of advanceInTx, for an event in a caller's transaction
		queries = append(append([]string{}, sqlitePreparedQueries...), instanceGetForUpdateQuery)
	}
	db.stmts = make(map[string]*sqlx.Stmt, len(queries))
	for _, query := range queries {
		st, err := db.X.PreparexContext(ctx, q(db.Dialect, query))
		if err != nil {
			return translate(fmt.Errorf("persistence: prepare %q: %w", query, err))
		}
		db.stmts[query] = st
	}
	return nil
}

// prepared returns query's prepared statement (nil when it has none: a query not in
// preparedQueries, or on SQLite not in sqlitePreparedQueries). Within a transaction, it is the statement bound to the transaction's
// connection (prepared there first if it is not yet; an error preparing it is returned by the
// statement's first use).
func (db *DB) prepared(_ context.Context, query string) *sqlx.Stmt { return db.stmts[query] }

func (tx *Tx) prepared(ctx context.Context, query string) *sqlx.Stmt {
	st := tx.db.stmts[query]
	if st == nil {
		return nil
	}
	return tx.X.StmtxContext(ctx, st)
}

// observe tells the DB's statement observer (tests: SetStatementObserver) of a statement about to run.
func observe(ex Executor, query string, args []any) {
	var f func(string, []any)
	switch ex := ex.(type) {
	case *DB:
		f = ex.onStatement
	case *Tx:
		f = ex.db.onStatement
	}
	if f != nil {
		f(query, args)
	}
}

// getContext scans the one row of query (written with ?) into dest.
func getContext(ctx context.Context, ex Executor, dest any, query string, args ...any) error {
	observe(ex, query, args)
	if st := ex.prepared(ctx, query); st != nil {
		return st.GetContext(ctx, dest, args...)
	}
	return sqlx.GetContext(ctx, ex.ext(), dest, q(ex.dialect(), query), args...)
}

// selectContext scans the rows of query (written with ?) into dest, a pointer to a slice.
func selectContext(ctx context.Context, ex Executor, dest any, query string, args ...any) error {
	observe(ex, query, args)
	return sqlx.SelectContext(ctx, ex.ext(), dest, q(ex.dialect(), query), args...)
}

// execContext runs a statement (written with ?) in tx.
func execContext(ctx context.Context, ex Executor, query string, args ...any) (sql.Result, error) {
	observe(ex, query, args)
	if st := ex.prepared(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return ex.ext().ExecContext(ctx, q(ex.dialect(), query), args...)
}

// prepareInTx prepares query (written with ?) in tx, for a statement that a batch runs once per
// row on SQLite: modernc.org/sqlite parses a statement again at every Exec of its text, which
// would cost a batch more than its writes. The caller closes it.
func prepareInTx(ctx context.Context, tx *Tx, query string) (*sql.Stmt, error) {
	st, err := tx.X.PrepareContext(ctx, q(tx.Dialect, query))
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: prepare %q: %w", query, err)))
	}
	return st, nil
}

// notFound describes a failed read of one row: ErrNotFound for no row, the translated error
// otherwise.
func notFound(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("persistence: %s: %w", what, ErrNotFound)
	}
	return translate(fmt.Errorf("persistence: get %s: %w", what, err))
}

// conflictUnlessOne checks that a write changed exactly one row: ErrConflict when it changed none.
func conflictUnlessOne(res sql.Result, format string, args ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("persistence: rows affected: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("persistence: %s: %w", fmt.Sprintf(format, args...), ErrConflict)
	}
	return nil
}

// selectBounded scans the rows of query (written with ?) as S and returns them converted by row,
// stopping after the row that takes the sum of their Bytes past maxBytes (0 for no bound): a list
// of large rows never holds much more than a page's worth in memory, however many its LIMIT
// allows. The rows not scanned are never converted; on PostgreSQL the driver still reads and
// discards them off the connection, which is why callers ask for few rows at a time.
func selectBounded[S any, R interface{ Bytes() int }](ctx context.Context, ex Executor, maxBytes int, row func(S) R,
	query string, args ...any) ([]R, error) {
	rows, err := ex.ext().QueryxContext(ctx, q(ex.dialect(), query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []R
	total := 0
	for rows.Next() {
		var s S
		if err := rows.StructScan(&s); err != nil {
			return nil, err
		}
		r := row(s)
		out = append(out, r)
		if total += r.Bytes(); maxBytes > 0 && total > maxBytes {
			break
		}
	}
	return out, rows.Err()
}
