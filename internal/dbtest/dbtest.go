// Package dbtest gives tests real, migrated databases of their own, on PostgreSQL and on SQLite
// (after river's riverdbtest). Every package whose tests need a database uses it.
//
//	func TestThing(t *testing.T) {
//		t.Parallel()
//		dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
//			// runs twice, in parallel subtests named postgres and sqlite
//		})
//	}
//
// PostgreSQL: each call of Postgres creates a database with a random name (fsmd_test_...) on the
// server of FSMD_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable;
// the role must be allowed to CREATE DATABASE) and drops it (WITH (FORCE)) when the test ends. When
// the server cannot be reached the test is skipped, or fails when CI=true.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq" // the "postgres" driver, for the server connection

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// DefaultPostgresURL is the server used when FSMD_TEST_DATABASE_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// EnvPostgresURL names the environment variable with the URL of the test server.
const EnvPostgresURL = "FSMD_TEST_DATABASE_URL"

// dbPrefix begins the name of every database Postgres creates.
const dbPrefix = "fsmd_test_"

// PostgresURL is the URL of the test server: FSMD_TEST_DATABASE_URL or DefaultPostgresURL.
func PostgresURL() string {
	if u := os.Getenv(EnvPostgresURL); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// server is the connection to the test server's maintenance database, opened once per process.
var server struct {
	once sync.Once
	db   *sql.DB
	err  error
}

func serverDB() (*sql.DB, error) {
	server.once.Do(func() {
		db, err := sql.Open("postgres", PostgresURL())
		if err != nil {
			server.err = err
			return
		}
		db.SetMaxOpenConns(4)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			server.err = err
			return
		}
		server.db = db
	})
	return server.db, server.err
}

// Postgres returns a fresh migrated database of its own on the test server, dropped when the test
// ends. An unreachable server skips the test, or fails it when CI=true.
func Postgres(t testing.TB) *persistence.DB {
	t.Helper()
	base := PostgresURL()
	srv, err := serverDB()
	if err != nil {
		unreachable(t, os.Getenv("CI") == "true", base, err)
	}
	name := dbPrefix + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := srv.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("dbtest: create database %s on %s: %v", name, redact(base), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := srv.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("dbtest: %s: %v", EnvPostgresURL, err)
	}
	db, err := persistence.Open(ctx, u)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", redact(u), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresDatabaseURL is like Postgres but returns the URL of the fresh database (migrated, still
// dropped when the test ends) for a test that opens it itself, as a child process would.
func PostgresDatabaseURL(t testing.TB) string {
	t.Helper()
	db := Postgres(t)
	var name string
	if err := db.X.QueryRowContext(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
		t.Fatalf("dbtest: current_database: %v", err)
	}
	u, err := withDatabase(PostgresURL(), name)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return u
}

// SQLite returns a migrated SQLite database in a file of t.TempDir(), closed when the test ends.
func SQLite(t testing.TB) *persistence.DB {
	t.Helper()
	db, err := persistence.Open(context.Background(), SQLiteURL(t))
	if err != nil {
		t.Fatalf("dbtest: open SQLite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// SQLiteURL returns the URL of an SQLite file (not created yet) in t.TempDir().
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "fsmd.db")
}

// Each runs fn in two parallel subtests, "postgres" with Postgres(t) and "sqlite" with SQLite(t).
// The subtests call t.Parallel themselves: fn must not.
func Each(t *testing.T, fn func(t *testing.T, db *persistence.DB)) {
	t.Helper()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, Postgres(t))
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, SQLite(t))
	})
}

// unreachable ends a test that needs the server at u: a failure under CI, a skip otherwise.
func unreachable(t testing.TB, ci bool, u string, err error) {
	t.Helper()
	msg := fmt.Sprintf("dbtest: PostgreSQL at %s (set %s) is unreachable: %v", redact(u), EnvPostgresURL, err)
	if ci {
		t.Fatal(msg + " (CI=true: a missing database fails the test)")
		return
	}
	t.Skip(msg)
}

// withDatabase returns the PostgreSQL URL u naming database name instead.
func withDatabase(u, name string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", redact(u), err)
	}
	if pu.Scheme != "postgres" && pu.Scheme != "postgresql" {
		return "", fmt.Errorf("%s is not a postgres:// URL", redact(u))
	}
	pu.Path = "/" + name
	pu.RawPath = ""
	return pu.String(), nil
}

// redact hides the password of a URL, for messages.
func redact(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return pu.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
