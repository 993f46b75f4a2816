package persistence_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestContextShapeKinds: the shape check against contexts of every JSON type for every kind, an
// unknown field, a missing one (of the shape: a context need not have every field), an int with a
// fraction or an exponent, and MaxText, read through InstanceRunningBatch's Misshapen and moved
// (or left) by InstanceMoveStates: what one calls misshapen the other leaves.
func TestContextShapeKinds(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	fields := []string{"i", "f", "s", "b", "l", "o", "a", "oi"}
	kinds := []string{"integer", "number", "string", "boolean", "array", "object", "any", persistence.OptionalKind("integer")}
	contexts := map[string]string{
		"ok-all":        `{"i": 1, "f": 1.5, "s": "x", "b": true, "l": [1], "o": {"k": 1}, "a": null, "oi": 2}`,
		"ok-empty":      `{}`,
		"ok-some":       `{"i": -3, "s": ""}`,
		"ok-oi-null":    `{"oi": null}`,
		"ok-f-int":      `{"f": 2}`,
		"ok-a-object":   `{"a": {"x": [1, "y"]}}`,
		"ok-big-int":    `{"i": 12345678901234567890}`,
		"ok-key-dot":    `{"s": "1.5e3"}`,
		"no-extra":      `{"i": 1, "extra": 1}`,
		"no-i-frac":     `{"i": 1.5}`,
		"no-i-zero":     `{"i": 1.0}`,
		"ok-i-exp":      `{"i": 1e3}`,
		"no-i-exp-frac": `{"i": 2.50e-1}`,
		"no-i-string":   `{"i": "1"}`,
		"no-i-null":     `{"i": null}`,
		"no-f-string":   `{"f": "1.5"}`,
		"no-s-number":   `{"s": 1}`,
		"no-b-string":   `{"b": "true"}`,
		"no-l-object":   `{"l": {}}`,
		"no-o-array":    `{"o": []}`,
		"no-oi-frac":    `{"oi": 0.5}`,
		"no-oi-string":  `{"oi": "x"}`,
		"no-long":       `{"s": "` + strings.Repeat("x", 200) + `"}`,
	}
	var insts []persistence.InstanceRow
	var want []string
	for id, ctx := range contexts {
		r := instance(id, "shape", 1, "open")
		r.Context = []byte(ctx)
		insts = append(insts, r)
		if strings.HasPrefix(id, "no-") {
			want = append(want, id)
		}
	}
	slices.Sort(want)
	seed(t, db, []persistence.DefinitionRow{definition("shape", 1), definition("shape", 2)}, insts)
	shape := persistence.ContextShape{Fields: fields, Kinds: kinds, MaxText: 150}
	rows, err := persistence.InstanceRunningBatch(context.Background(), db, persistence.RunningBatchParams{
		Definition: "shape", Version: 1, Limit: 100, Misshapen: &shape})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(rows); !slices.Equal(got, want) {
		t.Errorf("misshapen %v,\nwant %v", got, want)
	}

	err = db.WithTx(context.Background(), func(tx *persistence.Tx) error {
		res, err := persistence.InstanceMoveStates(context.Background(), tx,
			persistence.MigrationBatch{FromVersion: 1, ToVersion: 2, MigrationID: "m", Event: "migrate", At: time.Now()},
			persistence.MoveStates{Definition: "shape", Limit: 100, States: []persistence.StateMove{{From: "open", To: "open"}},
				Defaults: []byte(`{}`), Drop: []string{}, Shape: shape})
		if err != nil {
			return err
		}
		if res.N != len(contexts) || res.Moved["open"] != int64(len(contexts)-len(want)) || res.Skipped() != int64(len(want)) {
			t.Errorf("the batch: %+v (skipped %d), want %d instances, %d moved", res, res.Skipped(), len(contexts), len(contexts)-len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	left, err := persistence.InstanceRunningBatch(context.Background(), db, persistence.RunningBatchParams{
		Definition: "shape", Version: 1, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(left); !slices.Equal(got, want) {
		t.Errorf("left on version 1 %v,\nwant %v", got, want)
	}
}

// TestContextShapeUnknownKind: a kind the check does not know makes every context misshapen, to be
// decided by the caller; so does a shape whose kinds do not match its fields.
func TestContextShapeUnknownKind(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	r := instance("u-1", "unknown", 1, "open")
	r.Context = []byte(`{"n": 1}`)
	seed(t, db, []persistence.DefinitionRow{definition("unknown", 1)}, []persistence.InstanceRow{r})
	for _, shape := range []persistence.ContextShape{
		{Fields: []string{"n"}, Kinds: []string{"decimal"}},
		{Fields: []string{"n"}, Kinds: []string{"integer", "string"}},
	} {
		rows, err := persistence.InstanceRunningBatch(context.Background(), db, persistence.RunningBatchParams{
			Definition: "unknown", Version: 1, Limit: 10, Misshapen: &shape})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(rows); !slices.Equal(got, []string{"u-1"}) {
			t.Errorf("%v: misshapen %v, want [u-1]", shape.Kinds, got)
		}
	}
}
