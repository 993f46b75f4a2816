package persistence

import (
	"context"
	"fmt"
)

// lockClass is the first key of fsmd's advisory locks other than the schema migrations'
// (migrationLockID): the second is a hash of the locked name.
const lockClass int32 = 0x666d // "fm"

// TryLock takes a lock on name for the calling process until release is called or the process
// dies, without waiting: ok is false when another session holds it. On PostgreSQL it is a
// session-level advisory lock on a connection of its own, so a process killed with SIGKILL loses it
// with its connection. SQLite has no such lock: ok is always true there (an embedded database is
// meant to be used by one process).
func (db *DB) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	if db.Dialect != Postgres {
		return func() {}, true, nil
	}
	conn, err := db.X.Connx(ctx)
	if err != nil {
		return nil, false, translate(fmt.Errorf("persistence: lock %q: %w", name, err))
	}
	if err := conn.GetContext(ctx, &ok, `SELECT pg_try_advisory_lock($1, hashtext($2))`, lockClass, name); err != nil {
		conn.Close()
		return nil, false, translate(canceled(ctx, fmt.Errorf("persistence: lock %q: %w", name, err)))
	}
	if !ok {
		conn.Close()
		return nil, false, nil
	}
	return func() {
		// Unlocking can fail only with the connection; closing it releases the lock as well.
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1, hashtext($2))`, lockClass, name)
		conn.Close()
	}, true, nil
}

// Savepoint marks a point in tx that RollbackToSavepoint returns to: a part of a transaction that
// can fail alone (one timer of a batch) without failing the rest.
func Savepoint(ctx context.Context, tx *Tx, name string) error {
	return savepoint(ctx, tx, "SAVEPOINT "+name)
}

// ReleaseSavepoint forgets a savepoint, keeping what was done since.
func ReleaseSavepoint(ctx context.Context, tx *Tx, name string) error {
	return savepoint(ctx, tx, "RELEASE SAVEPOINT "+name)
}

// RollbackToSavepoint undoes what was done since the savepoint, and forgets it.
func RollbackToSavepoint(ctx context.Context, tx *Tx, name string) error {
	if err := savepoint(ctx, tx, "ROLLBACK TO SAVEPOINT "+name); err != nil {
		return err
	}
	return ReleaseSavepoint(ctx, tx, name)
}

func savepoint(ctx context.Context, tx *Tx, stmt string) error {
	if _, err := tx.X.ExecContext(ctx, stmt); err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: %s: %w", stmt, err)))
	}
	return nil
}
