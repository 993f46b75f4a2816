package persistence

// Internals for the tests of package persistence_test (which may import dbtest; package
// persistence may not).

// SetRetryHook makes WithTx call f before every retry.
func SetRetryHook(db *DB, f func(attempt int, err error)) { db.onRetry = f }

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
