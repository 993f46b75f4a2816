package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// CtxIndexes are the indexes a definition's `index` and `keys` declare (ctxfield.go).
type CtxIndexes struct {
	Definition string
	Find       []CtxField // `index`: a filter on the field, paged in id order, reads an index
	Keys       []CtxField // `keys`: unique among the running instances whose key is set
}

// KeyTakenError is a unique key index refusing a second running instance with a key value:
// CREATE UNIQUE INDEX over instances that share one, which the caller names.
type KeyTakenError struct {
	Index string
	Err   error
}

func (e *KeyTakenError) Error() string {
	return fmt.Sprintf("persistence: running instances share a value of the key of index %s: %v", e.Index, e.Err)
}
func (e *KeyTakenError) Unwrap() error { return e.Err }

// CtxIndexesEnsure creates the indexes of ix that do not exist yet: fsmd registers a definition's
// version only once they do, so that a key is enforced from its first instance. Creating one that
// exists does nothing, so every registration (every start) may call it. On PostgreSQL an index is
// built CONCURRENTLY, so that events go on meanwhile over a large table; one left invalid by a
// build that failed (a crash, a duplicate key) is dropped and built again. On Citus a key is no
// index but rows of tables of its own (keys_citus.go).
func CtxIndexesEnsure(ctx context.Context, db *DB, ix CtxIndexes) error {
	d := db.Dialect
	for _, f := range ix.Find {
		name := FindIndexName(ix.Definition, f)
		// On SQLite definition comes first, though the predicate names it: SQLite prefers an index
		// on which a query's equality on definition and its range on the field both bear to the
		// one of definition alone. PostgreSQL drops a condition its predicate implies, so there a
		// first column of definition would have no condition, and a scan would read the whole index.
		columns := "(" + ctxExpr(d, f) + "), id"
		if d == SQLite {
			columns = "definition, " + columns
		}
		ddl := fmt.Sprintf("CREATE INDEX "+concurrently+" IF NOT EXISTS %s ON instances (%s) WHERE %s",
			name, columns, definitionIs(ix.Definition))
		if err := ensureIndex(ctx, db, name, ddl); err != nil {
			return err
		}
		if err := ensureStatistics(ctx, db, ix.Definition, f); err != nil {
			return err
		}
	}
	if db.Citus {
		return keysEnsureCitus(ctx, db, ix)
	}
	for _, f := range ix.Keys {
		name := KeyIndexName(ix.Definition, f)
		ddl := fmt.Sprintf("CREATE UNIQUE INDEX "+concurrently+" IF NOT EXISTS %s ON instances ((%s)) WHERE %s",
			name, ctxExpr(d, f), keyPredicate(d, ix.Definition, f))
		err := ensureIndex(ctx, db, name, ddl)
		if isUniqueViolation(err) {
			return &KeyTakenError{Index: name, Err: err}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// concurrently marks where CONCURRENTLY goes in an index's DDL (PostgreSQL only). The DDL holds
// SQL with % in its literals (SQLite's strftime('%s')), so it is not a format.
const concurrently = "{concurrently}"

// ensureIndex runs ddl unless index name exists and is valid.
func ensureIndex(ctx context.Context, db *DB, name, ddl string) error {
	if db.Dialect == SQLite {
		if _, err := db.X.ExecContext(ctx, strings.Replace(ddl, concurrently, "", 1)); err != nil {
			return translateIndex(err, name)
		}
		return nil
	}
	var valid bool
	err := db.X.GetContext(ctx, &valid, `
		SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relname = $1 AND c.relnamespace = to_regnamespace(current_schema())::oid`, name)
	switch {
	case err == nil && valid:
		return nil
	case err == nil: // left invalid by a build that failed
		if _, err := db.X.ExecContext(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+name); err != nil {
			return translateIndex(err, name)
		}
	case !errors.Is(err, sql.ErrNoRows):
		return translateIndex(err, name)
	}
	_, err = db.X.ExecContext(ctx, strings.Replace(ddl, concurrently, "CONCURRENTLY", 1))
	if err != nil && isUniqueViolation(err) {
		// The build found a key shared: it leaves the index invalid, which would refuse nothing
		// and cost every write; drop it.
		_, _ = db.X.ExecContext(context.WithoutCancel(ctx), "DROP INDEX CONCURRENTLY IF EXISTS "+name)
		return err
	}
	if pgCode(err) == "42P07" { // another process created it between the check and the build
		return nil
	}
	return translateIndex(err, name)
}

func translateIndex(err error, name string) error {
	if err == nil {
		return nil
	}
	if isUniqueViolation(err) {
		return err // the caller names the key
	}
	return translate(fmt.Errorf("persistence: create index %s: %w", name, err))
}

// ensureStatistics has PostgreSQL keep statistics of an `index` field's expression (CREATE
// STATISTICS on an expression, PostgreSQL 14 and later), and gathers them when it makes them. The
// planner reads no statistics from a partial index's expressions, so without these it guesses how
// many instances a filter matches: a range that a few hundred match was taken for one that many
// do, and read in id order through the primary key, 300 ms over 1,000,000 instances instead of 2.
// A server that cannot make them (an older version) only plans less well: that is no error.
func ensureStatistics(ctx context.Context, db *DB, definition string, f CtxField) error {
	if db.Dialect != Postgres {
		return nil
	}
	name := strings.Replace(FindIndexName(definition, f), "fsmd_find_", "fsmd_stat_", 1)
	var n int
	if err := db.X.GetContext(ctx, &n, `SELECT count(*) FROM pg_statistic_ext WHERE stxname = $1
		AND stxnamespace = to_regnamespace(current_schema())::oid`, name); err != nil {
		return translate(fmt.Errorf("persistence: statistics %s: %w", name, err))
	}
	if n > 0 {
		return nil
	}
	if _, err := db.X.ExecContext(ctx, "CREATE STATISTICS IF NOT EXISTS "+name+" ON ("+ctxExpr(Postgres, f)+") FROM instances"); err != nil {
		if err := translate(err); errors.Is(err, ErrUnavailable) {
			return err
		}
		return nil
	}
	if _, err := db.X.ExecContext(ctx, "ANALYZE instances"); err != nil {
		return translate(fmt.Errorf("persistence: analyze instances: %w", err))
	}
	return nil
}
