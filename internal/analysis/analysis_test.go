package analysis

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

var (
	tierEnum = &schema.Type{Kind: schema.String, Enum: []any{"gold", "silver", "bronze"}}
	testCtx  = schema.ObjectOf(
		&schema.Field{Name: "amount", Type: schema.Scalar(schema.Float)},
		&schema.Field{Name: "n", Type: schema.Scalar(schema.Int)},
		&schema.Field{Name: "tier", Type: tierEnum},
		&schema.Field{Name: "level", Type: &schema.Type{Kind: schema.Int, Enum: []any{1, 2, 3}}},
		&schema.Field{Name: "paid_at", Type: &schema.Type{Kind: schema.Time, Optional: true}},
		&schema.Field{Name: "note", Type: &schema.Type{Kind: schema.String, Optional: true}},
		&schema.Field{Name: "customer", Type: &schema.Type{Kind: schema.Object, Optional: true, Fields: []*schema.Field{
			{Name: "tier", Type: schema.Scalar(schema.String)}}}},
	)
	testEnv = Env{Context: testCtx, States: []string{"open", "held"}}
)

// handler makes a handler of guards ("" for an unguarded branch), the guard of branch i on line i+1.
func handler(gs ...string) Handler {
	h := Handler{Pos: source.Pos{Line: 100, Col: 1}}
	for i, g := range gs {
		h.Branches = append(h.Branches, Branch{Guard: g, Pos: source.Pos{Line: i + 1, Col: 5}})
	}
	return h
}

func summary(fs []Finding) string {
	var out []string
	for _, f := range fs {
		s := fmt.Sprintf("%d %s", f.Branch+1, f.Kind)
		if f.Kind == NotExhaustive {
			s += fmt.Sprint(" ", f.Witness)
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

func TestAnalyze(t *testing.T) {
	for _, tt := range []struct {
		name   string
		guards []string
		want   string
	}{
		{"the spec's unsatisfiable", []string{"ctx.amount > 5 && ctx.amount < 1", ""}, "1 unsatisfiable"},
		{"the spec's shadowed", []string{"ctx.amount > 0", "ctx.amount > 100", ""}, "2 shadowed"},
		{"the spec's not exhaustive: the enum's other value", []string{`ctx.tier == "gold"`, `ctx.tier == "bronze"`},
			`0 not_exhaustive [ctx.tier == "silver"]`},
		{"an enum covered", []string{`ctx.tier == "gold"`, `ctx.tier in ["bronze", "silver"]`}, ""},
		{"a literal outside the enum is never equal", []string{`ctx.tier == "platinum"`, ""}, "1 unsatisfiable"},
		{"an int enum: no value between 1 and 2, nor above 3", []string{"ctx.level > 1 && ctx.level < 2 || ctx.level > 3", ""}, "1 unsatisfiable"},
		{"an int enum covered by ranges", []string{"ctx.level <= 1", "ctx.level >= 2"}, ""},
		{"an int enum's witness is one of its values", []string{"ctx.level < 2", "ctx.level > 2"}, "0 not_exhaustive [ctx.level == 2]"},
		{"an optional time: nil or not", []string{"ctx.paid_at == nil", "ctx.paid_at != nil"}, ""},
		{"an optional time's witness", []string{"ctx.paid_at == nil"}, "0 not_exhaustive [ctx.paid_at != nil]"},
		{"an optional string may be nil", []string{`ctx.note == "a"`, `ctx.note != "a"`}, ""},
		{"the nil witness of an optional string", []string{`ctx.note != nil`}, "0 not_exhaustive [ctx.note == nil]"},
		{"a field of an optional object is unknown", []string{`ctx.customer.tier == "a" && ctx.customer.tier == "b"`, ""}, ""},
		{"state is one of the handler's states", []string{`state == "open"`, `state == "held"`, `state == "done"`},
			"3 unsatisfiable"},
		{"a field that is not optional is never nil", []string{`ctx.n == nil`, ""}, "1 unsatisfiable"},
		{"unknown parts hide nothing known", []string{"ctx.n > 1 && len(ctx.tier) > 9 && ctx.n < 1", ""}, "1 unsatisfiable"},
		{"an unknown branch keeps the handler exhaustive", []string{"ctx.n > 1", "ctx.amount > float(ctx.n)"}, ""},
		{"the same unknown guard twice is not shadowed", []string{"ctx.n * 2 > 3", "ctx.n * 2 > 3", ""}, ""},
		{"a guard that does not parse is unknown", []string{"ctx.n >", "ctx.n > 1 && ctx.n < 0"}, "2 unsatisfiable"},
		{"beyond 2^53 ints and floats round: unknown", []string{"ctx.n > 9007199254740993.0 && ctx.n < 9007199254740995.0", ""}, ""},
		{"int boundaries", []string{"ctx.n >= 9223372036854775807 && ctx.n > 9223372036854775806", "ctx.n > 9223372036854775807", ""}, "2 unsatisfiable"},
		{"a comparison of two fields cannot fail: the witness holds whatever it is", []string{"ctx.amount >= ctx.n && ctx.n > 1"},
			"0 not_exhaustive [ctx.n == 1]"},
		{"a call may fail before the rest decides: no witness", []string{"len(ctx.tier) > 2 && ctx.n > 1"}, ""},
		{"a call after the deciding part is never evaluated", []string{"ctx.n > 1 && len(ctx.tier) > 2"}, "0 not_exhaustive [ctx.n == 1]"},
		{"shadowed by two branches together", []string{"ctx.n < 0", "ctx.n > 0", "ctx.n != 0", ""}, "3 shadowed"},
		{"a restricted branch shadows nothing", []string{"ctx.n < 0", "ctx.n < 0"}, "0 not_exhaustive [ctx.n == 0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := handler(tt.guards...)
			if tt.name == "a restricted branch shadows nothing" {
				h.Branches[0].Restricted = true
			}
			if got := summary(Analyze(h, testEnv)); got != tt.want {
				t.Errorf("%q: got %q, want %q", tt.guards, got, tt.want)
			}
		})
	}
}

// TestFindingText: each finding at its place, with a one-line message naming what it proved.
func TestFindingText(t *testing.T) {
	fs := Analyze(handler("ctx.amount > 5 && ctx.amount < 1", "ctx.amount > 0", "ctx.amount > 100", `ctx.tier == "gold"`), testEnv)
	want := []string{
		"1:5 error unsatisfiable: the guard is unsatisfiable: no value of ctx.amount makes it true",
		"3:5 warning shadowed: branch 3 is shadowed: whenever its guard holds, the guard of branch 2 holds too, so it is never taken",
		`100:1 warning not_exhaustive: not exhaustive: every guard is false when ctx.amount == 0 and ctx.tier == "silver", and no branch is taken`,
	}
	if len(fs) != len(want) {
		t.Fatalf("findings %v", fs)
	}
	for i, f := range fs {
		if got := fmt.Sprintf("%d:%d %s %s: %s", f.Pos.Line, f.Pos.Col, f.Severity, f.Kind, f.Message); got != want[i] {
			t.Errorf("finding %d:\n got %s\nwant %s", i, got, want[i])
		}
	}
}
