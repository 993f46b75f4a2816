package machine_test

import (
	"testing"
	"time"
)

// retentionDef is a valid definition with the retention section given.
func retentionDef(retention string) string {
	return "name: t\ninitial: a\nstates:\n  a:\n    on:\n      go: b\n  b: {final: true}\n" + retention
}

// TestRetention: `retention: {final_after: DURATION}` is read with the duration syntax of timers;
// anything that could not mean "keep final instances this long" is an error at its line:col.
func TestRetention(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		src  string
		want time.Duration // when valid
		diag []string
	}{
		{"days", "retention: {final_after: 90d}\n", 90 * 24 * time.Hour, nil},
		{"go syntax", "retention:\n  final_after: 36h30m\n", 36*time.Hour + 30*time.Minute, nil},
		{"none", "", 0, nil},
		{"zero", "retention: {final_after: 0s}\n", 0,
			[]string{`t.yaml:8:26: error: retention final_after: "0s" must be positive: it is how long a final instance is kept`}},
		{"zero without unit", "retention: {final_after: 0}\n", 0,
			[]string{`t.yaml:8:26: error: retention final_after: "0" must be positive: it is how long a final instance is kept`}},
		{"negative", "retention:\n  final_after: -1h\n", 0,
			[]string{`t.yaml:9:16: error: retention final_after: "-1h" must be positive: it is how long a final instance is kept`}},
		{"not a duration", "retention: {final_after: 3 months}\n", 0,
			[]string{`t.yaml:8:26: error: retention final_after: "3 months" is not a duration (write e.g. 90d, 720h or 30m)`}},
		{"a number", "retention: {final_after: 90}\n", 0,
			[]string{`t.yaml:8:26: error: retention final_after: "90" is not a duration (write e.g. 90d, 720h or 30m)`}},
		{"a list", "retention: {final_after: [90d]}\n", 0,
			[]string{`t.yaml:8:26: error: retention final_after must be a single value, not a list`}},
		{"empty", "retention: {final_after: }\n", 0,
			[]string{`t.yaml:8:26: error: retention final_after must be a single value, not nothing`}},
		{"missing final_after", "retention: {}\n", 0,
			[]string{"t.yaml:8:12: error: retention needs `final_after`: how long an instance is kept once final (a duration, like 90d)"}},
		{"unknown key", "retention: {final_after: 90d, running_after: 1d}\n", 0,
			[]string{`t.yaml:8:31: error: unknown key "running_after" in retention (expected final_after)`}},
		{"not a mapping", "retention: 90d\n", 0,
			[]string{`t.yaml:8:12: error: retention must be a mapping, not "90d"`}},
		{"too long", "retention: {final_after: 100001d}\n", 0,
			[]string{`t.yaml:8:26: error: retention final_after: "100001d" is not a duration (write e.g. 90d, 720h or 30m)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			def, got := diagText("t.yaml", retentionDef(tt.src))
			diffLines(t, got, tt.diag)
			if tt.diag != nil {
				return
			}
			switch {
			case def == nil:
				t.Fatal("no definition")
			case tt.want == 0 && def.Retention != nil:
				t.Errorf("retention = %+v, want none", def.Retention)
			case tt.want != 0 && (def.Retention == nil || def.Retention.FinalAfter != tt.want):
				t.Errorf("retention = %+v, want final_after %v", def.Retention, tt.want)
			}
		})
	}
}
