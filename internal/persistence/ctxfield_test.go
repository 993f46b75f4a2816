package persistence_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// The context fields of the tests' "shop" definition.
var (
	fTier   = persistence.CtxField{Path: []string{"customer", "tier"}, Kind: schema.String}
	fQty    = persistence.CtxField{Path: []string{"qty"}, Kind: schema.Int}
	fAmount = persistence.CtxField{Path: []string{"amount"}, Kind: schema.Float}
	fRush   = persistence.CtxField{Path: []string{"rush"}, Kind: schema.Bool}
	fPaidAt = persistence.CtxField{Path: []string{"paid_at"}, Kind: schema.Time}
	fWait   = persistence.CtxField{Path: []string{"wait"}, Kind: schema.Duration}
	fNumber = persistence.CtxField{Path: []string{"number"}, Kind: schema.String}
)

func shopInstance(id, ctxJSON string) persistence.InstanceRow {
	r := instance(id, "shop", 1, "open")
	r.Context = []byte(ctxJSON)
	return r
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestCtxFilters: each filter of GET /v1/instances?ctx.<path>= by kind, on both databases, with
// and without the definition's indexes: times compare as instants whatever their offset and the
// width of their fraction; a value of another JSON type (an older version's) matches nothing.
func TestCtxFilters(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("shop", 1), definition("other", 1)}, []persistence.InstanceRow{
			shopInstance("a", `{"customer":{"tier":"gold"},"qty":3,"amount":9.5,"rush":true,"paid_at":"2026-01-01T10:00:00Z","wait":"1h0m0s"}`),
			shopInstance("b", `{"customer":{"tier":"silver"},"qty":10,"amount":100,"rush":false,"paid_at":"2026-01-01T10:00:00.5Z","wait":"72h0m0s"}`),
			shopInstance("c", `{"customer":{"tier":"gold"},"qty":-2,"amount":0.25,"rush":false,"paid_at":"2026-01-01T11:30:00.000001+02:00","wait":"0s"}`),
			shopInstance("d", `{"customer":{"tier":7},"qty":"many","amount":"x","rush":"yes","paid_at":"soon","wait":3}`),
			shopInstance("e", `{"customer":{"tier":"gold"},"qty":9223372036854775807,"amount":1e300,"rush":true,"paid_at":"0001-01-01T00:00:00Z"}`),
			func() persistence.InstanceRow {
				r := instance("f", "other", 1, "open")
				r.Context = []byte(`{"customer":{"tier":"gold"}}`)
				return r
			}(),
		})
		list := func(t *testing.T, filters ...persistence.CtxFilter) []string {
			t.Helper()
			rows, err := persistence.InstanceList(ctx, db, persistence.InstanceListParams{Definition: "shop", Ctx: filters})
			if err != nil {
				t.Fatalf("InstanceList: %v", err)
			}
			return ids(rows)
		}
		cases := []struct {
			name    string
			filters []persistence.CtxFilter
			want    []string
		}{
			{"string equal, nested", []persistence.CtxFilter{{Field: fTier, Op: "=", Value: "gold"}}, []string{"a", "c", "e"}},
			{"int greater", []persistence.CtxFilter{{Field: fQty, Op: ">", Value: int64(3)}}, []string{"b", "e"}},
			{"int at least", []persistence.CtxFilter{{Field: fQty, Op: ">=", Value: int64(3)}}, []string{"a", "b", "e"}},
			{"int below zero", []persistence.CtxFilter{{Field: fQty, Op: "<", Value: int64(0)}}, []string{"c"}},
			{"int64's largest", []persistence.CtxFilter{{Field: fQty, Op: "=", Value: int64(9223372036854775807)}}, []string{"e"}},
			{"float at most", []persistence.CtxFilter{{Field: fAmount, Op: "<=", Value: 9.5}}, []string{"a", "c"}},
			{"float huge", []persistence.CtxFilter{{Field: fAmount, Op: ">", Value: 1e299}}, []string{"e"}},
			{"bool true", []persistence.CtxFilter{{Field: fRush, Op: "=", Value: true}}, []string{"a", "e"}},
			{"bool false", []persistence.CtxFilter{{Field: fRush, Op: "=", Value: false}}, []string{"b", "c"}},
			{"time equal, another offset", []persistence.CtxFilter{{Field: fPaidAt, Op: "=", Value: mustTime("2026-01-01T09:30:00.000001Z")}}, []string{"c"}},
			{"time after, a fraction", []persistence.CtxFilter{{Field: fPaidAt, Op: ">", Value: mustTime("2026-01-01T10:00:00Z")}}, []string{"b"}},
			{"time at or after", []persistence.CtxFilter{{Field: fPaidAt, Op: ">=", Value: mustTime("2026-01-01T12:00:00+02:00")}}, []string{"a", "b"}},
			{"time before", []persistence.CtxFilter{{Field: fPaidAt, Op: "<", Value: mustTime("2026-01-01T10:00:00Z")}}, []string{"c", "e"}},
			{"time to the microsecond", []persistence.CtxFilter{{Field: fPaidAt, Op: "=", Value: mustTime("2026-01-01T10:00:00.500000999Z")}}, []string{"b"}},
			{"duration", []persistence.CtxFilter{{Field: fWait, Op: "=", Value: 72 * time.Hour}}, []string{"b"}},
			{"two, anded", []persistence.CtxFilter{{Field: fTier, Op: "=", Value: "gold"}, {Field: fRush, Op: "=", Value: false}}, []string{"c"}},
			{"a range", []persistence.CtxFilter{{Field: fQty, Op: ">", Value: int64(0)}, {Field: fQty, Op: "<", Value: int64(10)}}, []string{"a"}},
			{"none", []persistence.CtxFilter{{Field: fTier, Op: "=", Value: "bronze"}}, nil},
		}
		check := func(t *testing.T) {
			for _, c := range cases {
				if got := list(t, c.filters...); !slices.Equal(got, c.want) {
					t.Errorf("%s: got %v, want %v", c.name, got, c.want)
				}
			}
		}
		t.Run("without indexes", check)
		ix := persistence.CtxIndexes{Definition: "shop", Find: []persistence.CtxField{fTier, fQty, fAmount, fRush, fPaidAt, fWait}}
		for range 2 { // a second time finds them made
			if err := persistence.CtxIndexesEnsure(ctx, db, ix); err != nil {
				t.Fatalf("CtxIndexesEnsure: %v", err)
			}
		}
		t.Run("with indexes", check)
		// Keyset paging in id order goes on with the filters.
		rows, err := persistence.InstanceList(ctx, db, persistence.InstanceListParams{Definition: "shop", After: "a", Limit: 1,
			Ctx: []persistence.CtxFilter{{Field: fTier, Op: "=", Value: "gold"}}})
		if err != nil || !slices.Equal(ids(rows), []string{"c"}) {
			t.Errorf("the page after a: %v, %v; want [c]", ids(rows), err)
		}
		// An instance whose context the index reads as NULL is written, never refused.
		seed(t, db, nil, []persistence.InstanceRow{shopInstance("g", `{"paid_at":"0000-01-01T00:00:00Z","qty":1.5}`)})
		if _, err := persistence.InstanceList(ctx, db, persistence.InstanceListParams{Ctx: []persistence.CtxFilter{{Field: fTier, Op: "=", Value: "x"}}}); err == nil {
			t.Error("a context filter without a definition: no error")
		}
	})
}

// TestKeys: a key is unique among the running instances of its definition whose key is set, at
// an insert and at an update, and ErrKeyExists names its index; InstanceFindByKey finds the one.
func TestKeys(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		seed(t, db, []persistence.DefinitionRow{definition("shop", 1), definition("other", 1)}, nil)
		err := persistence.CtxIndexesEnsure(ctx, db, persistence.CtxIndexes{Definition: "shop", Keys: []persistence.CtxField{fNumber}})
		if err != nil {
			t.Fatalf("CtxIndexesEnsure: %v", err)
		}
		index := persistence.KeyIndexName("shop", fNumber)
		insert := func(r persistence.InstanceRow) error {
			return db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.InstanceInsert(ctx, tx, r) })
		}
		final := shopInstance("done", `{"number":"A-17"}`)
		final.Final = true
		other := instance("elsewhere", "other", 1, "open")
		other.Context = []byte(`{"number":"A-17"}`)
		for _, r := range []persistence.InstanceRow{shopInstance("a", `{"number":"A-17"}`), final, other,
			shopInstance("e1", `{"number":""}`), shopInstance("e2", `{"number":""}`), shopInstance("b", `{"number":"B-1"}`)} {
			if err := insert(r); err != nil {
				t.Fatalf("insert %s: %v", r.ID, err)
			}
		}
		err = insert(shopInstance("a2", `{"number":"A-17"}`))
		if !errors.Is(err, persistence.ErrKeyExists) || errors.Is(err, persistence.ErrConflict) || persistence.KeyIndex(err) != index {
			t.Fatalf("a second running A-17: %v (index %q), want ErrKeyExists of %s", err, persistence.KeyIndex(err), index)
		}
		// An update that takes the key: the same error, not the revision's conflict.
		b, err := persistence.InstanceGet(ctx, db, "b")
		if err != nil {
			t.Fatal(err)
		}
		err = db.WithTx(ctx, func(tx *persistence.Tx) error {
			return persistence.InstanceUpdate(ctx, tx, persistence.InstanceUpdateParams{ID: "b", ExpectRevision: 0, Version: 1,
				State: "open", Context: []byte(`{"number":"A-17"}`), Revision: 1, UpdatedAt: now(), EnteredAt: b.EnteredAt})
		})
		if !errors.Is(err, persistence.ErrKeyExists) || persistence.KeyIndex(err) != index {
			t.Fatalf("an update to A-17: %v, want ErrKeyExists", err)
		}
		id, err := persistence.InstanceFindByKey(ctx, db, "shop", fNumber, "A-17")
		if err != nil || id != "a" {
			t.Errorf("FindByKey A-17: %q, %v; want a", id, err)
		}
		if _, err := persistence.InstanceFindByKey(ctx, db, "shop", fNumber, "Z-9"); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("FindByKey Z-9: %v, want ErrNotFound", err)
		}
		// A key shared by running instances cannot be made unique: the error says so, and no index
		// is left behind.
		seed(t, db, nil, []persistence.InstanceRow{func() persistence.InstanceRow {
			r := instance("o2", "other", 1, "open")
			r.Context = []byte(`{"number":"A-17"}`)
			return r
		}()})
		err = persistence.CtxIndexesEnsure(ctx, db, persistence.CtxIndexes{Definition: "other", Keys: []persistence.CtxField{fNumber}})
		var taken *persistence.KeyTakenError
		if !errors.As(err, &taken) || taken.Index != persistence.KeyIndexName("other", fNumber) {
			t.Fatalf("a key shared already: %v, want KeyTakenError", err)
		}
		if db.Dialect == persistence.Postgres {
			var n int
			if err := db.X.GetContext(ctx, &n, `SELECT count(*) FROM pg_class WHERE relname = $1`, taken.Index); err != nil || n != 0 {
				t.Errorf("the failed index: %d left, %v", n, err)
			}
		}
	})
}

// TestCtxIndexExplain: on PostgreSQL a filter on an `index`ed path and a lookup by key read their
// indexes (the plans name them), with sequential scans off in the session: a test table is too
// small for the planner to prefer an index by itself.
func TestCtxIndexExplain(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	ctx := context.Background()
	seed(t, db, []persistence.DefinitionRow{definition("shop", 1)}, []persistence.InstanceRow{
		shopInstance("a", `{"customer":{"tier":"gold"},"number":"A-1","paid_at":"2026-01-01T10:00:00Z"}`)})
	ix := persistence.CtxIndexes{Definition: "shop", Find: []persistence.CtxField{fTier, fPaidAt}, Keys: []persistence.CtxField{fNumber}}
	if err := persistence.CtxIndexesEnsure(ctx, db, ix); err != nil {
		t.Fatal(err)
	}
	conn, err := db.X.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	explain := func(query string, args []any) string {
		var lines []string
		if err := conn.SelectContext(ctx, &lines, "EXPLAIN "+query, args...); err != nil {
			t.Fatalf("EXPLAIN %s: %v", query, err)
		}
		return strings.Join(lines, "\n")
	}
	cases := []struct {
		name, index string
		query       func() (string, []any)
	}{
		{"an index:ed string", persistence.FindIndexName("shop", fTier), func() (string, []any) {
			q, a, err := persistence.InstanceListSQL(persistence.Postgres, persistence.InstanceListParams{Definition: "shop", Limit: 100,
				After: "0", Ctx: []persistence.CtxFilter{{Field: fTier, Op: "=", Value: "gold"}}})
			if err != nil {
				t.Fatal(err)
			}
			return q, a
		}},
		{"an index:ed time range", persistence.FindIndexName("shop", fPaidAt), func() (string, []any) {
			q, a, err := persistence.InstanceListSQL(persistence.Postgres, persistence.InstanceListParams{Definition: "shop", Limit: 100,
				Ctx: []persistence.CtxFilter{{Field: fPaidAt, Op: ">=", Value: mustTime("2026-01-01T00:00:00Z")}}})
			if err != nil {
				t.Fatal(err)
			}
			return q, a
		}},
		{"a key", persistence.KeyIndexName("shop", fNumber), func() (string, []any) {
			return persistence.KeyLookupSQL(persistence.Postgres, "shop", fNumber, "A-1")
		}},
	}
	for _, c := range cases {
		plan := explain(c.query())
		if !strings.Contains(plan, c.index) {
			t.Errorf("%s: the plan does not name %s:\n%s", c.name, c.index, plan)
		}
	}
}

// TestCtxIndexQueryPlanSQLite: on SQLite too, the filter on an `index`ed path and the lookup by
// key name their indexes in the query plan (the definition is a literal in the query, as in the
// indexes' predicates, which SQLite needs to use a partial index).
func TestCtxIndexQueryPlanSQLite(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	ctx := context.Background()
	seed(t, db, []persistence.DefinitionRow{definition("shop", 1)}, nil)
	ix := persistence.CtxIndexes{Definition: "shop", Find: []persistence.CtxField{fTier, fPaidAt}, Keys: []persistence.CtxField{fNumber}}
	if err := persistence.CtxIndexesEnsure(ctx, db, ix); err != nil {
		t.Fatal(err)
	}
	plan := func(query string, args []any) string {
		var rows []struct {
			ID      int    `db:"id"`
			Parent  int    `db:"parent"`
			NotUsed int    `db:"notused"`
			Detail  string `db:"detail"`
		}
		if err := db.X.SelectContext(ctx, &rows, "EXPLAIN QUERY PLAN "+query, args...); err != nil {
			t.Fatalf("EXPLAIN QUERY PLAN %s: %v", query, err)
		}
		var b strings.Builder
		for _, r := range rows {
			b.WriteString(r.Detail + "\n")
		}
		return b.String()
	}
	list := func(f persistence.CtxFilter) (string, []any) {
		q, a, err := persistence.InstanceListSQL(persistence.SQLite, persistence.InstanceListParams{Definition: "shop", Limit: 100,
			Ctx: []persistence.CtxFilter{f}})
		if err != nil {
			t.Fatal(err)
		}
		return q, a
	}
	tier, tierArgs := list(persistence.CtxFilter{Field: fTier, Op: "=", Value: "gold"})
	paid, paidArgs := list(persistence.CtxFilter{Field: fPaidAt, Op: ">", Value: mustTime("2026-01-01T00:00:00Z")})
	key, keyArgs := persistence.KeyLookupSQL(persistence.SQLite, "shop", fNumber, "A-1")
	for _, c := range []struct {
		name, index, query string
		args               []any
	}{
		{"an index:ed string", persistence.FindIndexName("shop", fTier), tier, tierArgs},
		{"an index:ed time range", persistence.FindIndexName("shop", fPaidAt), paid, paidArgs},
		{"a key", persistence.KeyIndexName("shop", fNumber), key, keyArgs},
	} {
		if p := plan(c.query, c.args); !strings.Contains(p, c.index) {
			t.Errorf("%s: the plan does not name %s:\n%s", c.name, c.index, p)
		}
	}
}
