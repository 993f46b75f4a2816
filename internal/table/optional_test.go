package table_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/table"
)

// tierV1 and tierV2: the tier enumeration loses platinum, paid_at becomes optional, and a new
// optional field appears.
const tierV1 = `name: member
initial: active
context:
  tier: {type: string, enum: [basic, gold, platinum]}
  paid_at: time
states:
  active: {on: {pay: {to: active, set: {paid_at: now}}}}
`

const tierV2 = `name: member
initial: active
context:
  tier: {type: string, enum: [basic, gold]}
  paid_at: time?
  left_at: time?
events:
  upgrade:
    to: {type: string, enum: [basic, gold]}
states:
  active:
    on:
      pay: {to: active, set: {paid_at: now}}
      upgrade: {to: active, set: {tier: event.to}}
      clear: {to: active, set: {paid_at: nil}}
`

func runTier(t *testing.T, tableYAML string) (string, table.Summary, string) {
	t.Helper()
	dir := badWrite(t, map[string]string{
		"member.yaml":             tierV2,
		"testdata/member.v1.yaml": tierV1,
		"member.test.yaml":        tableYAML,
	})
	s, err := table.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sum := s.Run(&out, table.Options{})
	return out.String(), sum, filepath.Join(dir, "member.test.yaml")
}

// TestOptionalAndEnumCases: event and migration cases of optional fields and enumerations pass
// where they should, and fail with what was expected and got where they should not.
func TestOptionalAndEnumCases(t *testing.T) {
	t.Parallel()
	const from = "    from: testdata/member.v1.yaml\n"
	tests := []struct {
		name, body string
		want       string // "" for a pass; else a line of the failure
	}{
		{"a new optional field is null", "cases:\n  - name: c\n    when: {event: pay}\n    then: {ctx: {left_at: null, paid_at: 2000-01-01T00:00:00Z}}\n", ""},
		{"null is compared", "cases:\n  - name: c\n    when: {event: pay}\n    then: {ctx: {paid_at: null}}\n",
			"ctx.paid_at: expected null, got \"2000-01-01T00:00:00Z\""},
		{"set to nil clears", "cases:\n  - name: c\n    given: {ctx: {paid_at: 2026-01-01T00:00:00Z}}\n    when: {event: clear}\n    then: {ctx: {paid_at: null}}\n", ""},
		{"a payload outside the enum", "cases:\n  - name: c\n    when: {event: upgrade, payload: {to: platinum}}\n    then: {error: invalid_payload}\n", ""},
		{"the first value is the zero", "cases:\n  - name: c\n    when: {event: upgrade, payload: {to: gold}}\n    then: {ctx: {tier: basic}}\n",
			`ctx.tier: expected "basic", got "gold"`},
		{"an expected value outside the enum", "cases:\n  - name: c\n    when: {event: pay}\n    then: {ctx: {tier: silver}}\n",
			`ctx.tier: the expected value does not fit: expected one of ["basic", "gold"], got "silver"`},
		{"a time becoming optional keeps its value", "migrations:\n  - name: c\n" + from +
			"    given: {ctx: {tier: gold, paid_at: 2026-01-01T00:00:00Z}}\n    then: {state: active, ctx: {paid_at: 2026-01-01T00:00:00Z, left_at: null}}\n", ""},
		{"a removed enum value strands", "migrations:\n  - name: c\n" + from +
			"    given: {ctx: {tier: platinum}}\n    then: {stranded: true, reason: context_invalid}\n", ""},
		{"a removed enum value does not move", "migrations:\n  - name: c\n" + from +
			"    given: {ctx: {tier: platinum}}\n    then: {state: active}\n",
			`stranded: expected false, got true (context_invalid: ctx.tier: expected one of ["basic", "gold"], got "platinum"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, sum, _ := runTier(t, tt.body)
			if tt.want == "" {
				if sum.Passed != 1 || sum.Failed != 0 {
					t.Fatalf("summary %+v, want 1 passed\n%s", sum, out)
				}
				return
			}
			if sum.Failed != 1 || !strings.Contains(out, tt.want) {
				t.Errorf("summary %+v; output lacks\n%s\n--- output:\n%s", sum, tt.want, out)
			}
		})
	}
}
