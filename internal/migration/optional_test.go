package migration_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/migration"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// enumShop is a version of a definition whose context %CONTEXT% replaces, for the migrations of
// optional fields and enumerations between two of them.
const enumShop = `name: shop
initial: cart
context:
%CONTEXT%
states:
  cart: {on: {checkout: paid}}
  paid: {final: true}
`

var jan1 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func enumVersion(context string) string { return strings.Replace(enumShop, "%CONTEXT%", context, 1) }

// TestDecideOptionalAndEnum: each instance's context is decoded against the new version's types: a
// field becoming optional keeps its value, a value an enumeration lost (or a null a field no longer
// takes) strands the instance as context_invalid, naming the field; a migrate context rule repairs it.
func TestDecideOptionalAndEnum(t *testing.T) {
	t.Parallel()
	tiers := "  tier: {type: string, enum: [bronze, silver, gold]}\n"
	tests := []struct {
		name     string
		from, to string // context sections
		ctx      map[string]any
		field    string
		want     any
		reason   string
		detail   string
		rewrites bool // the move may be done in SQL (the types are identical)
	}{
		{name: "a time becoming optional keeps its value", from: "  paid_at: time\n", to: "  paid_at: time?\n",
			ctx: map[string]any{"paid_at": "2026-01-02T15:04:05Z"}, field: "paid_at", want: jan1},
		{name: "an optional field, unchanged, keeps its null", from: "  paid_at: time?\n", to: "  paid_at: time?\n",
			ctx: map[string]any{}, field: "paid_at", want: nil, rewrites: true},
		{name: "a new optional field is null", from: "  a: int\n", to: "  a: int\n  paid_at: time?\n",
			ctx: map[string]any{}, field: "paid_at", want: nil, rewrites: true},
		{name: "an optional field becoming plain: a value fits", from: "  paid_at: time?\n", to: "  paid_at: time\n",
			ctx: map[string]any{"paid_at": "2026-01-02T15:04:05Z"}, field: "paid_at", want: jan1},
		{name: "an optional field becoming plain: null strands", from: "  paid_at: time?\n", to: "  paid_at: time\n",
			ctx: map[string]any{}, reason: migration.ContextInvalid, detail: "ctx.paid_at: expected time, got null"},
		{name: "an enum losing a value: the others move", from: tiers, to: "  tier: {type: string, enum: [bronze, silver]}\n",
			ctx: map[string]any{"tier": "silver"}, field: "tier", want: "silver"},
		{name: "an enum losing a value strands who holds it", from: tiers, to: "  tier: {type: string, enum: [bronze, silver]}\n",
			ctx: map[string]any{"tier": "gold"}, reason: migration.ContextInvalid, detail: `ctx.tier: expected one of ["bronze", "silver"], got "gold"`},
		{name: "an enum gaining a value", from: tiers, to: "  tier: {type: string, enum: [bronze, silver, gold, platinum]}\n",
			ctx: map[string]any{"tier": "gold"}, field: "tier", want: "gold"},
		{name: "a string becoming an enum", from: "  tier: string\n", to: tiers,
			ctx: map[string]any{"tier": "tin"}, reason: migration.ContextInvalid, detail: `got "tin"`},
		{name: "a rule repairs the removed value", from: tiers,
			to:  "  tier: {type: string, enum: [bronze, silver]}\nmigrate:\n  context:\n    tier: 'ctx.tier == \"gold\" ? \"silver\" : ctx.tier'\n",
			ctx: map[string]any{"tier": "gold"}, field: "tier", want: "silver"},
		{name: "a rule turns the zero time into null", from: "  paid_at: time\n",
			to:  "  paid_at: time?\nmigrate:\n  context:\n    paid_at: 'ctx.paid_at == date(\"0001-01-01T00:00:00Z\") ? nil : ctx.paid_at'\n",
			ctx: map[string]any{}, field: "paid_at", want: nil},
		{name: "the same rule keeps a time", from: "  paid_at: time\n",
			to:  "  paid_at: time?\nmigrate:\n  context:\n    paid_at: 'ctx.paid_at == date(\"0001-01-01T00:00:00Z\") ? nil : ctx.paid_at'\n",
			ctx: map[string]any{"paid_at": "2026-01-02T15:04:05Z"}, field: "paid_at", want: jan1},
		{name: "an int enum losing a value", from: "  level: {type: int, enum: [1, 2, 3]}\n", to: "  level: {type: int, enum: [1, 2]}\n",
			ctx: map[string]any{"level": 3}, reason: migration.ContextInvalid, detail: "ctx.level: expected one of [1, 2], got 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			from := parse(t, enumVersion(tt.from))
			context, rule, _ := strings.Cut(tt.to, "migrate:\n") // a rule goes after the states
			if rule != "" {
				rule = "migrate:\n" + rule
			}
			to := parse(t, enumVersion(context)+rule)
			m := migration.Compile(from, to)
			if m.Err() != nil {
				t.Fatal(m.Err())
			}
			if got := m.Rewrite() != nil; got != tt.rewrites {
				t.Errorf("Rewrite() != nil is %v, want %v", got, tt.rewrites)
			}
			out := m.Decide(snapshot(t, from, "cart", tt.ctx), now)
			if out.Reason != tt.reason || !strings.Contains(out.Detail, tt.detail) {
				t.Fatalf("reason %q (%s), want %q (%s)", out.Reason, out.Detail, tt.reason, tt.detail)
			}
			if tt.reason != "" {
				return
			}
			if got, ok := out.Context[tt.field]; !ok || !schema.Equal(got, tt.want) {
				t.Errorf("ctx.%s = %#v, want %#v", tt.field, got, tt.want)
			}
		})
	}
}
