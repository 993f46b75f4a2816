package dbtest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	var names []string
	t.Run("two databases", func(t *testing.T) {
		a, b := Postgres(t), Postgres(t)
		for _, db := range []*persistence.DB{a, b} {
			var name string
			if err := db.X.Get(&name, "SELECT current_database()"); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(name, dbPrefix) {
				t.Errorf("database %q, want the prefix %s", name, dbPrefix)
			}
			names = append(names, name)
			if v, err := persistence.DefinitionLatestVersion(context.Background(), db, "x"); err != nil || v != 0 {
				t.Errorf("the database is not migrated: %v", err)
			}
		}
		if names[0] == names[1] {
			t.Errorf("the same database twice: %s", names[0])
		}
	})
	if t.Skipped() || len(names) != 2 {
		return
	}
	// Dropped once the test is over.
	srv, err := sharedServer()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := srv.DB().QueryRow("SELECT count(*) FROM pg_database WHERE datname = $1 OR datname = $2", names[0], names[1]).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d of the databases %v are left after the test", n, names)
	}
}

func TestPostgresDatabaseURL(t *testing.T) {
	t.Parallel()
	u := PostgresDatabaseURL(t)
	if !strings.Contains(u, "/"+dbPrefix) {
		t.Errorf("URL %s does not name a test database", u)
	}
	db, err := persistence.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	var dir string
	t.Run("open", func(t *testing.T) {
		db := SQLite(t)
		var file string
		if err := db.X.Get(&file, "SELECT file FROM pragma_database_list WHERE name = 'main'"); err != nil {
			t.Fatal(err)
		}
		dir = filepath.Dir(file)
		if _, err := persistence.DefinitionLatestVersion(context.Background(), db, "x"); err != nil {
			t.Errorf("the database is not migrated: %v", err)
		}
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the database's folder %s is left after the test: %v", dir, err)
	}
}

func TestEach(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]persistence.Dialect{}
	t.Run("each", func(t *testing.T) {
		Each(t, func(t *testing.T, db *persistence.DB) {
			mu.Lock()
			defer mu.Unlock()
			seen[t.Name()] = db.Dialect
		})
	})
	want := map[string]persistence.Dialect{
		"TestEach/each/postgres": persistence.Postgres,
		"TestEach/each/sqlite":   persistence.SQLite,
	}
	for name, d := range want {
		got, ok := seen[name]
		if !ok && d == persistence.Postgres {
			continue // skipped: no server
		}
		if got != d {
			t.Errorf("%s: dialect %q, want %q", name, got, d)
		}
	}
}

// recorder is a testing.TB that records Fatal and Skip instead of ending the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()           {}
func (r *recorder) Fatal(args ...any) { r.fatal = args[0].(string) }
func (r *recorder) Skip(args ...any)  { r.skip = args[0].(string) }

func TestUnreachable(t *testing.T) {
	t.Parallel()
	u := "postgres://me:secret@db.example:5432/postgres"
	for _, tc := range []struct {
		name  string
		ci    bool
		fatal bool
	}{{"CI fails", true, true}, {"elsewhere skips", false, false}} {
		r := &recorder{}
		unreachable(r, tc.ci, u, errors.New("connection refused"))
		msg := r.skip
		if tc.fatal {
			msg = r.fatal
		}
		if (r.fatal != "") != tc.fatal || (r.skip != "") == tc.fatal {
			t.Errorf("%s: fatal %q, skip %q", tc.name, r.fatal, r.skip)
		}
		for _, want := range []string{"db.example:5432", EnvPostgresURL, "connection refused"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: %q does not name %s", tc.name, msg, want)
			}
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("%s: %q shows the password", tc.name, msg)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/fsmd_test_x?sslmode=disable"},
		{"postgresql://u:p@h/", "postgresql://u:p@h/fsmd_test_x"},
		{"postgres://h", "postgres://h/fsmd_test_x"},
		{"sqlite:x.db", ""},
	} {
		got, err := withDatabase(tc.in, "fsmd_test_x")
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: %s, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %s %v, want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestPostgresURLFromEnvironment(t *testing.T) {
	// Not parallel: it sets the environment.
	t.Setenv(EnvPostgresURL, "")
	if got := PostgresURL(); got != DefaultPostgresURL {
		t.Errorf("PostgresURL() = %s, want the default", got)
	}
	t.Setenv(EnvPostgresURL, "postgres://elsewhere/db")
	if got := PostgresURL(); got != "postgres://elsewhere/db" {
		t.Errorf("PostgresURL() = %s, want the environment's", got)
	}
}

func TestNewPostgresDatabase(t *testing.T) {
	t.Parallel()
	srv, err := sharedServer()
	if err != nil {
		unreachable(t, os.Getenv("CI") == "true", PostgresURL(), err)
	}
	ctx := context.Background()
	u, drop, err := NewPostgresDatabase(ctx, PostgresURL(), "fsmd_test_program_")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u[strings.LastIndex(u, "/"):strings.Index(u+"?", "?")], "/")
	exists := func() bool {
		var n int
		if err := srv.DB().QueryRowContext(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	if !strings.HasPrefix(name, "fsmd_test_program_") || !exists() {
		t.Fatalf("URL %s: no database %q", u, name)
	}
	db, err := persistence.Open(ctx, u) // left open: the drop forces it closed
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := drop(); err != nil {
		t.Fatal(err)
	}
	if exists() {
		t.Errorf("database %s is left after drop", name)
	}
}

func TestOpenServerRedacts(t *testing.T) {
	t.Parallel()
	_, err := OpenServer(context.Background(), "postgres://me:secret@127.0.0.1:1/postgres?sslmode=disable")
	if err == nil {
		t.Fatal("no error from a closed port")
	}
	if msg := err.Error(); strings.Contains(msg, "secret") || !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("%q: want the host and not the password", msg)
	}
}
