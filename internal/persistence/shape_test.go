package persistence_test

import (
	"context"
	"slices"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestContextShapeNull: a migration moves in SQL the contexts of its shape; null is of the shape of
// an optional field (OptionalKind) and of no other, so that an optional field without a value does
// not send its instance to be decided in Go, and a value of another JSON type still does.
func TestContextShapeNull(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	contexts := map[string]string{
		"a-null":  `{"paid_at": null, "n": 1}`,
		"b-time":  `{"paid_at": "2026-01-01T00:00:00Z", "n": 2}`,
		"c-int":   `{"paid_at": 5, "n": 3}`,
		"d-nulln": `{"paid_at": null, "n": null}`,
	}
	var insts []persistence.InstanceRow
	for id, ctx := range contexts {
		r := instance(id, "order", 1, "open")
		r.Context = []byte(ctx)
		insts = append(insts, r)
	}
	seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, insts)
	for _, tt := range []struct {
		name  string
		kinds []string
		want  []string // misshapen
	}{
		{"plain", []string{"string", "integer"}, []string{"a-null", "c-int", "d-nulln"}},
		{"an optional time", []string{persistence.OptionalKind("string"), "integer"}, []string{"c-int", "d-nulln"}},
		{"both optional", []string{persistence.OptionalKind("string"), persistence.OptionalKind("integer")}, []string{"c-int"}},
		{"any", []string{"any", "any"}, nil},
	} {
		rows, err := persistence.InstanceRunningBatch(context.Background(), db, persistence.RunningBatchParams{
			Definition: "order", Version: 1, Limit: 10,
			Misshapen: &persistence.ContextShape{Fields: []string{"paid_at", "n"}, Kinds: tt.kinds},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(rows); !slices.Equal(got, tt.want) {
			t.Errorf("%s: misshapen %v, want %v", tt.name, got, tt.want)
		}
	}
}
