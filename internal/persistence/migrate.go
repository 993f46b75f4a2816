package persistence

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations holds the schema migrations, a folder per dialect, numbered files (goose SQL
// migrations, each applied in its own transaction).
//
//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrations embed.FS

// migrationTable records the migrations applied.
const migrationTable = "fsmd_migrations"

// migrationLockID is the PostgreSQL advisory lock held while migrating, so that processes starting
// together migrate one after the other.
const migrationLockID int64 = 0x66736d64 // "fsmd"

// migrate applies the migrations db has not had yet. Applying them again is a no-op.
func migrate(ctx context.Context, db *DB) error {
	files, err := fs.Sub(migrations, "migrations/"+string(db.Dialect))
	if err != nil {
		return fmt.Errorf("persistence: migrations: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(migrationTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
	dialect := goose.DialectSQLite3
	var lockID int64 // PostgreSQL's
	if db.Dialect == Postgres {
		dialect = goose.DialectPostgres
		if lockID, err = migrationLock(ctx, db); err != nil {
			return err
		}
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID))
		if err != nil {
			return fmt.Errorf("persistence: migrations: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db.X.DB, files, opts...)
	if err != nil {
		return fmt.Errorf("persistence: migrations: %w", err)
	}
	// p.Close would close db: the provider is simply dropped.
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("persistence: migrate %s: %w", db.Dialect, err)
	}
	if db.Dialect == Postgres {
		return distributeOnCitus(ctx, db, lockID)
	}
	return nil
}

// migrationLock is the advisory lock of the schema's migrations: migrationLockID for the schema
// public, as always; for another (fsmd's tables in a schema of their own, through search_path) one
// of its own, so that fsmd databases that share a PostgreSQL database do not wait for each other.
func migrationLock(ctx context.Context, db *DB) (int64, error) {
	var schema string
	if err := db.X.QueryRowContext(ctx, `SELECT coalesce(current_schema(), 'public')`).Scan(&schema); err != nil {
		return 0, translate(fmt.Errorf("persistence: migrations: the current schema: %w", err))
	}
	if schema == "public" {
		return migrationLockID, nil
	}
	h := fnv.New32a()
	h.Write([]byte(schema))
	return migrationLockID<<32 | int64(h.Sum32()), nil
}

// distributeOnCitus puts the schema in its distributed form (distribute.go) when the database has
// the citus extension, under the migrations' lock (lockID), and records on db that it is Citus.
func distributeOnCitus(ctx context.Context, db *DB, lockID int64) error {
	c, err := db.X.Conn(ctx)
	if err != nil {
		return translate(fmt.Errorf("persistence: distribute: %w", err))
	}
	defer c.Close()
	if db.Citus, err = isCitus(ctx, c); err != nil || !db.Citus {
		return translate(err)
	}
	if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return translate(fmt.Errorf("persistence: distribute: %w", err))
	}
	defer c.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID) //nolint:errcheck // closing the connection unlocks as well
	if db.Distributed, err = distribute(ctx, c); err != nil {
		return translate(err)
	}
	// What the distributed form has gained since it was first made: Distributed says only whether
	// this start distributed the tables (the log says so).
	if err := ensureKeyObjects(ctx, c); err != nil {
		return translate(err)
	}
	if err := ensureAdvanceFunction(ctx, c); err != nil {
		return translate(err)
	}
	return translate(db.loadKeyed(ctx))
}
