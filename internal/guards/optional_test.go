package guards_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
)

func opt(t *schema.Type) *schema.Type {
	c := *t
	c.Optional = true
	return &c
}

func enumOf(k schema.Kind, values ...any) *schema.Type {
	return &schema.Type{Kind: k, Enum: values}
}

// bigEnum is a string enumeration of 10,000 values, v0 to v9999.
var bigEnum = func() *schema.Type {
	vs := make([]any, 10000)
	for i := range vs {
		vs[i] = "v" + strconv.Itoa(i)
	}
	return enumOf(schema.String, vs...)
}()

// optCtx has optional fields of every shape the rules name, and enumerations.
var optCtx = schema.ObjectOf(
	field("paid_at", opt(tTime)),
	field("amount", tFloat),
	field("count", opt(tInt)),
	field("note", opt(tString)),
	field("flag", opt(tBool)),
	field("t", tTime),
	field("n", tInt),
	field("s", tString),
	field("a", tAny),
	field("customer", schema.ObjectOf(field("since", opt(tTime)), field("name", tString))),
	field("address", opt(schema.ObjectOf(field("city", tString), field("zip", opt(tString))))),
	field("tags", opt(schema.ListOf(tString))),
	field("scores", schema.ListOf(opt(tInt))),
	field("plain", schema.ListOf(tInt)),
	field("tier", enumOf(schema.String, "bronze", "silver", "gold")),
	field("level", enumOf(schema.Int, 1, 2, 3)),
	field("tiers", schema.ListOf(enumOf(schema.String, "bronze", "silver", "gold"))),
	field("big", bigEnum),
	field("otier", opt(enumOf(schema.String, "bronze", "silver", "gold"))),
)

var optPay = schema.ObjectOf(field("at", opt(tTime)), field("method", tString))

var optEnv = guards.Env{Context: optCtx, Event: optPay}

// optAccepted are guards the checks accept: each use of an optional value is safe.
var optAccepted = []string{
	`ctx.paid_at != nil && now - ctx.paid_at > duration("1h")`, // the spec's example
	`ctx.paid_at == nil || ctx.paid_at < now`,
	`(ctx.paid_at != nil ? ctx.paid_at : now) <= now`,
	`(ctx.paid_at == nil ? now : ctx.paid_at) <= now`,
	`(ctx.paid_at ?? now) <= now`,
	`ctx.paid_at == nil`,
	`nil != ctx.paid_at`,
	`ctx.paid_at == now`,
	`ctx.paid_at != ctx.t`,
	`ctx.count == 3`,
	`ctx.note != nil && ctx.note in ["", "a"]`,
	`(ctx.count ?? -1) in ctx.plain`,
	`nil != ctx.paid_at && ctx.paid_at < now`,
	`!(ctx.paid_at == nil) && ctx.paid_at < now`,
	`not (ctx.paid_at == nil || ctx.count == nil) and ctx.paid_at < now and ctx.count > 1`,
	`ctx.paid_at != nil && ctx.count != nil && ctx.paid_at < now && ctx.count > 0`,
	`(ctx.paid_at != nil && ctx.count != nil) && ctx.count + 1 > 2`,
	`ctx.customer.since != nil && ctx.customer.since < now`,
	`ctx.customer.name == "x"`,
	`ctx.address != nil && ctx.address.city == "Paris"`,
	`ctx.address != nil && ctx.address.zip != nil && len(ctx.address.zip) == 5`,
	`ctx.address?.city == "Paris"`,
	`(ctx.address?.city ?? "") startsWith "P"`,
	`ctx.address?.city != nil && ctx.address.city == "x"`,
	`ctx.address?.zip != nil && len(ctx.address.zip) == 5 && len(ctx.address?.zip) == 5`,
	`ctx.tags != nil && len(ctx.tags) > 0`,
	`ctx.tags == nil || "x" in ctx.tags`,
	`all(ctx.scores, # != nil && # > 0)`,
	`all(ctx.scores, (# ?? 0) >= 0)`,
	`ctx.scores[0] != nil && ctx.scores[0] > 1`,
	`(ctx.scores[0] ?? 0) > 1`,
	`event.at != nil && event.at < now`,
	`let p = ctx.paid_at ?? now; p <= now`,
	`ctx.note != nil && upper(ctx.note) == "X"`,
	`ctx.a == nil || ctx.a != nil`,
	`ctx.tier == "gold"`,
	`"silver" != ctx.tier`,
	`ctx.tier in ["gold", "silver"]`,
	`ctx.level == 2 || ctx.level == 3.0`,
	`"bronze" in ctx.tiers`,
	`ctx.big == "v9999"`,
	`ctx.otier == "gold"`,
	`ctx.otier == nil`,
	`ctx.flag == true`,
	`ctx.flag != nil && ctx.flag`,
	`ctx.flag ?? false`,
	`ctx.tier == ctx.s`,
}

func TestOptionalAccepted(t *testing.T) {
	t.Parallel()
	for _, src := range optAccepted {
		if _, err := guards.CompileGuard(src, optEnv); err != nil {
			t.Errorf("CompileGuard(%q): %v", src, err)
		}
	}
}

func TestOptionalRefused(t *testing.T) {
	t.Parallel()
	const paidAt = "ctx.paid_at is optional: check ctx.paid_at != nil first, or use ctx.paid_at ?? <default>"
	tests := []struct {
		src string
		msg string // a part of the message
		col int    // of the offending use
	}{
		{`now - ctx.paid_at > duration("1h")`, paidAt, 6},
		{`ctx.paid_at < now`, paidAt, 0},
		{`ctx.paid_at != nil || ctx.paid_at < now`, paidAt, 22},
		{`ctx.paid_at == nil && ctx.paid_at < now`, paidAt, 22},
		{`ctx.count != nil || ctx.paid_at < now`, paidAt, 20},
		{`(ctx.paid_at != nil ? now : ctx.paid_at) <= now`, paidAt, 28},
		{`(ctx.count > 0 ? ctx.paid_at : now) <= now`, "ctx.count is optional", 1},
		{`(true ? ctx.paid_at : now) <= now`, paidAt, 8},
		{`string(ctx.paid_at) != ""`, paidAt, 7},
		{`len(ctx.tags) > 0`, "ctx.tags is optional", 4},
		{`"x" in ctx.tags`, "ctx.tags is optional", 7},
		{`ctx.note in ["", "a"]`, "ctx.note is optional", 0}, // expr would find nil as ""
		{`ctx.count in ctx.plain`, "ctx.count is optional", 0},
		{`ctx.customer.since < now`, "ctx.customer.since is optional", 0},
		{`ctx.address.city == "Paris"`, "ctx.address is optional", 0},
		{`ctx.address != nil && len(ctx.address.zip) == 5`, "ctx.address.zip is optional", 26},
		{`(ctx.address?.city ?? ctx.note) == "x" && len(ctx.address?.city) > 0`, "ctx.address?.city may be nil", 46},
		{`ctx.scores[0] > 1`, "ctx.scores[0] is optional", 0},
		{`ctx.scores[0] != nil && ctx.scores[1] > 1`, "ctx.scores[1] is optional", 24},
		{`all(ctx.scores, # > 0)`, "# is optional", 16},
		{`ctx.scores[0] != nil && all(ctx.plain, ctx.scores[0] > #)`, "", -1}, // fact outside a predicate holds inside for non-# paths
		{`all(ctx.scores, # != nil) && all(ctx.scores, # > 0)`, "# is optional", 45},
		{`event.at < now`, "event.at is optional", 0},
		{`let p = ctx.paid_at; p != nil`, paidAt, 8},
		{`ctx.flag`, "ctx.flag is optional", 0},
		{`ctx.flag || true`, "ctx.flag is optional", 0},
		{`ctx.count > 0 && ctx.paid_at < now`, "ctx.count is optional", 0},
		{`-ctx.count < 0`, "ctx.count is optional", 1},
		{`nil`, "expected bool", 0}, // expr's checker says it first
		{`ctx.tier == "platinum"`, `"platinum" is not a value of ctx.tier, which is one of "bronze", "silver", "gold"`, 12},
		{`"platinum" != ctx.tier`, `"platinum" is not a value of ctx.tier`, 0},
		{`ctx.tier in ["gold", "platinum"]`, `"platinum" is not a value of ctx.tier`, 21},
		{`ctx.level == 4`, `4 is not a value of ctx.level, which is one of 1, 2, 3`, 13},
		{`ctx.level != -1`, `-1 is not a value of ctx.level`, 13},
		{`ctx.level == 2.5`, `2.5 is not a value of ctx.level`, 13},
		{`"platinum" in ctx.tiers`, `"platinum" is not a value of ctx.tiers`, 0},
		{`ctx.otier == "platinum"`, `"platinum" is not a value of ctx.otier`, 13},
		{`ctx.big == "w1"`, `"w1" is not a value of ctx.big, which is one of "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", ... (9990 more)`, 11},
	}
	for _, tt := range tests {
		_, err := guards.CompileGuard(tt.src, optEnv)
		if tt.col < 0 {
			if err != nil {
				t.Errorf("CompileGuard(%q): %v", tt.src, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("CompileGuard(%q) compiled, want an error with %q", tt.src, tt.msg)
			continue
		}
		msg, line, col := compileErr(t, err)
		if !strings.Contains(msg, tt.msg) || line != 1 || col != tt.col {
			t.Errorf("CompileGuard(%q) = %q at %d:%d, want %q at 1:%d", tt.src, msg, line, col, tt.msg, tt.col)
		}
	}
}

// TestOptionalValues: what may be set into which field, in a `set` and a timer's `at`.
func TestOptionalValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want *schema.Type
		msg  string // "" to accept
	}{
		{`nil`, opt(tTime), ""},
		{`ctx.paid_at`, opt(tTime), ""},
		{`ctx.paid_at ?? nil`, opt(tTime), ""},
		{`ctx.count`, tAny, ""},
		{`now`, opt(tTime), ""},
		{`ctx.paid_at ?? now`, tTime, ""},
		{`ctx.paid_at != nil ? ctx.paid_at : now`, tTime, ""},
		{`[ctx.count, 1]`, schema.ListOf(opt(tInt)), ""},
		{`ctx.scores`, schema.ListOf(opt(tInt)), ""},
		{`map(ctx.scores, # ?? 0)`, schema.ListOf(tInt), ""},
		{`filter(ctx.scores, # != nil)`, schema.ListOf(tInt), ""},
		{`let c = ctx.customer; c.since ?? now`, tTime, ""},
		{`let c = ctx.customer; c.since`, tTime, "c.since is optional"},
		{`{"since": ctx.customer.since, "name": "x"}`, schema.ObjectOf(field("since", opt(tTime)), field("name", tString)), ""},
		{`ctx.customer`, schema.ObjectOf(field("since", opt(tTime)), field("name", tString)), ""},
		{`"gold"`, enumOf(schema.String, "bronze", "silver", "gold"), ""},
		{`ctx.n > 0 ? "gold" : "silver"`, enumOf(schema.String, "bronze", "silver", "gold"), ""},
		{`2`, enumOf(schema.Int, 1, 2, 3), ""},
		{`ctx.s`, enumOf(schema.String, "bronze", "silver", "gold"), ""}, // checked when set

		{`nil`, tTime, "nil can only be set into an optional field"},
		{`ctx.paid_at`, tTime, "ctx.paid_at is optional"},
		{`ctx.paid_at + duration("1h")`, tTime, "ctx.paid_at is optional"}, // the spec's example
		{`ctx.paid_at + duration("1h")`, opt(tTime), "ctx.paid_at is optional"},
		{`ctx.n > 0 ? ctx.paid_at : now`, tTime, "ctx.paid_at is optional"},
		{`ctx.paid_at ?? ctx.customer.since`, tTime, "ctx.customer.since is optional"},
		{`[ctx.count, 1]`, schema.ListOf(tInt), "ctx.count is optional"},
		{`ctx.scores`, schema.ListOf(tInt), "ctx.scores has optional elements"},
		{`{"since": ctx.customer.since, "name": "x"}`, schema.ObjectOf(field("since", tTime), field("name", tString)), "ctx.customer.since is optional"},
		{`ctx.customer`, schema.ObjectOf(field("since", tTime), field("name", tString)), "ctx.customer.since is optional"},
		{`"platinum"`, enumOf(schema.String, "bronze", "silver", "gold"), `"platinum" is not a value of the field, which is one of "bronze", "silver", "gold"`},
		{`ctx.n > 0 ? "gold" : "platinum"`, enumOf(schema.String, "bronze", "silver", "gold"), `"platinum" is not a value of the field`},
		{`ctx.s ?? "platinum"`, enumOf(schema.String, "bronze", "silver", "gold"), `"platinum" is not a value of the field`},
		{`["gold", "platinum"]`, schema.ListOf(enumOf(schema.String, "bronze", "silver", "gold")), `"platinum" is not a value of the field`},
		{`7`, enumOf(schema.Int, 1, 2, 3), `7 is not a value of the field, which is one of 1, 2, 3`},
	}
	for _, tt := range tests {
		_, err := guards.CompileValue(tt.src, optEnv, tt.want)
		switch {
		case tt.msg == "" && err != nil:
			t.Errorf("CompileValue(%q, %s): %v", tt.src, tt.want, err)
		case tt.msg != "" && err == nil:
			t.Errorf("CompileValue(%q, %s) compiled, want an error with %q", tt.src, tt.want, tt.msg)
		case tt.msg != "" && !strings.Contains(err.Error(), tt.msg):
			t.Errorf("CompileValue(%q, %s): %v, want an error with %q", tt.src, tt.want, err, tt.msg)
		}
	}
	// A timer's at has no guard: its uses must be checked where they are.
	noEvent := guards.Env{Context: optCtx, NoEvent: true}
	if _, err := guards.CompileTime(`ctx.paid_at + duration("1h")`, noEvent); err == nil || !strings.Contains(err.Error(), "ctx.paid_at is optional") {
		t.Errorf("CompileTime of an unchecked optional: %v", err)
	}
	if _, err := guards.CompileTime(`(ctx.paid_at ?? now) + duration("1h")`, noEvent); err != nil {
		t.Errorf("CompileTime with ??: %v", err)
	}
}

// TestGuardFacts: the facts a guard proves carry into its branch's `set` expressions through
// Env.NotNil, and only those.
func TestGuardFacts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		guard string
		facts guards.Facts
	}{
		{`ctx.paid_at != nil`, "ctx.paid_at"},
		{`ctx.paid_at != nil && ctx.amount > 0 && nil != event.at`, "ctx.paid_at\nevent.at"},
		{`!(ctx.paid_at == nil || ctx.count == nil)`, "ctx.count\nctx.paid_at"},
		{`ctx.paid_at != nil || ctx.count != nil`, ""},
		{`ctx.paid_at == nil`, ""},
		{`ctx.amount > 0`, ""},
		{`ctx.address != nil && ctx.address.zip != nil`, "ctx.address\nctx.address.zip"},
		{`let x = ctx.count ?? 0; ctx.paid_at != nil && x > 0`, ""},
		{`ctx.address?.zip != nil`, "ctx.address\nctx.address.zip"},
	}
	for _, tt := range tests {
		g, err := guards.CompileGuard(tt.guard, optEnv)
		if err != nil {
			t.Fatalf("CompileGuard(%q): %v", tt.guard, err)
		}
		if got := g.NotNil(); got != tt.facts {
			t.Errorf("CompileGuard(%q).NotNil() = %q, want %q", tt.guard, got, tt.facts)
		}
	}
	g, err := guards.CompileGuard(`ctx.paid_at != nil && ctx.address != nil`, optEnv)
	if err != nil {
		t.Fatal(err)
	}
	set := optEnv
	set.NotNil = g.NotNil()
	for _, src := range []string{`ctx.paid_at + duration("1h")`, `ctx.paid_at`} {
		if _, err := guards.CompileValue(src, set, tTime); err != nil {
			t.Errorf("set %q after the guard: %v", src, err)
		}
	}
	if _, err := guards.CompileValue(`ctx.address.city`, set, tString); err != nil {
		t.Errorf("set ctx.address.city after the guard: %v", err)
	}
	// The same source without the facts is still refused: the cache keys on them.
	if _, err := guards.CompileValue(`ctx.paid_at + duration("1h")`, optEnv, tTime); err == nil {
		t.Error("compiled without the guard's facts")
	}
	if _, err := guards.CompileValue(`ctx.count + 1`, set, tInt); err == nil {
		t.Error("ctx.count compiled, the guard proves nothing of it")
	}
}

// TestOptionalRuntime: the accepted forms evaluate without an error whether the optional values
// are nil or set.
func TestOptionalRuntime(t *testing.T) {
	t.Parallel()
	base := func() map[string]any {
		return map[string]any{
			"paid_at": nil, "amount": 1.0, "count": nil, "note": nil, "flag": nil, "t": t0, "n": 1, "s": "", "a": nil,
			"customer": map[string]any{"since": nil, "name": "x"},
			"address":  nil, "tags": nil, "scores": []any{nil, 2}, "plain": []any{1},
			"tier": "gold", "level": 1, "tiers": []any{"gold"}, "big": "v1", "otier": nil,
		}
	}
	set := base()
	set["paid_at"], set["count"], set["note"], set["flag"] = now.Add(-2*time.Hour), 3, "x", true
	set["customer"] = map[string]any{"since": t0, "name": "x"}
	set["address"] = map[string]any{"city": "Paris", "zip": "75001"}
	set["tags"], set["scores"], set["otier"] = []any{"x"}, []any{1, 2}, "gold"
	for _, ctx := range []map[string]any{base(), set} {
		s := guards.NewScope(guards.Vars{Ctx: ctx, Event: map[string]any{"at": nil, "method": "card"}, Now: now})
		for _, src := range optAccepted {
			p, err := guards.CompileGuard(src, optEnv)
			if err != nil {
				t.Fatalf("CompileGuard(%q): %v", src, err)
			}
			if _, err := p.Bool(s); err != nil {
				t.Errorf("paid_at=%v: %q: %v", ctx["paid_at"], src, err)
			}
		}
	}
	// Values: what the nil and the set forms give.
	for _, tt := range []struct {
		src     string
		want    *schema.Type
		ctx     map[string]any
		expect  any
		isGuard bool
	}{
		{`ctx.paid_at != nil && now - ctx.paid_at > duration("1h")`, nil, base(), false, true},
		{`ctx.paid_at != nil && now - ctx.paid_at > duration("1h")`, nil, set, true, true},
		{`ctx.paid_at == now`, nil, base(), false, true},
		{`ctx.note != nil && ctx.note in ["", "x"]`, nil, base(), false, true},
		{`ctx.note != nil && ctx.note in ["", "x"]`, nil, set, true, true},
		{`ctx.count == 0`, nil, base(), false, true},
		{`ctx.count != 0`, nil, base(), true, true},
		{`ctx.paid_at ?? now`, tTime, base(), now, false},
		{`ctx.paid_at`, opt(tTime), base(), nil, false},
		{`nil`, opt(tTime), base(), nil, false},
		{`ctx.paid_at`, opt(tTime), set, now.Add(-2 * time.Hour), false},
	} {
		s := guards.NewScope(guards.Vars{Ctx: tt.ctx, Event: map[string]any{}, Now: now})
		var got any
		var err error
		if tt.isGuard {
			var p *guards.Program
			if p, err = guards.CompileGuard(tt.src, optEnv); err == nil {
				got, err = p.Bool(s)
			}
		} else {
			var p *guards.Program
			if p, err = guards.CompileValue(tt.src, optEnv, tt.want); err == nil {
				got, err = p.Value(s)
			}
		}
		if err != nil || got != tt.expect {
			t.Errorf("%q with paid_at %v = %v, %v; want %v", tt.src, tt.ctx["paid_at"], got, err, tt.expect)
		}
	}
}

// TestOptionalItem: a child's element, of a list of optional elements, is an optional value.
func TestOptionalItem(t *testing.T) {
	t.Parallel()
	e := guards.Env{Context: optCtx, NoEvent: true, Item: opt(tInt)}
	if _, err := guards.CompileValue(`item + 1`, e, tInt); err == nil || !strings.Contains(err.Error(), "item is optional") {
		t.Errorf("item + 1: %v", err)
	}
	for _, src := range []string{`(item ?? 0) + 1`, `item != nil ? item + 1 : 0`, `let x = item ?? 0; x + 1`} {
		if _, err := guards.CompileValue(src, e, tInt); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}
