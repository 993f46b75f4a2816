package persistence

import "context"

// Internals for the tests of package persistence_test (which may import dbtest; package
// persistence may not).

// SetRetryHook makes WithTx call f before every retry.
func SetRetryHook(db *DB, f func(attempt int, err error)) { db.onRetry = f }

// SetStatementObserver makes the store functions tell f of every statement they run on db (nil:
// none), with its arguments; set it before using db.
func SetStatementObserver(db *DB, f func(query string, args []any)) { db.onStatement = f }

// SQL is query, written with ?, as the database gets it.
func SQL(d Dialect, query string) string { return q(d, query) }

var (
	ParseURL  = parseURL
	Translate = translate
	Retryable = retryable
)

const MaxAttempts = maxAttempts

// ScanTime scans src as a time column.
func ScanTime(src any) (t dbTime, err error) {
	err = t.Scan(src)
	return t, err
}

// MigrationLock is the advisory lock id of db's schema migrations.
func MigrationLock(db *DB) (int64, error) { return migrationLock(context.Background(), db) }

const MigrationLockID = migrationLockID
