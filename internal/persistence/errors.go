package persistence

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The errors the store functions and WithTx return, matched with errors.Is. The driver's error, when
// there is one, stays in the chain (errors.As with *pq.Error or *sqlite.Error).
var (
	// ErrNotFound: no such row (sql.ErrNoRows).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key is taken (PostgreSQL 23505, SQLite's UNIQUE or PRIMARY KEY
	// constraint), or InstanceUpdate found the instance at another revision.
	ErrConflict = errors.New("conflict")
	// ErrInvalidText: PostgreSQL refused text it cannot store: a NUL character (0x00, "\u0000" in
	// JSON) or bytes that are not UTF-8 (22021, 22P05). SQLite stores such text as it is.
	ErrInvalidText = errors.New("text the database cannot store")
	// ErrUnavailable: the database cannot be reached or went away (a refused or broken connection,
	// PostgreSQL shutting down or not accepting connections yet). Nothing is retried: a transaction
	// whose connection broke during COMMIT may or may not have committed.
	ErrUnavailable = errors.New("database unavailable")
)

// PostgreSQL error codes (SQLSTATE).
const (
	pgUniqueViolation       = "23505"
	pgSerializationFailure  = "40001"
	pgDeadlockDetected      = "40P01"
	pgCharacterNotInRepert  = "22021"
	pgUntranslatableCharact = "22P05"
)

// translated is a database error translated into one of the sentinel errors, keeping the original.
type translated struct {
	kind error // ErrNotFound, ErrConflict, ErrInvalidText
	err  error
}

func (e *translated) Error() string   { return e.kind.Error() + ": " + e.err.Error() }
func (e *translated) Unwrap() []error { return []error{e.kind, e.err} }

// translate maps database errors to the sentinel errors, once: an error already translated (or
// carrying a sentinel) is returned as it is.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrInvalidText),
		errors.Is(err, ErrUnavailable), errors.Is(err, ErrKeyExists):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return &translated{ErrNotFound, err}
	case keyIndexOf(err) != "": // before the other unique keys: a business key taken is no race (keylookup.go)
		return &translated{ErrKeyExists, err}
	case isUniqueViolation(err):
		return &translated{ErrConflict, err}
	case isInvalidText(err):
		return &translated{ErrInvalidText, err}
	case isUnavailable(err):
		return &translated{ErrUnavailable, err}
	}
	return err
}

func pgCode(err error) string {
	var pe *pq.Error
	if errors.As(err, &pe) {
		// Citus reports a unique violation met on a worker while it copies the rows of an INSERT
		// ... SELECT there as an internal error with the worker's message.
		if pe.Code == "XX000" && strings.HasPrefix(pe.Message, "duplicate key value violates unique constraint") {
			return pgUniqueViolation
		}
		return string(pe.Code)
	}
	return ""
}

// sqliteCode is the (extended) result code of an SQLite error, 0 for another error.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func isUniqueViolation(err error) bool {
	if pgCode(err) == pgUniqueViolation {
		return true
	}
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

func isInvalidText(err error) bool {
	switch pgCode(err) {
	case pgCharacterNotInRepert, pgUntranslatableCharact:
		return true
	}
	return false
}

// isUnavailable reports whether err says the database cannot be reached: a network error (dial,
// read, write), a connection closed under the driver, or PostgreSQL's connection exceptions (class
// 08) and operator interventions (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
// now).
func isUnavailable(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED):
		return true
	}
	switch code := pgCode(err); {
	case strings.HasPrefix(code, "08"), code == "57P01", code == "57P02", code == "57P03":
		return true
	}
	return false
}

// NeverSent reports whether err, an ErrUnavailable, says that the request never reached the
// database: no connection could be made (refused, unreachable, a dial that timed out), or
// PostgreSQL refused the connection itself (57P03, 08001, 08004). Any other broken connection may
// have carried a statement, or a COMMIT, that the server ran without the answer coming back: its
// outcome is uncertain.
func NeverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	switch pgCode(err) {
	case "57P03", "08001", "08004":
		return true
	}
	return false
}

// retryable reports whether rerunning the transaction may succeed: a serialization failure or a
// deadlock on PostgreSQL, the database locked by another connection on SQLite.
func retryable(err error) bool {
	switch pgCode(err) {
	case pgSerializationFailure, pgDeadlockDetected:
		return true
	}
	switch sqliteCode(err) & 0xff { // the primary code of an extended one (SQLITE_BUSY_SNAPSHOT...)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}
