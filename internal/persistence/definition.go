package persistence

import (
	"context"
	"fmt"
	"time"
)

// DefinitionRow is one stored version of a definition.
type DefinitionRow struct {
	Name        string
	Version     int
	Hash        string // of Source: the same content is the same version
	Source      string // the YAML, verbatim
	Description string
	CreatedAt   time.Time
}

// definitionRow is DefinitionRow as scanned.
type definitionRow struct {
	Name        string `db:"name"`
	Version     int    `db:"version"`
	Hash        string `db:"hash"`
	Source      string `db:"source"`
	Description string `db:"description"`
	CreatedAt   dbTime `db:"created_at"`
}

func (r definitionRow) row() DefinitionRow {
	return DefinitionRow{
		Name: r.Name, Version: r.Version, Hash: r.Hash, Source: r.Source,
		Description: r.Description, CreatedAt: r.CreatedAt.Time(),
	}
}

const definitionColumns = `name, version, hash, source, description, created_at`

// DefinitionInsert stores a version of a definition. ErrConflict when the name has that version or
// that hash already; the transaction stays usable.
func DefinitionInsert(ctx context.Context, tx *Tx, r DefinitionRow) error {
	res, err := tx.X.ExecContext(ctx, q(tx.Dialect, `
		INSERT INTO definitions (`+definitionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`),
		r.Name, r.Version, r.Hash, r.Source, r.Description, timeArg(tx.Dialect, r.CreatedAt))
	if err != nil {
		return translate(fmt.Errorf("persistence: insert definition %q version %d: %w", r.Name, r.Version, err))
	}
	return conflictUnlessOne(res, "definition %q version %d or its hash exists already", r.Name, r.Version)
}

// DefinitionGetByHash returns the version of a definition whose content has the given hash.
// ErrNotFound when there is none.
func DefinitionGetByHash(ctx context.Context, ex Executor, name, hash string) (DefinitionRow, error) {
	var r definitionRow
	err := getContext(ctx, ex, &r, `
		SELECT `+definitionColumns+` FROM definitions
		WHERE name = ? AND hash = ?`, name, hash)
	if err != nil {
		return DefinitionRow{}, notFound(err, "definition %q with hash %q", name, hash)
	}
	return r.row(), nil
}

// DefinitionGet returns a version of a definition. ErrNotFound when there is none.
func DefinitionGet(ctx context.Context, ex Executor, name string, version int) (DefinitionRow, error) {
	var r definitionRow
	err := getContext(ctx, ex, &r, `
		SELECT `+definitionColumns+` FROM definitions
		WHERE name = ? AND version = ?`, name, version)
	if err != nil {
		return DefinitionRow{}, notFound(err, "definition %q version %d", name, version)
	}
	return r.row(), nil
}

// DefinitionLatestVersion returns the highest version of a definition, 0 when it has none.
func DefinitionLatestVersion(ctx context.Context, ex Executor, name string) (int, error) {
	var v int
	err := getContext(ctx, ex, &v, `
		SELECT COALESCE(MAX(version), 0) FROM definitions WHERE name = ?`, name)
	if err != nil {
		return 0, translate(fmt.Errorf("persistence: latest version of definition %q: %w", name, err))
	}
	return v, nil
}

// DefinitionListAll returns every version of every definition, by name then version.
func DefinitionListAll(ctx context.Context, ex Executor) ([]DefinitionRow, error) {
	var rows []definitionRow
	err := selectContext(ctx, ex, &rows, `
		SELECT `+definitionColumns+` FROM definitions
		ORDER BY name, version`)
	if err != nil {
		return nil, translate(fmt.Errorf("persistence: list definitions: %w", err))
	}
	out := make([]DefinitionRow, len(rows))
	for i, r := range rows {
		out[i] = r.row()
	}
	return out, nil
}
