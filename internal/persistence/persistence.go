package persistence

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // the "postgres" driver
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// Dialect names the database behind a DB.
type Dialect string

// The dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Pool sizes. SQLite has one writer at a time whatever the pool (WithTx serializes the writers of
// this process before BEGIN), a few connections serve the concurrent readers WAL allows.
const (
	postgresMaxConns = 16
	sqliteMaxConns   = 4
)

// DB is an open, migrated database.
type DB struct {
	X       *sqlx.DB
	Dialect Dialect
	// Citus is true on a PostgreSQL database with the citus extension, whose schema Open put in its
	// distributed form (distribute.go); Distributed is true when this Open distributed the tables.
	Citus, Distributed bool

	// writeSem (SQLite only) admits one WithTx at a time, so the writers of this process queue in
	// FIFO order in Go instead of polling SQLite's lock through busy_timeout.
	writeSem chan struct{}
	// onRetry, when set (tests), is told about every retried attempt.
	onRetry func(attempt int, err error)
	// onStatement, when set (tests), is told about every statement the store functions run.
	onStatement func(query string, args []any)
	// stmts (PostgreSQL only) holds the queries of preparedQueries, prepared at Open (see
	// prepared); read-only afterwards.
	stmts map[string]*sqlx.Stmt
	// keyed (Citus only) are the definitions known to have keys (keys_citus.go).
	keyed keyed
	// router (Citus only) sends each event's call to its instance's worker (route_citus.go).
	router *router
}

// Tx is a transaction begun by DB.WithTx.
type Tx struct {
	X       *sqlx.Tx
	Dialect Dialect
	db      *DB
	after   []func() // AfterCommit's
}

// AfterCommit has f called once the transaction has committed (not when it rolls back, nor for an
// attempt WithTx retries): to tell others of what it wrote.
func (tx *Tx) AfterCommit(f func()) { tx.after = append(tx.after, f) }

// AfterCommit calls f now: what was written through the database itself (a statement its own
// transaction, or InstanceAdvance's) has committed by the time the call returns.
func (db *DB) AfterCommit(f func()) { f() }

// Executor runs the queries of the store functions that only read, and the writes that may run on
// their own (InstanceAdvance): a *DB (each query on its own) or a *Tx (inside the caller's
// transaction). AfterCommit tells what was written once it is committed, whichever it is, so that
// callers never ask which. The interface is sealed: only this package's types satisfy it.
type Executor interface {
	AfterCommit(f func())
	ext() sqlx.ExtContext
	dialect() Dialect
	citus() bool
	prepared(ctx context.Context, query string) *sqlx.Stmt
}

func (db *DB) ext() sqlx.ExtContext { return db.X }
func (db *DB) dialect() Dialect     { return db.Dialect }
func (tx *Tx) ext() sqlx.ExtContext { return tx.X }
func (tx *Tx) dialect() Dialect     { return tx.Dialect }
func (db *DB) citus() bool          { return db.Citus }
func (tx *Tx) citus() bool          { return tx.db.Citus }

// Open connects to the database that url names and applies the schema migrations:
//
//   - "postgres://..." or "postgresql://..." (lib/pq; binary_parameters=yes is added unless the URL
//     sets it, so a query with arguments takes one round trip);
//   - "sqlite:PATH", "file:PATH" (an SQLite URI) or a plain file path (modernc.org/sqlite), with
//     WAL, busy_timeout 5000 ms, foreign keys on and _txlock=immediate (a transaction takes the
//     write lock at BEGIN). The URL may set _busy_timeout or _journal_mode itself; foreign keys and
//     the immediate transactions are always on.
func Open(ctx context.Context, url string) (*DB, error) {
	d, driver, dsn, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	x, err := sqlx.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("persistence: open %s: %w", d, err)
	}
	db := &DB{X: x, Dialect: d}
	switch d {
	case Postgres:
		boundPostgresPool(x)
	case SQLite:
		n := sqliteMaxConns
		if isSQLiteMemory(dsn) {
			n = 1 // every connection to :memory: would be a database of its own
		}
		x.SetMaxOpenConns(n)
		x.SetMaxIdleConns(n)
		db.writeSem = make(chan struct{}, 1)
	}
	if err := db.Ping(ctx); err != nil {
		x.Close()
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		x.Close()
		return nil, err
	}
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if db.Citus {
		db.startRouting(ctx, dsn)
	}
	return db, nil
}

// boundPostgresPool bounds a pool of PostgreSQL connections: the database's, or a Citus worker's
// (route_citus.go).
func boundPostgresPool(x *sqlx.DB) {
	x.SetMaxOpenConns(postgresMaxConns)
	x.SetMaxIdleConns(postgresMaxConns)
	x.SetConnMaxIdleTime(5 * time.Minute)
}

// Close closes the prepared statements and the pool.
func (db *DB) Close() error {
	if db.router != nil {
		db.router.close()
	}
	for _, st := range db.stmts {
		st.Close()
	}
	return db.X.Close()
}

// Ping checks that the database answers (errors.Is(err, ErrUnavailable) when it does not).
func (db *DB) Ping(ctx context.Context) error {
	if err := db.X.PingContext(ctx); err != nil {
		return translate(fmt.Errorf("persistence: ping %s: %w", db.Dialect, err))
	}
	return nil
}

// Retries of WithTx: maxAttempts runs in all, after a pause of about retryBase, twice that, and so
// on (each drawn at random between half and all of it).
const (
	maxAttempts = 5
	retryBase   = 10 * time.Millisecond
)

// WithTx runs fn in one transaction and commits it when fn returns nil.
//
// It rolls back when fn returns an error or panics (the panic goes on), and when ctx is canceled
// before fn returns. The transaction runs under context.WithoutCancel(ctx), so a canceled request
// still rolls back and releases its connection (and its locks), and a commit begun is not cut
// short; the queries of fn run with the ctx they are given.
//
// A PostgreSQL serialization failure (40001) or deadlock (40P01), or SQLITE_BUSY or SQLITE_LOCKED,
// reruns the whole of fn in a new transaction, up to 5 runs with short jittered pauses; fn must
// therefore have no effect outside the transaction (or one that is safe to repeat), and must keep
// the database error in its error chain (wrap with %w) for the retry to see it.
//
// The error returned is translated: errors.Is(err, ErrNotFound) for sql.ErrNoRows, ErrConflict for
// a unique violation, ErrInvalidText for text PostgreSQL cannot store, ErrUnavailable for a
// database out of reach; the driver's error stays in the chain, and ctx.Err() joins it when ctx
// is done. WithTx does not nest: fn must use tx, never db.
func (db *DB) WithTx(ctx context.Context, fn func(tx *Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.runTx(ctx, fn)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return translate(canceled(ctx, err))
		}
		if attempt >= maxAttempts || !retryable(err) {
			return translate(err)
		}
		if db.onRetry != nil {
			db.onRetry(attempt, err)
		}
		if sleepErr := sleepCtx(ctx, backoff(attempt)); sleepErr != nil {
			return translate(fmt.Errorf("%w: %w", sleepErr, err))
		}
	}
}

// canceled is err, the failure of work under ctx, marked with ctx's error when ctx is done, even when
// the driver reports the cancellation its own way (lib/pq: "canceling statement due to user
// request", 57014).
func canceled(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w: %w", ctxErr, err)
	}
	return err
}

// runTx is one attempt of WithTx.
//
// The transaction lives in a context of its own, free of ctx's deadline and cancellation
// (context.WithoutCancel) but canceled while fn runs if ctx is: BEGIN does not outlast the request,
// and database/sql rolls the transaction back as soon as the request is canceled. Once fn has
// returned nil, nothing but the commit's own outcome decides: the commit is not cut short.
func (db *DB) runTx(ctx context.Context, fn func(tx *Tx) error) error {
	if db.writeSem != nil {
		select {
		case db.writeSem <- struct{}{}:
			defer func() { <-db.writeSem }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	txCtx, cancelTx := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTx()
	stop := context.AfterFunc(ctx, cancelTx)
	defer stop()

	x, err := db.X.BeginTxx(txCtx, nil)
	if err != nil {
		return fmt.Errorf("persistence: begin: %w", err)
	}
	done := false
	defer func() {
		if !done { // an error or a panic; ErrTxDone when ctx's cancellation rolled back already
			_ = x.Rollback()
		}
	}()
	tx := &Tx{X: x, Dialect: db.Dialect, db: db}
	if err := fn(tx); err != nil {
		return err
	}
	if !stop() { // ctx was canceled while fn ran: the transaction is being rolled back
		return fmt.Errorf("persistence: transaction rolled back: %w", context.Cause(ctx))
	}
	done = true
	if err := x.Commit(); err != nil {
		return fmt.Errorf("persistence: commit: %w", err)
	}
	for _, f := range tx.after {
		f()
	}
	return nil
}

// backoff is the pause after the given failed attempt (1-based).
func backoff(attempt int) time.Duration {
	d := retryBase << (attempt - 1)
	return d/2 + rand.N(d/2)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// rebound caches the PostgreSQL form ($1, $2, ...) of the queries, written with ?.
var rebound sync.Map // string -> string

// q returns query in the bind syntax of d.
func q(d Dialect, query string) string {
	if d != Postgres {
		return query
	}
	if v, ok := rebound.Load(query); ok {
		return v.(string)
	}
	r := sqlx.Rebind(sqlx.DOLLAR, query)
	rebound.Store(query, r)
	return r
}
