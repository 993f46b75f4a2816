package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

var at = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

// setup stores a definition and instances i-1 and i-2 on it.
func setup(t *testing.T, db *persistence.DB) {
	t.Helper()
	ctx := context.Background()
	err := db.WithTx(ctx, func(tx *persistence.Tx) error {
		if err := persistence.DefinitionInsert(ctx, tx, persistence.DefinitionRow{
			Name: "order", Version: 1, Hash: "h1", Source: "name: order\n", CreatedAt: at,
		}); err != nil {
			return err
		}
		for _, id := range []string{"i-1", "i-2"} {
			if err := persistence.InstanceInsert(ctx, tx, persistence.InstanceRow{
				ID: id, Definition: "order", Version: 1, State: "created", Context: []byte(`{}`),
				CreateHash: "c", CreatedAt: at, UpdatedAt: at, EnteredAt: at,
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
}

func row(instanceID string, seq int64, key string) audit.Row {
	return audit.Row{
		InstanceID: instanceID, Seq: seq, Event: "pay", From: "created", To: "paid", Branch: 1,
		Guards:        []byte(`[{"guard":"event.amount >= ctx.amount","result":true}]`),
		Payload:       []byte(`{"amount":10.5,"method":"card","note":"'; DROP TABLE transitions; -- ✓ 🚀"}`),
		ContextBefore: []byte(`{"amount":10}`),
		ContextAfter:  []byte(`{"amount":10,"paid_at":"2026-01-01T00:00:00Z"}`),
		Source:        audit.SourceAPI, RequestID: fmt.Sprintf("req-%d", seq), IdempotencyKey: key,
		RequestHash: "rh", DefinitionVersion: 1, At: at.Add(time.Duration(seq) * time.Second),
	}
}

// appendRows appends rows in one transaction.
func appendRows(t *testing.T, db *persistence.DB, rows ...audit.Row) {
	t.Helper()
	ctx := context.Background()
	err := db.WithTx(ctx, func(tx *persistence.Tx) error {
		for _, r := range rows {
			if err := audit.Append(ctx, tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
}

// equalRow compares rows, JSON as values (jsonb normalizes the text), times with Equal.
func equalRow(t *testing.T, got, want audit.Row) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want []byte
	}{
		{"guards", got.Guards, want.Guards}, {"payload", got.Payload, want.Payload},
		{"context_before", got.ContextBefore, want.ContextBefore}, {"context_after", got.ContextAfter, want.ContextAfter},
	} {
		var g, w any
		if err := json.Unmarshal(f.got, &g); err != nil {
			t.Fatalf("%s: %q: %v", f.name, f.got, err)
		}
		_ = json.Unmarshal(f.want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("seq %d %s: %s, want %s", want.Seq, f.name, f.got, f.want)
		}
	}
	if !got.At.Equal(want.At) || got.At.Location() != time.UTC {
		t.Errorf("seq %d at: %v, want %v in UTC", want.Seq, got.At, want.At)
	}
	got.Guards, got.Payload, got.ContextBefore, got.ContextAfter, got.At = nil, nil, nil, nil, time.Time{}
	want.Guards, want.Payload, want.ContextBefore, want.ContextAfter, want.At = nil, nil, nil, nil, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("seq %d:\n got %+v\nwant %+v", want.Seq, got, want)
	}
}

func TestAppendAndRead(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		setup(t, db)
		r1, r2 := row("i-1", 1, "key-1"), row("i-1", 2, "")
		r2.Source, r2.Guards, r2.Payload = audit.SourceTimer, nil, nil
		r3 := row("i-1", 3, "")
		r3.Source = audit.SourceMigration
		appendRows(t, db, r1, r2, r3)

		got, err := audit.History(ctx, db, "i-1", 0, 0, 0)
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if len(got) != 3 {
			t.Fatalf("History: %d rows, want 3", len(got))
		}
		// No guards and no payload are stored as [] and {}.
		r2.Guards, r2.Payload = []byte(`[]`), []byte(`{}`)
		for i, want := range []audit.Row{r1, r2, r3} {
			equalRow(t, got[i], want)
		}

		k, err := audit.ByIdempotencyKey(ctx, db, "i-1", "key-1")
		if err != nil {
			t.Fatalf("ByIdempotencyKey: %v", err)
		}
		equalRow(t, k, r1)

		for _, tc := range []struct{ instance, key string }{
			{"i-1", "no such key"}, {"i-2", "key-1"}, {"i-1", ""}, {"nope", "key-1"},
		} {
			if _, err := audit.ByIdempotencyKey(ctx, db, tc.instance, tc.key); !errors.Is(err, persistence.ErrNotFound) {
				t.Errorf("ByIdempotencyKey(%q, %q): %v, want ErrNotFound", tc.instance, tc.key, err)
			}
		}
		if h, err := audit.History(ctx, db, "nope", 0, 10, 0); err != nil || len(h) != 0 {
			t.Errorf("History of no instance: %v, %v; want none", h, err)
		}
	})
}

func TestAppendConflicts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		setup(t, db)
		appendRows(t, db, row("i-1", 1, "key-1"), row("i-1", 2, ""))

		for _, tc := range []struct {
			name string
			row  audit.Row
			want error // nil: stored
		}{
			{"duplicate seq", row("i-1", 2, "key-new"), persistence.ErrConflict},
			{"duplicate seq, no key", row("i-1", 1, ""), persistence.ErrConflict},
			{"duplicate idempotency key", row("i-1", 3, "key-1"), persistence.ErrConflict},
			{"no key twice is no duplicate", row("i-1", 3, ""), nil},
			{"the key on another instance", row("i-2", 1, "key-1"), nil},
		} {
			err := db.WithTx(ctx, func(tx *persistence.Tx) error {
				err := audit.Append(ctx, tx, tc.row)
				if tc.want == nil || !errors.Is(err, tc.want) {
					return err
				}
				// The transaction is still usable: the replay path reads the first answer in it.
				_, err = audit.ByIdempotencyKey(ctx, tx, "i-1", "key-1")
				return err
			})
			if err != nil {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		h, err := audit.History(ctx, db, "i-1", 0, 0, 0)
		if err != nil || len(h) != 3 {
			t.Errorf("History after the conflicts: %d rows, %v; want 3", len(h), err)
		}
	})
}

func TestAppendRefuses(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		setup(t, db)
		bad := row("i-1", 1, "")
		bad.Source = "cron"
		zero := row("i-1", 0, "")
		for _, tc := range []struct {
			name string
			row  audit.Row
		}{
			{"unknown source", bad},
			{"seq 0", zero},
			{"no such instance", row("nope", 1, "")},
			{"context not an object", func() audit.Row { r := row("i-1", 1, ""); r.ContextAfter = []byte(`[1]`); return r }()},
			{"invalid JSON", func() audit.Row { r := row("i-1", 1, ""); r.Payload = []byte(`{`); return r }()},
		} {
			err := db.WithTx(ctx, func(tx *persistence.Tx) error { return audit.Append(ctx, tx, tc.row) })
			if err == nil {
				t.Errorf("%s: stored", tc.name)
			}
		}
		if h, _ := audit.History(ctx, db, "i-1", 0, 0, 0); len(h) != 0 {
			t.Errorf("%d rows stored", len(h))
		}
	})
}

// TestAppendRollsBackWithItsTransaction: the row goes with the caller's transaction.
func TestAppendRollsBackWithItsTransaction(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		setup(t, db)
		errLater := errors.New("a later step failed")
		err := db.WithTx(ctx, func(tx *persistence.Tx) error {
			if err := audit.Append(ctx, tx, row("i-1", 1, "k")); err != nil {
				return err
			}
			// Visible inside the transaction...
			if h, err := audit.History(ctx, tx, "i-1", 0, 0, 0); err != nil || len(h) != 1 {
				t.Errorf("History inside the transaction: %d rows, %v", len(h), err)
			}
			return errLater
		})
		if !errors.Is(err, errLater) {
			t.Fatalf("WithTx: %v", err)
		}
		// ...and gone with it.
		if h, err := audit.History(ctx, db, "i-1", 0, 0, 0); err != nil || len(h) != 0 {
			t.Errorf("History after the rollback: %d rows, %v; want none", len(h), err)
		}
	})
}

func TestHistoryPagination(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		setup(t, db)
		const n = 12
		var rows []audit.Row
		for seq := int64(1); seq <= n; seq++ {
			rows = append(rows, row("i-1", seq, fmt.Sprint("k-", seq)), row("i-2", seq, ""))
		}
		appendRows(t, db, rows...)

		for _, tc := range []struct {
			name     string
			after    int64
			limit    int
			wantSeqs []int64
		}{
			{"first page", 0, 3, []int64{1, 2, 3}},
			{"next page", 3, 3, []int64{4, 5, 6}},
			{"last, short page", 10, 5, []int64{11, 12}},
			{"past the end", 12, 5, nil},
			{"no limit", 9, 0, []int64{10, 11, 12}},
		} {
			got, err := audit.History(ctx, db, "i-1", tc.after, tc.limit, 0)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var seqs []int64
			for _, r := range got {
				if r.InstanceID != "i-1" {
					t.Errorf("%s: a row of %s", tc.name, r.InstanceID)
				}
				seqs = append(seqs, r.Seq)
			}
			if !reflect.DeepEqual(seqs, tc.wantSeqs) {
				t.Errorf("%s: seqs %v, want %v", tc.name, seqs, tc.wantSeqs)
			}
		}

		// Keyset pagination visits every row once, in order, whatever the page size.
		for size := 1; size <= n+1; size++ {
			var seqs []int64
			var after int64
			for {
				page, err := audit.History(ctx, db, "i-2", after, size, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page {
					seqs = append(seqs, r.Seq)
				}
				if len(page) < size {
					break
				}
				after = page[len(page)-1].Seq
			}
			if len(seqs) != n {
				t.Fatalf("page size %d: %v", size, seqs)
			}
			for i, s := range seqs {
				if s != int64(i+1) {
					t.Fatalf("page size %d: %v", size, seqs)
				}
			}
		}
	})
}
