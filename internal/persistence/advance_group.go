package persistence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"
)

// AdvanceGroup writes the accepted transitions of several instances in one transaction of db, so
// that they share one commit (one WAL flush) instead of paying one each: group commit. Each item is
// written as InstanceAdvance writes it, by the same code (the update, its audit row and its
// effects: timers, outbox rows, messages), so each keeps its update and audit row together. The
// result holds, for each item in order, what InstanceAdvance would have returned: nil once the
// transaction has committed, ErrConflict when its instance was not at the revision read, or the
// error of its own statement.
//
// One item's failure does not fail the others:
//
//   - a condition that does not hold (the instance moved on: 0 rows) writes nothing and leaves the
//     transaction usable, on both databases;
//   - a statement that fails on the item's own data (a seq, idempotency key or business key taken,
//     text or a value the database refuses: ownError) is undone alone on SQLite when it is the
//     item's update (SQLite undoes a failed statement); otherwise it fails the transaction (on
//     PostgreSQL it aborts it; on SQLite the item's update is in it already), which is rolled back
//     and run again without that item: failures are rare, and a savepoint per item would cost two
//     statements (on PostgreSQL two round trips) for every item of every group;
//   - what fails the transaction itself (the connection, the commit, a statement failing for no
//     reason of its item's) is the error of every item still in the group, as it would have been
//     each one's alone. WithTx reruns the group after a serialization failure, a deadlock or
//     SQLITE_BUSY, as it does any transaction.
//
// On PostgreSQL a group without outbox rows and messages is first written in one statement of its
// own (advanceRowsQuery: one round trip for the group, where a transaction of several statements
// takes one per event plus BEGIN and COMMIT); when an item's own data fails that statement, the
// group is written as above, which tells the item from the others.
//
// A group of one is written exactly as InstanceAdvance writes it (its own statement on PostgreSQL,
// without BEGIN and COMMIT). The items must be of different instances.
func AdvanceGroup(ctx context.Context, db *DB, items []Advance) []error {
	errs := make([]error, len(items))
	live := make([]int, 0, len(items)) // the items still to write
	for i, it := range items {
		if errs[i] = checkAdvance(it.Update, it.Row); errs[i] == nil {
			live = append(live, i)
		}
	}
	// In the order of their instances, as every group: two groups lock instances in the same order
	// and never deadlock each other.
	slices.SortFunc(live, func(a, b int) int { return strings.Compare(items[a].Update.ID, items[b].Update.ID) })
	if len(live) > 1 && !db.Citus && rowsAdvanceable(db.Dialect, pick(items, live)) {
		written, err := advanceRows(ctx, db, pick(items, live))
		switch {
		case err == nil:
			for k, i := range live {
				if !written[k] {
					u := items[i].Update
					errs[i] = fmt.Errorf("persistence: instance %q is not at revision %d: %w", u.ID, u.ExpectRevision, ErrConflict)
				}
			}
			return errs
		case !ownError(err) && !retryable(err):
			for _, i := range live {
				errs[i] = err
			}
			return errs
		}
		// An item's own data failed the statement (a key taken...): the transaction below tells
		// which. A deadlock or serialization failure: the transaction below retries.
	}
	for len(live) > 0 { // each round ends the group, or drops one item from it
		if len(live) == 1 {
			i := live[0]
			errs[i] = advanceOn(ctx, db, items[i].Update, items[i].Row)
			return errs
		}
		own := make([]error, len(live))
		failed := -1 // the index in live of the item whose statement aborted the transaction (PostgreSQL)
		err := db.WithTx(ctx, func(tx *Tx) error {
			clear(own) // an attempt WithTx reruns starts afresh
			failed = -1
			for k, i := range live {
				undone, err := advanceItem(ctx, tx, items[i])
				switch {
				case err == nil:
				case !ownError(err):
					return err
				case !undone:
					failed = k
					return err
				default:
					own[k] = err
				}
			}
			return nil
		})
		switch {
		case err == nil:
			for k, i := range live {
				errs[i] = own[k]
			}
			return errs
		case failed >= 0 && ownError(err):
			errs[live[failed]] = err
			live = slices.Delete(live, failed, failed+1)
		default:
			for _, i := range live {
				errs[i] = err
			}
			return errs
		}
	}
	return errs
}

// pick is the items at the indexes.
func pick(items []Advance, at []int) []Advance {
	out := make([]Advance, len(at))
	for k, i := range at {
		out[k] = items[i]
	}
	return out
}

// advanceItem writes one item of a group in tx. undone reports, with an error, that the item left
// nothing in tx and the transaction goes on: its update found its instance moved on (0 rows, on
// either database), or failed on SQLite (a failed statement undoes itself there). Otherwise the
// transaction cannot be committed without what the item half wrote (SQLite: a statement after its
// update failed) or at all (PostgreSQL: a failed statement aborts the transaction).
//
// No savepoints: an item of its own failing after its update is rare, and rerunning the group
// without it is cheaper than two more statements for every item.
func advanceItem(ctx context.Context, tx *Tx, it Advance) (undone bool, err error) {
	if tx.Dialect == Postgres && !tx.db.Citus {
		err := advanceOn(ctx, tx, it.Update, it.Row)
		return err != nil && pgCode(err) == "", err
	}
	// SQLite, and Citus's statements (advanceOn): the update's own failure undoes it, unless it is
	// a statement's failure on Citus, which aborts the transaction as on PostgreSQL.
	if err := InstanceUpdate(ctx, tx, it.Update); err != nil {
		return tx.Dialect == SQLite || pgCode(err) == "", err
	}
	return false, advanceEffects(ctx, tx, it.Update, it.Row)
}

// ownError reports whether err, the failure of one item's statements, comes from that item's own
// data, so that the other items of its group may still be written: its instance moved on or a key
// is taken (ErrConflict, ErrKeyExists), text or a value the database refuses (PostgreSQL's classes
// 22, data exception, and 23, integrity constraint violation; SQLite's constraint, too big and
// mismatch). Anything else (the connection, a lock, the disk) is the transaction's.
func ownError(err error) bool {
	switch {
	case errors.Is(err, ErrConflict), errors.Is(err, ErrKeyExists), errors.Is(err, ErrInvalidText):
		return true
	}
	if c := pgCode(err); len(c) == 5 {
		return c[:2] == "22" || c[:2] == "23"
	}
	switch sqliteCode(err) & 0xff {
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
		return true
	}
	return false
}
