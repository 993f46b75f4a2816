package persistence_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// exists reports whether instance id is stored.
func exists(t testing.TB, db *persistence.DB, id string) bool {
	t.Helper()
	_, err := persistence.InstanceGet(context.Background(), db, id)
	switch {
	case err == nil:
		return true
	case errors.Is(err, persistence.ErrNotFound):
		return false
	}
	t.Fatalf("InstanceGet(%q): %v", id, err)
	return false
}

// released checks that no connection is left in use and that the database takes a write at once
// (no row lock, no SQLite write lock left behind).
func released(t testing.TB, db *persistence.DB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := db.WithTx(ctx, func(tx *persistence.Tx) error {
		return persistence.InstanceInsert(ctx, tx, instance(id, "order", 1, "created"))
	})
	if err != nil {
		t.Errorf("a write after the transaction: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for db.X.Stats().InUse != 0 {
		if time.Now().After(deadline) {
			t.Errorf("%d connections still in use", db.X.Stats().InUse)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWithTx(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, nil)
		errBoom := errors.New("boom")

		for _, tc := range []struct {
			name      string
			fn        func(ctx context.Context, cancel func(), tx *persistence.Tx) error
			wantErr   error // errors.Is; nil for success
			wantPanic any   // the panic that must come out
			stored    bool  // whether the instance is there afterwards
		}{
			{
				name:   "commit",
				fn:     func(ctx context.Context, _ func(), tx *persistence.Tx) error { return insert(ctx, tx, "commit") },
				stored: true,
			},
			{
				name: "rollback on error",
				fn: func(ctx context.Context, _ func(), tx *persistence.Tx) error {
					if err := insert(ctx, tx, "rollback on error"); err != nil {
						return err
					}
					return errBoom
				},
				wantErr: errBoom,
			},
			{
				name: "rollback on panic",
				fn: func(ctx context.Context, _ func(), tx *persistence.Tx) error {
					if err := insert(ctx, tx, "rollback on panic"); err != nil {
						return err
					}
					panic(errBoom)
				},
				wantPanic: errBoom,
			},
			{
				name: "rollback when ctx is canceled between queries",
				fn: func(ctx context.Context, cancel func(), tx *persistence.Tx) error {
					if err := insert(ctx, tx, "rollback when ctx is canceled between queries"); err != nil {
						return err
					}
					cancel()
					_, err := persistence.InstanceGet(ctx, tx, "x")
					return err
				},
				wantErr: context.Canceled,
			},
			{
				name: "rollback when ctx is canceled before fn returns nil",
				fn: func(ctx context.Context, cancel func(), tx *persistence.Tx) error {
					if err := insert(ctx, tx, "rollback when ctx is canceled before fn returns nil"); err != nil {
						return err
					}
					cancel()
					return nil
				},
				wantErr: context.Canceled,
			},
			{
				name: "rollback when ctx is canceled during a query",
				fn: func(ctx context.Context, cancel func(), tx *persistence.Tx) error {
					if err := insert(ctx, tx, "rollback when ctx is canceled during a query"); err != nil {
						return err
					}
					time.AfterFunc(100*time.Millisecond, cancel)
					slow := `SELECT pg_sleep(30)`
					if tx.Dialect == persistence.SQLite {
						slow = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c`
					}
					_, err := tx.X.ExecContext(ctx, slow)
					if err == nil {
						return errors.New("the slow query ended")
					}
					return err
				},
				wantErr: context.Canceled,
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var err error
				var panicked any
				func() {
					defer func() { panicked = recover() }()
					err = db.WithTx(ctx, func(tx *persistence.Tx) error { return tc.fn(ctx, cancel, tx) })
				}()
				if panicked != tc.wantPanic {
					t.Errorf("panic %v, want %v", panicked, tc.wantPanic)
				}
				switch {
				case tc.wantErr == nil && err != nil:
					t.Errorf("WithTx: %v", err)
				case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
					t.Errorf("WithTx: %v, want %v", err, tc.wantErr)
				}
				if got := exists(t, db, tc.name); got != tc.stored {
					t.Errorf("stored %v, want %v", got, tc.stored)
				}
				released(t, db, tc.name+" (after)")
			})
		}
	})
}

func insert(ctx context.Context, tx *persistence.Tx, id string) error {
	return persistence.InstanceInsert(ctx, tx, instance(id, "order", 1, "created"))
}

// TestWithTxTranslatesErrors: the errors of fn come out translated, with the driver's error kept.
func TestWithTxTranslatesErrors(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, nil)
		for _, tc := range []struct {
			name string
			sql  string
			want error
		}{
			{"no rows", `SELECT name FROM definitions WHERE name = 'nope'`, persistence.ErrNotFound},
			{"unique violation", `INSERT INTO definitions (name, version, hash, source, description, created_at)
				SELECT name, version, hash, source, description, created_at FROM definitions`, persistence.ErrConflict},
		} {
			err := db.WithTx(ctx, func(tx *persistence.Tx) error {
				var s string
				return tx.X.QueryRowxContext(ctx, tc.sql).Scan(&s)
			})
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
			if tc.want == persistence.ErrNotFound && !errors.Is(err, sql.ErrNoRows) {
				t.Errorf("%s: %v does not keep sql.ErrNoRows", tc.name, err)
			}
		}
		// Translating twice changes nothing.
		err := persistence.Translate(persistence.Translate(sql.ErrNoRows))
		if !errors.Is(err, persistence.ErrNotFound) || strings.Count(err.Error(), "not found") != 1 {
			t.Errorf("translated twice: %v", err)
		}
		if persistence.Translate(nil) != nil {
			t.Error("Translate(nil) is not nil")
		}
	})
}

// TestWithTxRetries: a retryable error reruns fn, up to MaxAttempts runs; other errors do not.
func TestWithTxRetries(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		serialization := &pq.Error{Code: "40001", Message: "could not serialize access"}
		for _, tc := range []struct {
			name      string
			failFirst int   // runs that fail before one succeeds
			err       error // what they fail with
			wantRuns  int
			wantErr   error
		}{
			{"success", 0, nil, 1, nil},
			{"retried then success", 2, serialization, 3, nil},
			{"deadlock", 1, &pq.Error{Code: "40P01"}, 2, nil},
			{"gives up", 100, serialization, persistence.MaxAttempts, serialization},
			{"not retryable", 100, errors.New("boom"), 1, nil},
			{"unique violation is not retried", 100, &pq.Error{Code: "23505"}, 1, persistence.ErrConflict},
		} {
			runs := 0
			err := db.WithTx(context.Background(), func(tx *persistence.Tx) error {
				runs++
				if runs <= tc.failFirst {
					return tc.err
				}
				return nil
			})
			if runs != tc.wantRuns {
				t.Errorf("%s: %d runs, want %d", tc.name, runs, tc.wantRuns)
			}
			switch {
			case tc.failFirst < tc.wantRuns && err != nil:
				t.Errorf("%s: %v", tc.name, err)
			case tc.failFirst >= tc.wantRuns && (err == nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr)):
				t.Errorf("%s: %v, want %v", tc.name, err, tc.wantErr)
			}
		}

		// No retry once ctx is done.
		ctx, cancel := context.WithCancel(context.Background())
		runs := 0
		err := db.WithTx(ctx, func(tx *persistence.Tx) error {
			runs++
			cancel()
			return serialization
		})
		if runs != 1 || !errors.Is(err, serialization) {
			t.Errorf("canceled: %d runs, %v; want 1 run and the serialization failure", runs, err)
		}
	})
}

// TestWithTxRetriesSerializationFailure provokes a real serialization failure on PostgreSQL: two
// REPEATABLE READ transactions update the same instance; the second is retried and succeeds.
func TestWithTxRetriesSerializationFailure(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	ctx := context.Background()
	seed(t, db, []persistence.DefinitionRow{definition("order", 1)},
		[]persistence.InstanceRow{instance("i", "order", 1, "created")})
	var retried []error
	persistence.SetRetryHook(db, func(_ int, err error) { retried = append(retried, err) })

	bRead, aDone := make(chan struct{}), make(chan struct{})
	bump := func(tx *persistence.Tx, cur persistence.InstanceRow) error {
		return persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{
			ID: "i", ExpectRevision: cur.Revision, Version: 1, State: "created",
			Revision: cur.Revision + 1, UpdatedAt: now(), EnteredAt: now(),
		})
	}
	var wg sync.WaitGroup
	var errA error
	wg.Go(func() {
		<-bRead
		errA = db.WithTx(ctx, func(tx *persistence.Tx) error {
			cur, err := persistence.InstanceGet(ctx, tx, "i")
			if err != nil {
				return err
			}
			return bump(tx, cur)
		})
		close(aDone)
	})
	runs := 0
	errB := db.WithTx(ctx, func(tx *persistence.Tx) error {
		runs++
		if _, err := tx.X.ExecContext(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
			return err
		}
		cur, err := persistence.InstanceGet(ctx, tx, "i") // the snapshot
		if err != nil {
			return err
		}
		if runs == 1 {
			close(bRead)
			<-aDone // A changed the row after B's snapshot
		}
		return bump(tx, cur)
	})
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("A: %v, B: %v", errA, errB)
	}
	if runs != 2 || len(retried) != 1 || !persistence.Retryable(retried[0]) ||
		!strings.Contains(retried[0].Error(), "could not serialize") {
		t.Errorf("B ran %d times, retried after %v; want 2 runs after one serialization failure", runs, retried)
	}
	if got, err := persistence.InstanceGet(ctx, db, "i"); err != nil || got.Revision != 2 {
		t.Errorf("revision %d, %v; want 2", got.Revision, err)
	}
}

// TestWithTxRetriesDeadlock provokes a real deadlock on PostgreSQL: two transactions lock two
// instances in opposite orders; PostgreSQL aborts one (after deadlock_timeout, 1 s by default),
// which is retried, and both succeed.
func TestWithTxRetriesDeadlock(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	ctx := context.Background()
	seed(t, db, []persistence.DefinitionRow{definition("order", 1)},
		[]persistence.InstanceRow{instance("i-1", "order", 1, "created"), instance("i-2", "order", 1, "created")})
	var retries atomic.Int32
	var deadlock atomic.Bool
	persistence.SetRetryHook(db, func(_ int, err error) {
		retries.Add(1)
		deadlock.Store(strings.Contains(err.Error(), "deadlock"))
	})

	var first sync.WaitGroup // each transaction holds its first lock
	first.Add(2)
	var runs atomic.Int32
	lockBoth := func(a, b string) error {
		return db.WithTx(ctx, func(tx *persistence.Tx) error {
			if _, err := persistence.InstanceGetForUpdate(ctx, tx, a); err != nil {
				return err
			}
			if runs.Add(1) <= 2 {
				first.Done()
				first.Wait()
			}
			cur, err := persistence.InstanceGetForUpdate(ctx, tx, b)
			if err != nil {
				return err
			}
			return persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{
				ID: b, ExpectRevision: cur.Revision, Version: 1, State: "created",
				Revision: cur.Revision + 1, UpdatedAt: now(), EnteredAt: now(),
			})
		})
	}
	var wg sync.WaitGroup
	var err1, err2 error
	wg.Go(func() { err1 = lockBoth("i-1", "i-2") })
	wg.Go(func() { err2 = lockBoth("i-2", "i-1") })
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatalf("the transactions: %v, %v", err1, err2)
	}
	// One retry, as a rule; two were seen once on a loaded machine (the cause not established:
	// PostgreSQL does not promise which, or how many, of the waiters its check aborts). Both
	// transactions still succeed, which is what WithTx promises.
	if retries.Load() < 1 || retries.Load() > 2 || !deadlock.Load() {
		t.Errorf("%d retries (deadlock %v), want one (or two) after a deadlock", retries.Load(), deadlock.Load())
	}
}

// TestWithTxRetriesSQLiteBusy provokes SQLITE_BUSY: another connection holds the write lock longer
// than busy_timeout (10 ms here); WithTx retries until the lock is free, or gives up.
func TestWithTxRetriesSQLiteBusy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		hold     time.Duration
		wantErr  bool
		minRetry int32
	}{
		{"lock released during the retries", 40 * time.Millisecond, false, 1},
		{"lock held past the retries", time.Second, true, persistence.MaxAttempts - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			u := dbtest.SQLiteURL(t)
			db, err := persistence.Open(ctx, u+"?_busy_timeout=10")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, nil)
			var retries atomic.Int32
			var busy atomic.Bool
			persistence.SetRetryHook(db, func(_ int, err error) {
				retries.Add(1)
				busy.Store(strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "locked"))
			})

			// Another handle on the file takes the write lock.
			other, err := sql.Open("sqlite", strings.TrimPrefix(u, "sqlite:"))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			conn, err := other.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
				t.Fatal(err)
			}
			released := make(chan struct{})
			time.AfterFunc(tc.hold, func() {
				defer close(released)
				if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
					t.Errorf("ROLLBACK: %v", err)
				}
			})
			err = db.WithTx(ctx, func(tx *persistence.Tx) error { return insert(ctx, tx, "i") })
			if tc.wantErr != (err != nil) {
				t.Errorf("WithTx: %v, want an error: %v", err, tc.wantErr)
			}
			if tc.wantErr && !persistence.Retryable(err) {
				t.Errorf("WithTx: %v, want SQLITE_BUSY", err)
			}
			if retries.Load() < tc.minRetry || !busy.Load() {
				t.Errorf("%d retries (busy %v), want at least %d after SQLITE_BUSY", retries.Load(), busy.Load(), tc.minRetry)
			}
			<-released
		})
	}
}
