package persistence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// getContext scans the one row of query (written with ?) into dest.
func getContext(ctx context.Context, ex Executor, dest any, query string, args ...any) error {
	return sqlx.GetContext(ctx, ex.ext(), dest, q(ex.dialect(), query), args...)
}

// selectContext scans the rows of query (written with ?) into dest, a pointer to a slice.
func selectContext(ctx context.Context, ex Executor, dest any, query string, args ...any) error {
	return sqlx.SelectContext(ctx, ex.ext(), dest, q(ex.dialect(), query), args...)
}

// notFound describes a failed read of one row: ErrNotFound for no row, the translated error
// otherwise.
func notFound(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("persistence: %s: %w", what, ErrNotFound)
	}
	return translate(fmt.Errorf("persistence: get %s: %w", what, err))
}

// conflictUnlessOne checks that a write changed exactly one row: ErrConflict when it changed none.
func conflictUnlessOne(res sql.Result, format string, args ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("persistence: rows affected: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("persistence: %s: %w", fmt.Sprintf(format, args...), ErrConflict)
	}
	return nil
}
