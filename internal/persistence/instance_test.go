package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

func TestInstanceInsertGetUpdate(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		in := instance("i-1", "order", 1, "created")
		seed(t, db, []persistence.DefinitionRow{definition("order", 1), definition("order", 2)},
			[]persistence.InstanceRow{in})

		got, err := persistence.InstanceGet(ctx, db, "i-1")
		if err != nil {
			t.Fatalf("InstanceGet: %v", err)
		}
		equalInstance(t, got, in)

		later := now().Add(90 * time.Minute)
		upd := persistence.InstanceUpdateParams{
			ID: "i-1", ExpectRevision: 0, Version: 2, State: "paid", Context: []byte(`{"n":1,"paid_at":"2026-01-01T00:00:00Z"}`),
			Revision: 1, Final: true, UpdatedAt: later, EnteredAt: later,
		}
		mustTx(t, db, func(tx *persistence.Tx) error {
			cur, err := persistence.InstanceGetForUpdate(ctx, tx, "i-1")
			if err != nil {
				return err
			}
			equalInstance(t, cur, in)
			return persistence.InstanceUpdate(ctx, tx, upd)
		})
		want := in
		want.Version, want.State, want.Context, want.Revision, want.Final = 2, "paid", upd.Context, 1, true
		want.UpdatedAt, want.EnteredAt = later, later
		got, err = persistence.InstanceGet(ctx, db, "i-1")
		if err != nil {
			t.Fatalf("InstanceGet after the update: %v", err)
		}
		equalInstance(t, got, want)

		// An update that keeps the version, state and finality (Stays) writes the rest.
		stay := persistence.InstanceUpdateParams{ID: "i-1", ExpectRevision: 1, Version: 2, State: "paid", Final: true, Stays: true,
			Context: []byte(`{"n":2}`), Revision: 2, UpdatedAt: later.Add(time.Minute), EnteredAt: later}
		mustTx(t, db, func(tx *persistence.Tx) error { return persistence.InstanceUpdate(ctx, tx, stay) })
		want.Context, want.Revision, want.UpdatedAt = stay.Context, 2, stay.UpdatedAt
		if got, err = persistence.InstanceGet(ctx, db, "i-1"); err != nil {
			t.Fatalf("InstanceGet after the update that stays: %v", err)
		}
		equalInstance(t, got, want)
	})
}

func TestInstanceErrors(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("order", 1)},
			[]persistence.InstanceRow{instance("i-1", "order", 1, "created")})

		for _, tc := range []struct {
			name string
			fn   func(tx *persistence.Tx) error
			want error
		}{
			{"get: no such instance", func(tx *persistence.Tx) error {
				_, err := persistence.InstanceGet(ctx, tx, "nope")
				return err
			}, persistence.ErrNotFound},
			{"get for update: no such instance", func(tx *persistence.Tx) error {
				_, err := persistence.InstanceGetForUpdate(ctx, tx, "nope")
				return err
			}, persistence.ErrNotFound},
			{"insert: the id exists", func(tx *persistence.Tx) error {
				return persistence.InstanceInsert(ctx, tx, instance("i-1", "order", 1, "other"))
			}, persistence.ErrConflict},
			{"update: another revision", func(tx *persistence.Tx) error {
				return persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{
					ID: "i-1", ExpectRevision: 7, Version: 1, State: "paid", Revision: 8,
				})
			}, persistence.ErrConflict},
			// Stays is checked, never trusted: an update that says so wrongly would leave the
			// instance in a state it has left.
			{"update that stays: another state", func(tx *persistence.Tx) error {
				return persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{
					ID: "i-1", ExpectRevision: 0, Version: 1, State: "paid", Revision: 1, Stays: true,
				})
			}, persistence.ErrConflict},
			{"update that stays: another version", func(tx *persistence.Tx) error {
				return persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{
					ID: "i-1", ExpectRevision: 0, Version: 2, State: "created", Revision: 1, Stays: true,
				})
			}, persistence.ErrConflict},
			{"update that stays: final", func(tx *persistence.Tx) error {
				return persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{
					ID: "i-1", ExpectRevision: 0, Version: 1, State: "created", Final: true, Revision: 1, Stays: true,
				})
			}, persistence.ErrConflict},
			{"update: no such instance", func(tx *persistence.Tx) error {
				return persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{
					ID: "nope", Version: 1, State: "paid", Revision: 1,
				})
			}, persistence.ErrConflict},
		} {
			var inTx error
			err := db.WithTx(ctx, func(tx *persistence.Tx) error {
				inTx = tc.fn(tx)
				if !errors.Is(inTx, tc.want) {
					return nil
				}
				// The error leaves the transaction usable.
				_, err := persistence.InstanceGet(ctx, tx, "i-1")
				return err
			})
			if !errors.Is(inTx, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, inTx, tc.want)
			}
			if err != nil {
				t.Errorf("%s: the transaction after the error: %v", tc.name, err)
			}
		}
		// Nothing changed.
		got, err := persistence.InstanceGet(ctx, db, "i-1")
		if err != nil || got.State != "created" || got.Revision != 0 {
			t.Errorf("the instance after the failed writes: %+v, %v", got, err)
		}
	})
}

func TestInstanceRoundTrips(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, nil)

		t.Run("times", func(t *testing.T) {
			// PostgreSQL keeps microseconds, SQLite nanoseconds; both give UTC back.
			precision := time.Nanosecond
			if db.Dialect == persistence.Postgres {
				precision = time.Microsecond
			}
			for i, tc := range []time.Time{
				t0,
				time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
				time.Date(1999, 1, 1, 0, 0, 0, 1000, time.FixedZone("Y", -9*3600)),
				time.Date(2026, 3, 29, 1, 30, 0, 500, mustLocation(t, "Europe/Paris")),
				time.Unix(0, 0),
				{},
			} {
				r := instance(fmt.Sprintf("time-%d", i), "order", 1, "created")
				r.CreatedAt, r.UpdatedAt, r.EnteredAt = tc, tc.Add(time.Microsecond), tc.Add(2*time.Nanosecond)
				seed(t, db, nil, []persistence.InstanceRow{r})
				got, err := persistence.InstanceGet(ctx, db, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				sameTime(t, r.ID+" created_at", got.CreatedAt, r.CreatedAt.Truncate(precision))
				sameTime(t, r.ID+" updated_at", got.UpdatedAt, r.UpdatedAt.Truncate(precision))
				sameTime(t, r.ID+" entered_at", got.EnteredAt, r.EnteredAt.Truncate(precision))
			}
		})

		t.Run("json", func(t *testing.T) {
			for i, tc := range []string{
				`{}`,
				`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
				`{"amount":10.25,"big":12345678901234567,"tiny":1e-7,"neg":-0.5}`,
				`{"sql":"'; DROP TABLE instances; --","quote":"\"\\","ctrl":"\t\n\u0001"}`,
				`{"unicode":"ünïcødé ✓ 🚀 עברית 中文","😀":"key"}`,
				`{"nested":{"deeper":{"deepest":[{"x":[]}]}}}`,
			} {
				r := instance(fmt.Sprintf("json-%d", i), "order", 1, "created")
				r.Context = []byte(tc)
				seed(t, db, nil, []persistence.InstanceRow{r})
				got, err := persistence.InstanceGet(ctx, db, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if !jsonEqual(t, got.Context, r.Context) {
					t.Errorf("context %s came back as %s", tc, got.Context)
				}
				if db.Dialect == persistence.SQLite && string(got.Context) != tc {
					t.Errorf("SQLite: context %s came back as %s, want the same bytes", tc, got.Context)
				}
			}
			// No context is stored as {}.
			r := instance("json-nil", "order", 1, "created")
			r.Context = nil
			seed(t, db, nil, []persistence.InstanceRow{r})
			if got, err := persistence.InstanceGet(ctx, db, r.ID); err != nil || string(got.Context) != "{}" {
				t.Errorf("nil context came back as %q, %v; want {}", got.Context, err)
			}
		})

		t.Run("text PostgreSQL cannot store", func(t *testing.T) {
			for _, tc := range []struct {
				name string
				edit func(*persistence.InstanceRow)
			}{
				{"NUL in JSON", func(r *persistence.InstanceRow) { r.Context = []byte(`{"a":"x\u0000y"}`) }},
				{"NUL in text", func(r *persistence.InstanceRow) { r.State = "a\x00b" }},
				{"not UTF-8", func(r *persistence.InstanceRow) { r.State = "a\xffb" }},
			} {
				r := instance("text-"+tc.name, "order", 1, "created")
				tc.edit(&r)
				err := db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.InstanceInsert(ctx, tx, r) })
				switch db.Dialect {
				case persistence.Postgres:
					if !errors.Is(err, persistence.ErrInvalidText) {
						t.Errorf("%s: %v, want ErrInvalidText", tc.name, err)
					}
				case persistence.SQLite:
					if err != nil {
						t.Errorf("%s: %v, want it stored", tc.name, err)
						continue
					}
					got, err := persistence.InstanceGet(ctx, db, r.ID)
					if err != nil || got.State != r.State || string(got.Context) != string(r.Context) {
						t.Errorf("%s: came back as %q %q, %v", tc.name, got.State, got.Context, err)
					}
				}
			}
		})
	})
}

func mustLocation(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s: %v", name, err)
	}
	return loc
}

func TestInstanceList(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		var insts []persistence.InstanceRow
		// Ids whose byte order differs from a locale's: upper case sorts before lower case.
		for i, id := range []string{"b", "A", "a", "B", "c-1", "c-10", "c-2", "Z", "é", "_"} {
			def, state, version := "order", "created", 1
			if i%3 == 1 {
				state = "paid"
			}
			if i%4 == 3 {
				def = "loan"
			}
			if i%5 == 4 {
				version = 2
			}
			insts = append(insts, instance(id, def, version, state))
		}
		seed(t, db, []persistence.DefinitionRow{
			definition("order", 1), definition("order", 2), definition("loan", 1), definition("loan", 2),
		}, insts)

		for _, tc := range []struct {
			name string
			p    persistence.InstanceListParams
			want []string
		}{
			{"all", persistence.InstanceListParams{}, []string{"A", "B", "Z", "_", "a", "b", "c-1", "c-10", "c-2", "é"}},
			{"limit", persistence.InstanceListParams{Limit: 3}, []string{"A", "B", "Z"}},
			{"after", persistence.InstanceListParams{After: "Z", Limit: 3}, []string{"_", "a", "b"}},
			{"after the last", persistence.InstanceListParams{After: "é"}, []string{}},
			{"definition", persistence.InstanceListParams{Definition: "loan"}, []string{"B", "Z"}},
			{"state", persistence.InstanceListParams{State: "paid"}, []string{"A", "Z", "c-1"}},
			{"definition and state", persistence.InstanceListParams{Definition: "order", State: "created"}, []string{"_", "a", "b", "c-10", "c-2", "é"}},
			{"version", persistence.InstanceListParams{Version: 2}, []string{"_", "c-1"}},
			{"all filters", persistence.InstanceListParams{Definition: "order", State: "created", Version: 1, After: "a", Limit: 1}, []string{"b"}},
			{"no such definition", persistence.InstanceListParams{Definition: "nope"}, []string{}},
		} {
			got, err := persistence.InstanceList(ctx, db, tc.p)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if !reflect.DeepEqual(ids(got), tc.want) {
				t.Errorf("%s: %q, want %q", tc.name, ids(got), tc.want)
			}
		}

		// Keyset pagination visits every instance once, in order, whatever the page size.
		all, err := persistence.InstanceList(ctx, db, persistence.InstanceListParams{})
		if err != nil {
			t.Fatal(err)
		}
		for size := 1; size <= len(all)+1; size++ {
			var seen []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(all)+1 {
					t.Fatalf("page size %d: does not end", size)
				}
				page, err := persistence.InstanceList(ctx, db, persistence.InstanceListParams{After: after, Limit: size})
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, ids(page)...)
				if len(page) < size {
					break
				}
				after = page[len(page)-1].ID
			}
			if !reflect.DeepEqual(seen, ids(all)) {
				t.Errorf("page size %d: %q, want %q", size, seen, ids(all))
			}
		}
	})
}

func TestInstanceCountRunning(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		got, err := persistence.InstanceCountRunning(ctx, db)
		if err != nil || len(got) != 0 {
			t.Fatalf("InstanceCountRunning on an empty database: %v, %v", got, err)
		}
		var insts []persistence.InstanceRow
		for i := range 7 {
			r := instance(fmt.Sprintf("o-%d", i), "order", 1+i%2, "created")
			r.Final = i < 2
			insts = append(insts, r)
		}
		done := instance("l-1", "loan", 1, "done")
		done.Final = true
		insts = append(insts, instance("a-1", "approval", 1, "review"), done)
		seed(t, db, []persistence.DefinitionRow{
			definition("order", 1), definition("order", 2), definition("approval", 1), definition("loan", 1),
		}, insts)

		got, err = persistence.InstanceCountRunning(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int64{"order": 5, "approval": 1}; !reflect.DeepEqual(got, want) {
			t.Errorf("InstanceCountRunning: %v, want %v", got, want)
		}
	})
}

// TestInstanceGetForUpdateSerializes: concurrent read-modify-write transactions on one instance,
// each reading it with InstanceGetForUpdate, are serialized: none is lost, none conflicts.
func TestInstanceGetForUpdateSerializes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("counter", 1)},
			[]persistence.InstanceRow{instance("c", "counter", 1, "on")})
		const workers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, workers*each)
		for range workers {
			wg.Go(func() {
				for range each {
					errs <- db.WithTx(ctx, func(tx *persistence.Tx) error {
						cur, err := persistence.InstanceGetForUpdate(ctx, tx, "c")
						if err != nil {
							return err
						}
						next := cur.Revision + 1
						if err := persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{
							ID: "c", ExpectRevision: cur.Revision, Version: 1, State: "on",
							Context: fmt.Appendf(nil, `{"n":%d}`, next), Revision: next,
							UpdatedAt: now(), EnteredAt: cur.EnteredAt,
						}); err != nil {
							return err
						}
						return persistence.TransitionInsert(ctx, tx, persistence.TransitionRow{
							InstanceID: "c", Seq: next, Event: "inc", From: "on", To: "on",
							Source: "api", RequestID: fmt.Sprint("r-", next), DefinitionVersion: 1, At: now(),
						})
					})
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("WithTx: %v", err)
			}
		}
		got, err := persistence.InstanceGet(ctx, db, "c")
		if err != nil {
			t.Fatal(err)
		}
		if got.Revision != workers*each || !jsonEqual(t, got.Context, fmt.Appendf(nil, `{"n":%d}`, workers*each)) {
			t.Errorf("after %d increments: revision %d, context %s", workers*each, got.Revision, got.Context)
		}
		rows, err := persistence.TransitionList(ctx, db, persistence.TransitionListParams{InstanceID: "c"})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range rows {
			if r.Seq != int64(i+1) {
				t.Fatalf("transition %d has seq %d: a gap or a duplicate", i+1, r.Seq)
			}
		}
		if len(rows) != workers*each {
			t.Errorf("%d transitions, want %d", len(rows), workers*each)
		}
	})
}
