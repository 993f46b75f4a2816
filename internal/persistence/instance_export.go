package persistence

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// InstanceExportParams selects a page of the instances `fsmd export` writes: those of Definition,
// in State when it is not "", changed (updated_at) at or after Since when it is not zero, after
// AfterID in id order, at most Limit, stopping after the row whose Bytes take them past MaxBytes.
type InstanceExportParams struct {
	Definition string
	State      string
	Since      time.Time
	AfterID    string
	Limit      int
	MaxBytes   int
}

// InstanceListExport returns a page of the instances of an export (keyset pagination on id: pass
// the last id as AfterID for the next). It reads through the definition's indexes
// (instances_definition_state_id_idx with a state).
func InstanceListExport(ctx context.Context, ex Executor, p InstanceExportParams) ([]InstanceRow, error) {
	where, args := []string{"definition = ?"}, []any{p.Definition}
	if p.State != "" {
		where, args = append(where, "state = ?"), append(args, p.State)
	}
	if !p.Since.IsZero() {
		where, args = append(where, "updated_at >= ?"), append(args, timeArg(ex.dialect(), p.Since))
	}
	where, args = append(where, "id > ?"), append(args, p.AfterID, p.Limit)
	query := `SELECT ` + instanceColumns + ` FROM instances WHERE ` + strings.Join(where, " AND ") + ` ORDER BY id LIMIT ?`
	out, err := selectBounded(ctx, ex, p.MaxBytes, instanceRow.row, query, args...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: list the instances of %q to export: %w", p.Definition, err)))
	}
	return out, nil
}
