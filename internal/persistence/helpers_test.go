package persistence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// t0 is the clock of the tests: a time with nanoseconds, in a zone other than UTC.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.FixedZone("X", 5*3600+1800))

// now is one time per transaction, as the service uses: microseconds, which both dialects keep.
func now() time.Time { return t0.Truncate(time.Microsecond) }

// mustTx runs fn in a transaction and fails the test on an error.
func mustTx(t testing.TB, db *persistence.DB, fn func(tx *persistence.Tx) error) {
	t.Helper()
	if err := db.WithTx(context.Background(), fn); err != nil {
		t.Fatalf("WithTx: %v", err)
	}
}

func definition(name string, version int) persistence.DefinitionRow {
	return persistence.DefinitionRow{
		Name: name, Version: version, Hash: fmt.Sprintf("hash-%s-%d", name, version),
		Source: fmt.Sprintf("name: %s\n# version %d\n", name, version), Description: "the " + name,
		CreatedAt: now(),
	}
}

func instance(id, def string, version int, state string) persistence.InstanceRow {
	return persistence.InstanceRow{
		ID: id, Definition: def, Version: version, State: state, Context: []byte(`{"n":0}`),
		CreateHash: "create-" + id, CreatedAt: now(), UpdatedAt: now(), EnteredAt: now(), Children: []byte("{}"),
	}
}

// seed stores definitions and instances.
func seed(t testing.TB, db *persistence.DB, defs []persistence.DefinitionRow, insts []persistence.InstanceRow) {
	t.Helper()
	mustTx(t, db, func(tx *persistence.Tx) error {
		ctx := context.Background()
		for _, d := range defs {
			if err := persistence.DefinitionInsert(ctx, tx, d); err != nil {
				return err
			}
		}
		for _, i := range insts {
			if err := persistence.InstanceInsert(ctx, tx, i); err != nil {
				return err
			}
		}
		return nil
	})
}

// jsonEqual reports whether two JSON texts hold the same value (PostgreSQL's jsonb normalizes the
// text).
func jsonEqual(t testing.TB, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %q: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

// equalInstance compares instances, their contexts as JSON values.
func equalInstance(t testing.TB, got, want persistence.InstanceRow) {
	t.Helper()
	if !jsonEqual(t, got.Context, want.Context) {
		t.Errorf("instance %s: context %s, want %s", want.ID, got.Context, want.Context)
	}
	got.Context, want.Context = nil, nil
	sameTime(t, want.ID+" created_at", got.CreatedAt, want.CreatedAt)
	sameTime(t, want.ID+" updated_at", got.UpdatedAt, want.UpdatedAt)
	sameTime(t, want.ID+" entered_at", got.EnteredAt, want.EnteredAt)
	got.CreatedAt, got.UpdatedAt, got.EnteredAt = time.Time{}, time.Time{}, time.Time{}
	want.CreatedAt, want.UpdatedAt, want.EnteredAt = time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("instance %s:\n got %+v\nwant %+v", want.ID, got, want)
	}
}

func ids(rows []persistence.InstanceRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// sameTime checks that a time read back is the time written, in UTC.
func sameTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s: %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if got.Location() != time.UTC {
		t.Errorf("%s: location %s, want UTC", what, got.Location())
	}
}
