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
//
// Citus: when FSMD_TEST_CITUS_URL names a Citus coordinator's database (with the citus extension
// and its workers registered), Each runs a third subtest, "citus", and Citus and CitusDatabaseURL
// give a test a schema of its own in that database (fsmd_test_..., reached through search_path,
// dropped with its distributed tables when the test ends; a database per test would be created on
// every node, which takes seconds), with 4 shards per table instead of Citus's 32, which is enough
// for statements to be routed to one shard or fanned out to several. Without the variable Citus
// skips the test, or fails it under CI=true.
//
// The bench programs, which are not tests, make their databases with the functions under them:
// NewPostgresDatabase, or OpenServer and Server.CreateDatabase, which return errors and a drop
// function instead of ending a test.
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

// EnvCitusURL names the environment variable with the URL of the test Citus coordinator's database.
const EnvCitusURL = "FSMD_TEST_CITUS_URL"

// citusShards is the shard count of the tables of a test's schema on Citus.
const citusShards = 4

// dbPrefix begins the name of every database Postgres creates.
const dbPrefix = "fsmd_test_"

// PostgresURL is the URL of the test server: FSMD_TEST_DATABASE_URL or DefaultPostgresURL.
func PostgresURL() string {
	if u := os.Getenv(EnvPostgresURL); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// Server is a connection to the maintenance database of a PostgreSQL server, which creates and
// drops the databases of tests and bench runs.
type Server struct {
	url string
	db  *sql.DB
}

// OpenServer connects to the server at serverURL (a postgres:// URL naming its maintenance
// database) and checks within 5 s that it answers.
func OpenServer(ctx context.Context, serverURL string) (*Server, error) {
	s, err := openServer(ctx, serverURL)
	if err != nil {
		return nil, fmt.Errorf("dbtest: PostgreSQL at %s: %w", persistence.Redact(serverURL), err)
	}
	return s, nil
}

func openServer(ctx context.Context, serverURL string) (*Server, error) {
	db, err := sql.Open("postgres", serverURL)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, err
	}
	return &Server{url: serverURL, db: db}, nil
}

// DB is the connection to the maintenance database, for statements of the server's own
// (SHOW server_version, CHECKPOINT).
func (s *Server) DB() *sql.DB { return s.db }

// Close closes the connection. Databases not dropped yet stay.
func (s *Server) Close() error { return s.db.Close() }

// CreateDatabase creates an empty database named prefix followed by 16 random hex digits, and
// returns its URL (the server's, naming it) and a function that drops it (WITH (FORCE): sessions
// left open do not keep it; dropping twice is harmless).
func (s *Server) CreateDatabase(ctx context.Context, prefix string) (dbURL string, drop func() error, err error) {
	name := prefix + randomHex(8)
	dbURL, err = withDatabase(s.url, name)
	if err != nil {
		return "", nil, fmt.Errorf("dbtest: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("dbtest: create database %s on %s: %w", name, persistence.Redact(s.url), err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dbtest: drop database %s: %w", name, err)
		}
		return nil
	}
	return dbURL, drop, nil
}

// NewPostgresDatabase creates an empty database named prefix followed by random hex digits on the
// server at serverURL, for a program (a bench run) rather than a test. It returns the database's
// URL and a function that drops it and closes the connection to the server.
func NewPostgresDatabase(ctx context.Context, serverURL, prefix string) (dbURL string, drop func() error, err error) {
	srv, err := OpenServer(ctx, serverURL)
	if err != nil {
		return "", nil, err
	}
	dbURL, dropDB, err := srv.CreateDatabase(ctx, prefix)
	if err != nil {
		srv.Close()
		return "", nil, err
	}
	return dbURL, func() error {
		defer srv.Close()
		return dropDB()
	}, nil
}

// shared is the test server of PostgresURL, opened once per process.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

func sharedServer() (*Server, error) {
	shared.once.Do(func() {
		shared.srv, shared.err = openServer(context.Background(), PostgresURL())
	})
	return shared.srv, shared.err
}

// Postgres returns a fresh migrated database of its own on the test server, dropped when the test
// ends. An unreachable server skips the test, or fails it when CI=true.
func Postgres(t testing.TB) *persistence.DB {
	t.Helper()
	db, _ := postgres(t)
	return db
}

// PostgresDatabaseURL is like Postgres but returns the URL of the fresh database (migrated, still
// dropped when the test ends) for a test that opens it itself, as a child process would.
func PostgresDatabaseURL(t testing.TB) string {
	t.Helper()
	_, u := postgres(t)
	return u
}

// PostgresProxied is like Postgres, the database reached through a Proxy of its own (with a
// connect timeout of 2 s), which the test can cut, restore, or make drop a connection at a chosen
// request (Proxy.DropAt).
func PostgresProxied(t testing.TB) (*persistence.DB, *Proxy) {
	t.Helper()
	u, err := url.Parse(PostgresDatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, u.Host)
	u.Host = p.Addr()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	db, err := persistence.Open(context.Background(), u.String())
	if err != nil {
		t.Fatalf("dbtest: open %s through a proxy: %v", persistence.Redact(u.String()), err)
	}
	t.Cleanup(func() { db.Close() })
	return db, p
}

// postgres makes the database of Postgres and returns it open, and its URL.
func postgres(t testing.TB) (*persistence.DB, string) {
	t.Helper()
	srv, err := sharedServer()
	if err != nil {
		unreachable(t, os.Getenv("CI") == "true", PostgresURL(), err)
		return nil, "" // a recorder's Skip returns
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, drop, err := srv.CreateDatabase(ctx, dbPrefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	db, err := persistence.Open(ctx, u)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", persistence.Redact(u), err)
	}
	t.Cleanup(func() { db.Close() })
	return db, u
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

// Each runs fn in parallel subtests: "postgres" with Postgres(t), "sqlite" with SQLite(t) and
// "citus" with Citus(t). The subtests call t.Parallel themselves: fn must not.
func Each(t *testing.T, fn func(t *testing.T, db *persistence.DB)) {
	t.Helper()
	for _, d := range []struct {
		name string
		open func(testing.TB) *persistence.DB
	}{{"postgres", Postgres}, {"sqlite", SQLite}, {"citus", Citus}} {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			fn(t, d.open(t))
		})
	}
}

// Databases are the URL makers of Each's subtests by name, for a test that starts fsmd on each.
var Databases = map[string]func(testing.TB) string{"postgres": PostgresDatabaseURL, "sqlite": SQLiteURL, "citus": CitusDatabaseURL}

// Citus returns a migrated, distributed schema of its own in the test Citus database
// (FSMD_TEST_CITUS_URL), dropped when the test ends. Without the variable the test is skipped, or
// fails when CI=true.
func Citus(t testing.TB) *persistence.DB {
	t.Helper()
	u := CitusDatabaseURL(t)
	db, err := persistence.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", persistence.Redact(u), err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// CitusDatabaseURL is like Citus but returns the URL of the fresh schema (empty: the first Open
// migrates and distributes it) for a test that opens it itself.
func CitusDatabaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvCitusURL)
	if base == "" {
		msg := "dbtest: no Citus coordinator (set " + EnvCitusURL + " to the URL of a database with the citus extension)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: a missing database fails the test)")
		}
		t.Skip(msg)
		return ""
	}
	srv, err := citusServer(base)
	if err != nil {
		unreachable(t, os.Getenv("CI") == "true", base, err)
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, drop, err := srv.CreateSchema(ctx, base, dbPrefix, citusShards)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Error(err)
		}
	})
	return u
}

// CreateSchema creates an empty schema named prefix followed by 16 random hex digits in the
// database of dbURL on s, and returns dbURL with search_path naming it (and, when shards > 0, with
// citus.shard_count set to it), and a function that drops the schema with its tables.
func (s *Server) CreateSchema(ctx context.Context, dbURL, prefix string, shards int) (schemaURL string, drop func() error, err error) {
	pu, err := url.Parse(dbURL)
	if err != nil {
		return "", nil, fmt.Errorf("dbtest: %s is not a valid URL", persistence.Redact(dbURL))
	}
	schema := prefix + randomHex(8)
	if _, err := s.db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("dbtest: create schema %s on %s: %w", schema, persistence.Redact(dbURL), err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	if shards > 0 {
		q.Set("citus.shard_count", fmt.Sprint(shards))
	}
	pu.RawQuery = q.Encode()
	return pu.String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			return fmt.Errorf("dbtest: drop schema %s: %w", schema, err)
		}
		return nil
	}, nil
}

// citus is the test Citus database, opened once per process.
var citus struct {
	once sync.Once
	srv  *Server
	err  error
}

func citusServer(u string) (*Server, error) {
	citus.once.Do(func() { citus.srv, citus.err = openServer(context.Background(), u) })
	return citus.srv, citus.err
}

// unreachable ends a test that needs the server at u: a failure under CI, a skip otherwise.
func unreachable(t testing.TB, ci bool, u string, err error) {
	t.Helper()
	msg := fmt.Sprintf("dbtest: PostgreSQL at %s (set %s) is unreachable: %v", persistence.Redact(u), EnvPostgresURL, err)
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
		return "", fmt.Errorf("%s is not a valid URL", persistence.Redact(u))
	}
	if pu.Scheme != "postgres" && pu.Scheme != "postgresql" {
		return "", fmt.Errorf("%s is not a postgres:// URL", persistence.Redact(u))
	}
	pu.Path = "/" + name
	pu.RawPath = ""
	return pu.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
