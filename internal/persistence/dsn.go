package persistence

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// parseURL picks the dialect and driver of a database URL (see Open) and returns the driver's DSN.
func parseURL(u string) (Dialect, string, string, error) {
	switch {
	case u == "":
		return "", "", "", errors.New("persistence: empty database URL")
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		dsn, err := postgresDSN(u)
		return Postgres, "postgres", dsn, err
	case strings.HasPrefix(u, "sqlite://"):
		return sqliteDSN(strings.TrimPrefix(u, "sqlite://"))
	case strings.HasPrefix(u, "sqlite:"):
		return sqliteDSN(strings.TrimPrefix(u, "sqlite:"))
	case strings.Contains(u, "://") && !strings.HasPrefix(u, "file:"):
		scheme, _, _ := strings.Cut(u, "://")
		return "", "", "", fmt.Errorf("persistence: unsupported database URL scheme %q (postgres://, postgresql://, sqlite:, file: or a file path)", scheme)
	default: // file:PATH (an SQLite URI, kept as it is) or a plain path
		return sqliteDSN(u)
	}
}

// postgresDSN adds binary_parameters=yes unless the URL sets it: lib/pq then sends a query with
// arguments as Parse, Bind and Execute in one round trip instead of preparing it first. The store
// functions never pass []byte arguments (which that mode would send as binary data).
func postgresDSN(u string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("persistence: database URL: %w", err)
	}
	qv := pu.Query()
	if !qv.Has("binary_parameters") {
		qv.Set("binary_parameters", "yes")
	}
	pu.RawQuery = qv.Encode()
	return pu.String(), nil
}

// sqliteDSN returns modernc.org/sqlite's DSN for a path (or file: URI) with an optional query:
// foreign keys on and immediate transactions always; busy_timeout 5000 ms and WAL unless the
// query sets them.
func sqliteDSN(p string) (Dialect, string, string, error) {
	path, rawQuery, _ := strings.Cut(p, "?")
	if path == "" || path == "file:" {
		return "", "", "", errors.New("persistence: SQLite URL without a file path")
	}
	qv, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", "", "", fmt.Errorf("persistence: SQLite URL query: %w", err)
	}
	pragmaSet := func(name string) bool {
		for _, v := range qv["_pragma"] {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), name) {
				return true
			}
		}
		return false
	}
	if !qv.Has("_busy_timeout") && !qv.Has("_timeout") && !pragmaSet("busy_timeout") {
		qv.Set("_busy_timeout", "5000")
	}
	if !qv.Has("_journal_mode") && !qv.Has("_journal") && !pragmaSet("journal_mode") {
		qv.Set("_journal_mode", "WAL")
	}
	// Not negotiable: the schema relies on foreign keys, WithTx on BEGIN IMMEDIATE.
	qv.Del("_fk")
	qv.Set("_foreign_keys", "1")
	qv.Set("_txlock", "immediate")
	return SQLite, "sqlite", path + "?" + qv.Encode(), nil
}

// isSQLiteMemory reports whether an SQLite DSN names an in-memory database.
func isSQLiteMemory(dsn string) bool {
	path, rawQuery, _ := strings.Cut(dsn, "?")
	path = strings.TrimPrefix(path, "file:")
	if path == ":memory:" || strings.HasPrefix(path, ":memory:") {
		return true
	}
	qv, _ := url.ParseQuery(rawQuery)
	return qv.Get("mode") == "memory"
}
