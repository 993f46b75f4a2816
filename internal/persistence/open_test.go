package persistence_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	sqliteDefaults := "_busy_timeout=5000&_foreign_keys=1&_journal_mode=WAL&_txlock=immediate"
	for _, tc := range []struct {
		url     string
		dialect persistence.Dialect
		driver  string
		dsn     string // "" for an error
	}{
		{"postgres://u@h:5432/db?sslmode=disable", persistence.Postgres, "postgres",
			"postgres://u@h:5432/db?binary_parameters=yes&sslmode=disable"},
		{"postgresql://u:p@h/db", persistence.Postgres, "postgres", "postgresql://u:p@h/db?binary_parameters=yes"},
		{"postgres://h/db?binary_parameters=no", persistence.Postgres, "postgres", "postgres://h/db?binary_parameters=no"},
		{"sqlite:fsmd.db", persistence.SQLite, "sqlite", "fsmd.db?" + sqliteDefaults},
		{"sqlite:///var/lib/fsmd.db", persistence.SQLite, "sqlite", "/var/lib/fsmd.db?" + sqliteDefaults},
		{"sqlite:/tmp/a b.db", persistence.SQLite, "sqlite", "/tmp/a b.db?" + sqliteDefaults},
		{"file:fsmd.db", persistence.SQLite, "sqlite", "file:fsmd.db?" + sqliteDefaults},
		{"file:/tmp/x.db?mode=rwc", persistence.SQLite, "sqlite", "file:/tmp/x.db?" + sqliteDefaults + "&mode=rwc"},
		{"fsmd.db", persistence.SQLite, "sqlite", "fsmd.db?" + sqliteDefaults},
		{"./data/fsmd.db", persistence.SQLite, "sqlite", "./data/fsmd.db?" + sqliteDefaults},
		{"sqlite:x.db?_busy_timeout=10&_journal_mode=DELETE", persistence.SQLite, "sqlite",
			"x.db?_busy_timeout=10&_foreign_keys=1&_journal_mode=DELETE&_txlock=immediate"},
		{"sqlite:x.db?_pragma=busy_timeout(10)&_txlock=deferred&_fk=0", persistence.SQLite, "sqlite",
			"x.db?_foreign_keys=1&_journal_mode=WAL&_pragma=busy_timeout%2810%29&_txlock=immediate"},
		{"", "", "", ""},
		{"sqlite:", "", "", ""},
		{"mysql://h/db", "", "", ""},
	} {
		d, driver, dsn, err := persistence.ParseURL(tc.url)
		if tc.dsn == "" {
			if err == nil {
				t.Errorf("%q: %s %s %q, want an error", tc.url, d, driver, dsn)
			}
			continue
		}
		if err != nil || d != tc.dialect || driver != tc.driver || dsn != tc.dsn {
			t.Errorf("%q:\n got %s %s %q %v\nwant %s %s %q", tc.url, d, driver, dsn, err, tc.dialect, tc.driver, tc.dsn)
		}
	}
}

// TestOpenTwice: opening a migrated database again applies nothing and keeps the data; opening
// it from several processes at once (here: pools) is safe.
func TestOpenTwice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  func(t testing.TB) string
	}{
		{"postgres", dbtest.PostgresDatabaseURL},
		{"sqlite", dbtest.SQLiteURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			u := tc.url(t)
			db, err := persistence.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, nil)
			versions := migrationVersions(t, db)
			if len(versions) == 0 {
				t.Fatal("no migration recorded")
			}
			db.Close()

			var wg sync.WaitGroup
			dbs := make([]*persistence.DB, 3)
			errs := make([]error, 3)
			for i := range dbs {
				wg.Go(func() { dbs[i], errs[i] = persistence.Open(ctx, u) })
			}
			wg.Wait()
			for i, db := range dbs {
				if errs[i] != nil {
					t.Fatalf("Open again: %v", errs[i])
				}
				defer db.Close()
			}
			if again := migrationVersions(t, dbs[0]); strings.Join(again, ",") != strings.Join(versions, ",") {
				t.Errorf("migrations after opening again: %v, want %v", again, versions)
			}
			if _, err := persistence.DefinitionGet(ctx, dbs[1], "order", 1); err != nil {
				t.Errorf("the data after opening again: %v", err)
			}
			if err := dbs[2].Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
}

// migrationVersions lists the applied migrations.
func migrationVersions(t testing.TB, db *persistence.DB) []string {
	t.Helper()
	var v []string
	err := db.X.SelectContext(context.Background(), &v,
		`SELECT CAST(version_id AS TEXT) FROM fsmd_migrations WHERE is_applied AND version_id > 0 ORDER BY id`)
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	return v
}

func TestOpenSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "fsmd.db")
	for _, u := range []string{path, "sqlite:" + path, "file:" + path} {
		db, err := persistence.Open(ctx, u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		var mode string
		var fk, timeout int
		if err := db.X.QueryRowxContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.X.QueryRowxContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := db.X.QueryRowxContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 || timeout != 5000 {
			t.Errorf("Open(%q): journal_mode %s, foreign_keys %d, busy_timeout %d", u, mode, fk, timeout)
		}
		db.Close()
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database file: %v", err)
	}

	// In memory: one connection, so that every query sees the same database.
	db, err := persistence.Open(ctx, "file::memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, nil)
	if _, err := persistence.DefinitionGet(ctx, db, "order", 1); err != nil {
		t.Errorf("in memory: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range []string{
		"postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2", // nothing listens
		"sqlite:" + filepath.Join(t.TempDir(), "no", "such", "dir", "fsmd.db"),
		"redis://localhost",
	} {
		db, err := persistence.Open(ctx, u)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded, want an error", u)
		}
	}
}

// TestForeignKeys: the schema's references hold on both dialects.
func TestForeignKeys(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		err := db.WithTx(ctx, func(tx *persistence.Tx) error {
			return persistence.InstanceInsert(ctx, tx, instance("i", "nope", 1, "created"))
		})
		if err == nil {
			t.Error("an instance of no definition was stored")
		}
	})
}
