package migration_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/migration"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// shopV1 is the older version: the instances that move.
const shopV1 = `name: shop
initial: cart
context:
  amount: int
  note: string
  tier: string
  legacy: string
  paid_at: time
  items: [string]
  extra: any
  customer:
    email: string
    tier: string
states:
  cart: {on: {checkout: review}}
  review: {on: {approve: paid, hold: on_hold}}
  on_hold: {on: {release: review}}
  paid: {on: {ship: shipped}}
  shipped: {final: true}
`

// shopV2 is the newer version: %CONTEXT% and %MIGRATE% are replaced per case (see v2).
const shopV2 = `name: shop
initial: basket
context:
  amount: float
  note: string
  paid_at: time
  items: [string]
  currency: {type: string, default: EUR}
  customer:
    email: string
%CONTEXT%
states:
  basket: {on: {checkout: manual_review}}
  manual_review: {on: {approve: paid}}
  auto_review: {on: {approve: paid}}
  paid: {on: {ship: shipped}}
  shipped: {final: true}
migrate:
  states:
    cart: basket
    review:
      - to: manual_review
        guard: ctx.amount > 1000
      - to: auto_review
        guard: ctx.amount > 0
%MIGRATE%
`

// v2 builds a newer version with extra context fields (indented YAML under context:) and extra
// migrate rules (indented YAML under migrate:).
func v2(context, migrate string) string {
	return strings.NewReplacer("%CONTEXT%", context, "%MIGRATE%", migrate).Replace(shopV2)
}

// parse loads a definition from YAML, failing the test on any error.
func parse(t *testing.T, src string) *machine.Definition {
	t.Helper()
	def, diags := machine.Parse("shop.yaml", []byte(src))
	if diags.Errors() > 0 {
		t.Fatalf("%v", (&machine.InvalidDefinitionError{Diagnostics: diags}).Error())
	}
	return def
}

// snapshot is an instance of from in state, its context decoded (over the defaults) from ctx.
func snapshot(t *testing.T, from *machine.Definition, state string, ctx map[string]any) machine.Snapshot {
	t.Helper()
	if ctx == nil {
		ctx = map[string]any{}
	}
	typed, err := from.Context.Decode(ctx, "ctx", schema.Options{})
	if err != nil {
		t.Fatalf("the old context does not fit the old version: %v", err)
	}
	created := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	return machine.Snapshot{ID: "i-1", Version: 1, State: state, Context: typed.(map[string]any),
		CreatedAt: created, EnteredAt: created.Add(time.Hour)}
}

var now = time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)

// nested is n lists nested.
func nested(n int) any {
	var v any = []any{}
	for range n - 1 {
		v = []any{v}
	}
	return v
}

func TestMove(t *testing.T) {
	t.Parallel()
	paidAt := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name    string
		to      string         // the newer version; shopV1 is the older
		state   string         // the instance's state in shopV1
		ctx     map[string]any // its context, loosely typed, over shopV1's defaults
		wantTo  string         // "" when stranded
		reason  string         // "" when it moves
		detail  string         // a part of Detail, when stranded
		wantCtx map[string]any // typed values the new context must hold (compared exactly)
		absent  []string       // fields the new context must not hold
	}{
		{
			name: "a state whose name still exists is kept", to: v2("", ""), state: "paid",
			ctx:    map[string]any{"amount": 250, "paid_at": "2026-03-02T09:30:00Z"},
			wantTo: "paid", wantCtx: map[string]any{"paid_at": paidAt},
		},
		{
			name: "a plain rename", to: v2("", ""), state: "cart",
			wantTo: "basket",
		},
		{
			name: "a guarded split takes the first branch that holds", to: v2("", ""), state: "review",
			ctx: map[string]any{"amount": 5000}, wantTo: "manual_review",
		},
		{
			name: "a guarded split takes the next branch when the first does not hold", to: v2("", ""), state: "review",
			ctx: map[string]any{"amount": 20}, wantTo: "auto_review",
		},
		{
			name: "no branch of the rule holds", to: v2("", ""), state: "review",
			ctx:    map[string]any{"amount": 0},
			reason: migration.RuleFailed, detail: `no branch of the rule for state "review" holds`,
		},
		{
			name: "a removed state no rule maps", to: v2("", ""), state: "on_hold",
			reason: migration.StateUnmapped, detail: `state "on_hold" is gone`,
		},
		{
			name: "fields are kept, dropped, or take their default", to: v2("", ""), state: "cart",
			ctx: map[string]any{"note": "ring twice", "legacy": "x", "tier": "gold", "items": []any{"a", "b"},
				"customer": map[string]any{"email": "ada@example.com", "tier": "gold"}},
			wantTo: "basket",
			wantCtx: map[string]any{"note": "ring twice", "items": []any{"a", "b"}, "currency": "EUR",
				"customer": map[string]any{"email": "ada@example.com"}},
			absent: []string{"legacy", "tier", "extra"},
		},
		{
			name: "int to float: the old value still fits", to: v2("", ""), state: "cart",
			ctx: map[string]any{"amount": 250}, wantTo: "basket", wantCtx: map[string]any{"amount": 250.0},
		},
		{
			name: "a migrate.context expression computes a new field from the old context", state: "cart",
			to: v2("  priority: string", `  context:
    priority: 'ctx.amount > 1000 ? "high" : "normal"'
    currency: 'ctx.customer.tier == "swiss" ? "CHF" : "EUR"'`),
			ctx:    map[string]any{"amount": 5000, "customer": map[string]any{"tier": "swiss"}},
			wantTo: "basket", wantCtx: map[string]any{"priority": "high", "currency": "CHF", "amount": 5000.0},
		},
		{
			name: "?? gives a default for what an any value lacks", state: "cart",
			to:     v2("  channel: string", `  context: {channel: 'ctx.extra?.channel ?? "web"'}`),
			ctx:    map[string]any{"extra": map[string]any{"source": "import"}},
			wantTo: "basket", wantCtx: map[string]any{"channel": "web"},
		},
		{
			name: "expressions see the old state, the instance and now", state: "review",
			to: v2("  moved: string", `  context:
    moved: 'state + " " + instance.id + " " + string(instance.version) + " " + string(now - instance.entered_at)'`),
			ctx:    map[string]any{"amount": 5},
			wantTo: "auto_review", wantCtx: map[string]any{"moved": "review i-1 1 747h0m0s"},
		},
		{
			name: "a type change the old value does not fit, with no rule", state: "cart",
			to:     strings.Replace(v2("", ""), "  note: string", "  note: int", 1),
			ctx:    map[string]any{"note": "ring twice"},
			reason: migration.ContextInvalid, detail: "ctx.note",
		},
		{
			name: "a type change some old values fit: string to duration", state: "cart",
			to:     strings.Replace(v2("", ""), "  note: string", "  note: duration", 1),
			ctx:    map[string]any{"note": "90m"},
			wantTo: "basket", wantCtx: map[string]any{"note": 90 * time.Minute},
		},
		{
			name: "and others not, instance by instance", state: "cart",
			to:     strings.Replace(v2("", ""), "  note: string", "  note: duration", 1),
			ctx:    map[string]any{"note": ""},
			reason: migration.ContextInvalid, detail: "add a migrate context rule for note",
		},
		{
			name: "a rule that grows the context past its bound (256 KiB)", state: "cart",
			to:     v2("", `  context: {note: 'ctx.note + ctx.note'}`),
			ctx:    map[string]any{"note": strings.Repeat("n", 150<<10)},
			reason: migration.ContextInvalid, detail: "the most is 262144 (256 KiB)",
		},
		{
			name: "a rule that nests an any value past 100 levels", state: "cart",
			to:     v2("  extra: any", `  context: {extra: '[[ctx.extra]]'}`),
			ctx:    map[string]any{"extra": nested(98)},
			reason: migration.ContextInvalid, detail: "deeper than 100 levels",
		},
		{
			name: "a type change replaced by a rule", state: "cart",
			to:     strings.Replace(v2("", `  context: {note: 'len(ctx.note)'}`), "  note: string", "  note: int", 1),
			ctx:    map[string]any{"note": "ring twice"},
			wantTo: "basket", wantCtx: map[string]any{"note": 10},
		},
		{
			name: "a nested object replaced whole by a rule: its old fields are not looked at", state: "cart",
			to: strings.Replace(v2("", `  context: {customer: '{"email": ctx.customer.email + "!"}'}`),
				"    email: string", "    email: string\n    tier: int", 1),
			ctx:    map[string]any{"customer": map[string]any{"email": "a@b", "tier": "gold"}},
			wantTo: "basket", wantCtx: map[string]any{"customer": map[string]any{"email": "a@b!", "tier": 0}},
		},
		{
			name: "a nested field whose type changed, with no rule", state: "cart",
			to:     strings.Replace(v2("", ""), "    email: string", "    email: string\n    tier: int", 1),
			ctx:    map[string]any{"customer": map[string]any{"tier": "gold"}},
			reason: migration.ContextInvalid, detail: "customer.tier",
		},
		{
			name: "a context expression failing at run time", state: "cart",
			to:     v2("  first: string", `  context: {first: 'ctx.items[3]'}`),
			ctx:    map[string]any{"items": []any{"a"}},
			reason: migration.RuleFailed, detail: "index out of range",
		},
		{
			name: "a context expression failing at run time strands even a state kept by name", state: "paid",
			to:     v2("  first: string", `  context: {first: 'ctx.items[3]'}`),
			reason: migration.RuleFailed, detail: "migrate context first",
		},
		{
			name: "a guard failing at run time", state: "review",
			to:     strings.Replace(v2("", ""), "guard: ctx.amount > 1000", "guard: ctx.items[0] == \"vip\"", 1),
			reason: migration.RuleFailed, detail: `the guard of the rule for state "review"`,
		},
		{
			name: "a guard that does not compile against the old context strands every instance", state: "paid",
			to:     strings.Replace(v2("", ""), "guard: ctx.amount > 1000", "guard: ctx.currency == \"EUR\"", 1),
			reason: migration.RuleFailed, detail: "unknown field currency",
		},
	}
	from := parse(t, shopV1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := migration.Compile(from, parse(t, tt.to))
			out := m.Decide(snapshot(t, from, tt.state, tt.ctx), now)
			if out.To != tt.wantTo || out.Reason != tt.reason {
				t.Fatalf("Decide: to %q, reason %q (%s); want to %q, reason %q", out.To, out.Reason, out.Detail, tt.wantTo, tt.reason)
			}
			if out.Stranded() != (tt.reason != "") {
				t.Errorf("Stranded() = %v with reason %q", out.Stranded(), out.Reason)
			}
			if tt.reason != "" {
				if !strings.Contains(out.Detail, tt.detail) {
					t.Errorf("Detail %q lacks %q", out.Detail, tt.detail)
				}
				if out.Context != nil {
					t.Errorf("a stranded instance has a new context: %v", out.Context)
				}
				return
			}
			if out.Detail != "" {
				t.Errorf("a move has Detail %q", out.Detail)
			}
			// The new context is typed by the new schema: it decodes to itself.
			if typed, err := m.To.Context.Decode(out.Context, "ctx", schema.Options{}); err != nil {
				t.Errorf("the new context does not fit the new version: %v", err)
			} else if !schema.Equal(typed, out.Context) {
				t.Errorf("the new context is not typed: %#v", out.Context)
			}
			for k, want := range tt.wantCtx {
				if got := out.Context[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("ctx.%s = %#v (%T), want %#v (%T)", k, got, got, want, want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := out.Context[k]; ok {
					t.Errorf("ctx.%s = %#v; the new version has no such field", k, v)
				}
			}
		})
	}
}

func TestCompileErr(t *testing.T) {
	t.Parallel()
	from := parse(t, shopV1)
	tests := []struct {
		name string
		to   string
		want []string // parts of Err(); none: Err() is nil
	}{
		{"rules that compile", v2("  priority: string", `  context: {priority: 'ctx.amount > 10 ? "a" : "b"'}`), nil},
		{"no migrate section", strings.Split(v2("", ""), "migrate:")[0], nil},
		{"a guard on a field the old version lacks",
			strings.Replace(v2("", ""), "guard: ctx.amount > 1000", "guard: ctx.currency == \"EUR\"", 1),
			[]string{`rule for state "review"`, "unknown field currency"}},
		{"a guard that is not bool", strings.Replace(v2("", ""), "guard: ctx.amount > 0", "guard: ctx.amount", 1),
			[]string{`rule for state "review"`}},
		{"a context expression of the wrong type", v2("  priority: string", `  context: {priority: ctx.amount}`),
			[]string{"migrate context priority"}},
		{"a context expression using event", v2("  priority: string", `  context: {priority: event.x}`),
			[]string{"migrate context priority", "event"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := migration.Compile(from, parse(t, tt.to))
			if tt.want == nil {
				if m.Err() != nil {
					t.Fatalf("Err() = %v, want nil", m.Err())
				}
				return
			}
			if m.Err() == nil {
				t.Fatalf("Err() = nil, want an error holding %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(m.Err().Error(), w) {
					t.Errorf("Err() = %q lacks %q", m.Err(), w)
				}
			}
			// Every instance is stranded by it, even one whose state maps without a guard, and no
			// state has a target.
			for _, state := range []string{"cart", "review", "paid"} {
				out := m.Decide(snapshot(t, from, state, map[string]any{"amount": 5000}), now)
				if out.Reason != migration.RuleFailed || out.Detail != m.Err().Error() {
					t.Errorf("Decide from %s: reason %q, detail %q; want rule_failed with Err()", state, out.Reason, out.Detail)
				}
				if to, ok := m.Target(state); ok {
					t.Errorf("Target(%s) = %q, true; want no target", state, to)
				}
			}
		})
	}
}

// TestCompileErrIsStable: the rules are a map, yet two runs report their errors alike.
func TestCompileErrIsStable(t *testing.T) {
	t.Parallel()
	from := parse(t, shopV1)
	to := parse(t, v2("", `    on_hold: {to: manual_review, guard: ctx.nope}
    paid: [{to: paid, guard: ctx.nothing}]`))
	first := migration.Compile(from, to).Err()
	if first == nil {
		t.Fatal("Err() = nil, want the errors of both guards")
	}
	for range 50 {
		if err := migration.Compile(from, to).Err(); err.Error() != first.Error() {
			t.Fatalf("Err() differs between runs:\n%v\n%v", first, err)
		}
	}
	if i, j := strings.Index(first.Error(), `"on_hold"`), strings.Index(first.Error(), `"paid"`); i < 0 || j < i {
		t.Errorf("Err() = %q: want the rules in name order", first)
	}
}

func TestTarget(t *testing.T) {
	t.Parallel()
	from := parse(t, shopV1)
	m := migration.Compile(from, parse(t, v2("", `    paid: [{to: shipped}]`)))
	if m.Err() != nil {
		t.Fatal(m.Err())
	}
	tests := []struct {
		state, to string
		ok        bool
	}{
		{"cart", "basket", true},                 // renamed
		{"shipped", "shipped", true},             // kept by name
		{"paid", "shipped", true},                // a rule of one unguarded branch wins over the name
		{"review", "", false},                    // guarded: the instance's data decides
		{"on_hold", "", false},                   // unmapped
		{"no_such_state", "", false},             // not a state of either version
		{"manual_review", "manual_review", true}, // only in the new version: a name that exists
	}
	for _, tt := range tests {
		to, ok := m.Target(tt.state)
		if to != tt.to || ok != tt.ok {
			t.Errorf("Target(%s) = %q, %v; want %q, %v", tt.state, to, ok, tt.to, tt.ok)
		}
		// Where Target answers, Decide agrees with it.
		if ok && from.States[tt.state] != nil {
			if out := m.Decide(snapshot(t, from, tt.state, nil), now); out.To != to {
				t.Errorf("Decide from %s: to %q (%s %s); Target says %q", tt.state, out.To, out.Reason, out.Detail, to)
			}
		}
	}
}
