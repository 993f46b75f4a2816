package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

func TestDefinitionInsertAndGet(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		order1, order2, loan1 := definition("order", 1), definition("order", 2), definition("loan", 1)
		order2.Source = "name: order\nstates: {'; DROP TABLE definitions; --': {}}\n# ünïcødé ✓ 🚀\n"
		seed(t, db, []persistence.DefinitionRow{order1, order2, loan1}, nil)

		got, err := persistence.DefinitionGet(ctx, db, "order", 2)
		if err != nil {
			t.Fatalf("DefinitionGet: %v", err)
		}
		sameTime(t, "created_at", got.CreatedAt, order2.CreatedAt)
		got.CreatedAt = order2.CreatedAt
		if !reflect.DeepEqual(got, order2) {
			t.Errorf("DefinitionGet:\n got %+v\nwant %+v", got, order2)
		}

		got, err = persistence.DefinitionGetByHash(ctx, db, "order", order1.Hash)
		if err != nil {
			t.Fatalf("DefinitionGetByHash: %v", err)
		}
		if got.Version != 1 || got.Source != order1.Source {
			t.Errorf("DefinitionGetByHash: %+v, want version 1", got)
		}

		for _, tc := range []struct {
			name string
			want int
		}{{"order", 2}, {"loan", 1}, {"nothing", 0}} {
			v, err := persistence.DefinitionLatestVersion(ctx, db, tc.name)
			if err != nil || v != tc.want {
				t.Errorf("DefinitionLatestVersion(%q) = %d, %v; want %d", tc.name, v, err, tc.want)
			}
		}

		all, err := persistence.DefinitionListAll(ctx, db)
		if err != nil {
			t.Fatalf("DefinitionListAll: %v", err)
		}
		var keys []string
		for _, d := range all {
			keys = append(keys, fmt.Sprintf("%s/%d", d.Name, d.Version))
		}
		if want := []string{"loan/1", "order/1", "order/2"}; !reflect.DeepEqual(keys, want) {
			t.Errorf("DefinitionListAll: %v, want %v", keys, want)
		}
	})
}

func TestDefinitionErrors(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("order", 1)}, nil)

		t.Run("not found", func(t *testing.T) {
			for _, tc := range []struct {
				name string
				get  func() error
			}{
				{"no such version", func() error { _, err := persistence.DefinitionGet(ctx, db, "order", 2); return err }},
				{"no such name", func() error { _, err := persistence.DefinitionGet(ctx, db, "loan", 1); return err }},
				{"no such hash", func() error { _, err := persistence.DefinitionGetByHash(ctx, db, "order", "nope"); return err }},
			} {
				if err := tc.get(); !errors.Is(err, persistence.ErrNotFound) {
					t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
				}
			}
		})

		t.Run("conflict", func(t *testing.T) {
			sameVersion := definition("order", 1)
			sameVersion.Hash = "another hash"
			sameHash := definition("order", 2)
			sameHash.Hash = definition("order", 1).Hash
			for _, tc := range []struct {
				name string
				row  persistence.DefinitionRow
			}{{"same version", sameVersion}, {"same hash", sameHash}} {
				err := db.WithTx(ctx, func(tx *persistence.Tx) error {
					err := persistence.DefinitionInsert(ctx, tx, tc.row)
					if !errors.Is(err, persistence.ErrConflict) {
						t.Errorf("%s: DefinitionInsert: %v, want ErrConflict", tc.name, err)
					}
					// The transaction is still usable after the conflict.
					_, err = persistence.DefinitionGet(ctx, tx, "order", 1)
					return err
				})
				if err != nil {
					t.Errorf("%s: the transaction after the conflict: %v", tc.name, err)
				}
			}
			// The same hash under another name is another definition.
			other := definition("loan", 1)
			other.Hash = definition("order", 1).Hash
			seed(t, db, []persistence.DefinitionRow{other}, nil)
		})
	})
}
