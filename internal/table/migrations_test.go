package table_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/table"
)

// parcelV1 is the older version of parcel, kept in testdata/ as a real repo would keep it.
const parcelV1 = `name: parcel
initial: packing
context:
  weight: int
  note: string
  legacy: string
states:
  packing: {on: {send: in_transit}}
  in_transit: {on: {arrive: delivered, lose: held}}
  held: {on: {find: in_transit}}
  delivered: {final: true}
`

// parcelV2 renames nothing, splits in_transit by weight, drops held and legacy, makes weight a float,
// and adds fields: one with a default, two computed.
const parcelV2 = `name: parcel
initial: packing
context:
  weight: float
  note: string
  size: {type: string, default: small}
  heavy: bool
  moved_at: time
states:
  packing: {on: {send: on_road, fly: in_air}}
  on_road: {on: {arrive: delivered}}
  in_air: {on: {arrive: delivered}}
  delivered: {final: true}
migrate:
  states:
    in_transit:
      - to: in_air
        guard: ctx.weight < 5
      - to: on_road
        guard: ctx.weight < 100
  context:
    heavy: ctx.weight >= 50
    moved_at: now
`

// parcelCases are passing migration cases of parcelV2 from parcelV1, one of each outcome.
const parcelCases = `migrations:
  - name: a state kept by name keeps the fields that still fit
    from: testdata/parcel.v1.yaml
    given: {state: packing, ctx: {weight: 3, note: fragile, legacy: x}}
    then: {state: packing, ctx: {weight: 3.0, note: fragile, size: small, heavy: false, moved_at: 2000-01-01T00:00:00Z}}
  - name: a light parcel in transit flies
    from: testdata/parcel.v1.yaml
    given: {state: in_transit, ctx: {weight: 2}, now: 2026-05-01T10:00:00Z}
    then: {state: in_air, ctx: {moved_at: 2026-05-01T10:00:00Z}}
  - name: a heavier parcel in transit goes by road
    from: testdata/parcel.v1.yaml
    given: {state: in_transit, ctx: {weight: 60}}
    then: {state: on_road, ctx: {heavy: true}}
  - name: a parcel too heavy for either branch is stranded
    from: testdata/parcel.v1.yaml
    given: {state: in_transit, ctx: {weight: 500}}
    then: {stranded: true, reason: rule_failed}
  - name: a held parcel is stranded, its state gone
    from: testdata/parcel.v1.yaml
    given: {state: held}
    then: {stranded: true, reason: state_unmapped}
  - name: stranded without a reason
    from: testdata/parcel.v1.yaml
    given: {state: held}
    then: {stranded: true}
  - name: the initial state of the older version by default, moving
    from: testdata/parcel.v1.yaml
    then: {state: packing, stranded: false}
`

// parcelEvent is an event case of parcelV2, taking one of its four transitions.
const parcelEvent = `cases:
  - name: sending a parcel puts it on the road
    when: {event: send}
    then: {state: on_road}
`

// runParcel writes parcelV2, parcelV1 in testdata/ and the table, and runs it with o.
func runParcel(t *testing.T, tableYAML string, o table.Options) (string, table.Summary, string) {
	t.Helper()
	dir := badWrite(t, map[string]string{
		"parcel.yaml":             parcelV2,
		"testdata/parcel.v1.yaml": parcelV1,
		"parcel.test.yaml":        tableYAML,
	})
	s, err := table.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sum := s.Run(&out, o)
	return out.String(), sum, filepath.Join(dir, "parcel.test.yaml")
}

func TestMigrationsPass(t *testing.T) {
	t.Parallel()
	out, sum, _ := runParcel(t, parcelCases, table.Options{})
	if sum.Passed != 7 || sum.Failed != 0 {
		t.Errorf("summary %+v, want 7 passed, 0 failed\n%s", sum, out)
	}
	if last := lastLine(out); last != "7 passed, 0 failed" {
		t.Errorf("last line %q", last)
	}
}

// TestMigrationsFail: each way a migration case can fail is reported as event cases are: FAIL with
// the file, line and case, then what was expected and got.
func TestMigrationsFail(t *testing.T) {
	t.Parallel()
	const from = "    from: testdata/parcel.v1.yaml\n"
	tests := []struct {
		name, given, then string
		want              string
	}{
		{"another state", "{state: in_transit, ctx: {weight: 2}}", "{state: on_road}", "state: expected on_road, got in_air"},
		{"a state the new version lacks", "{state: in_transit, ctx: {weight: 2}}", "{state: held}",
			`then.state: "held" is not a state of parcel (got in_air)`},
		{"another context", "{state: in_transit, ctx: {weight: 60}}", "{ctx: {heavy: false, size: large}}",
			"ctx.heavy: expected false, got true"},
		{"a field the new version lacks", "{state: packing}", "{ctx: {legacy: x}}", "ctx.legacy: the context has no such field"},
		{"expected to move, stranded", "{state: held}", "{state: on_road}",
			`stranded: expected false, got true (state_unmapped: state "held" is gone`},
		{"expected stranded, moved", "{state: in_transit, ctx: {weight: 2}}", "{stranded: true}",
			"stranded: expected true, got false (in_transit moved to in_air)"},
		{"another reason", "{state: in_transit, ctx: {weight: 500}}", "{reason: state_unmapped}",
			`reason: expected state_unmapped, got rule_failed: no branch of the rule for state "in_transit" holds`},
		{"a state the older version lacks", "{state: on_road}", "{state: on_road}",
			`given.state: "on_road" is not a state of parcel in testdata/parcel.v1.yaml`},
		{"a final state does not migrate", "{state: delivered}", "{state: delivered}",
			`given.state: "delivered" is final in testdata/parcel.v1.yaml: only running instances migrate`},
		{"a context the older version refuses", "{ctx: {weight: 2.5}}", "{state: packing}",
			"given.ctx.weight: expected int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, sum, file := runParcel(t, "migrations:\n  - name: "+tt.name+"\n"+from+
				"    given: "+tt.given+"\n    then: "+tt.then+"\n", table.Options{})
			if sum.Passed != 0 || sum.Failed != 1 {
				t.Errorf("summary %+v, want 0 passed, 1 failed", sum)
			}
			want := "FAIL " + file + ":2: " + tt.name + "\n    migrating from testdata/parcel.v1.yaml:\n    " + tt.want
			if !strings.Contains(out, want) {
				t.Errorf("output lacks\n%s\n--- output:\n%s", want, out)
			}
			if last := lastLine(out); last != "0 passed, 1 failed" {
				t.Errorf("last line %q", last)
			}
		})
	}
}

// TestMigrationsRunFilter: -run picks migration cases by name, as it picks event cases.
func TestMigrationsRunFilter(t *testing.T) {
	t.Parallel()
	out, sum, _ := runParcel(t, parcelEvent+parcelCases, table.Options{Run: regexp.MustCompile("stranded")})
	if sum.Passed != 3 || sum.Failed != 0 {
		t.Errorf("summary %+v, want the 3 stranded cases alone\n%s", sum, out)
	}
	out, sum, _ = runParcel(t, parcelEvent+parcelCases, table.Options{Run: regexp.MustCompile("^sending")})
	if sum.Passed != 1 || sum.Failed != 0 {
		t.Errorf("summary %+v, want the event case alone\n%s", sum, out)
	}
}

// TestMigrationsCoverage: a migration takes no transition, so it counts for none in --coverage.
func TestMigrationsCoverage(t *testing.T) {
	t.Parallel()
	out, sum, _ := runParcel(t, parcelEvent+parcelCases, table.Options{Coverage: true})
	if sum.Passed != 8 || sum.Failed != 0 {
		t.Errorf("summary %+v, want 8 passed\n%s", sum, out)
	}
	// The event case takes packing --send--> on_road; the migrations into in_air and on_road take
	// nothing.
	if !strings.Contains(out, "coverage: parcel: 1 of 4 transitions taken, ") {
		t.Errorf("output lacks the coverage of the event case alone:\n%s", out)
	}
	for _, untaken := range []string{"packing --fly[1]--> in_air", "on_road --arrive[1]--> delivered", "in_air --arrive[1]--> delivered"} {
		if !strings.Contains(out, "not taken: "+untaken) {
			t.Errorf("output lacks %q as not taken:\n%s", untaken, out)
		}
	}
	// Migrations alone: no transition ran against the definition at all.
	out, _, _ = runParcel(t, parcelCases, table.Options{Coverage: true})
	if strings.Contains(out, "coverage:") {
		t.Errorf("migration cases alone reported coverage:\n%s", out)
	}
}

// TestMigrationsVerbose: -v shows where each instance went.
func TestMigrationsVerbose(t *testing.T) {
	t.Parallel()
	out, _, file := runParcel(t, parcelCases, table.Options{Verbose: true})
	for _, want := range []string{
		"ok   " + file + ":6: a light parcel in transit flies\n      2026-05-01T10:00:00Z migrate from testdata/parcel.v1.yaml: in_transit -> in_air\n",
		"migrate from testdata/parcel.v1.yaml: held stranded: state_unmapped: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestMigrationsOnlyTable: a table may hold migrations and no cases.
func TestMigrationsOnlyTable(t *testing.T) {
	t.Parallel()
	s, err := table.Load(badWrite(t, map[string]string{
		"parcel.yaml": parcelV2, "testdata/parcel.v1.yaml": parcelV1, "parcel.test.yaml": parcelCases,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Problems) > 0 || len(s.Tables) != 1 {
		t.Fatalf("problems %v, %d tables", s.Problems, len(s.Tables))
	}
	cases := s.Tables[0].Cases
	if len(cases) != 7 || cases[0].Migration == nil || cases[0].Migration.Old == nil || cases[0].Migration.Old.Initial != "packing" {
		t.Fatalf("cases not loaded with their older version: %+v", cases)
	}
	// A case run without Load's older version says so rather than panicking.
	c := *cases[0]
	m := *c.Migration
	m.Old, c.Migration = nil, &m
	if res := table.Run(s.Tables[0].Def, &c, nil); res.Passed() || !strings.Contains(res.Failures[0], "not loaded") {
		t.Errorf("failures %q", res.Failures)
	}
}

// TestBadMigrations: bad `migrations:` entries are refused with their line:col, and the table counts
// as one failure; the good table beside it still runs.
func TestBadMigrations(t *testing.T) {
	t.Parallel()
	const head = "migrations:\n  - name: m\n" // the case starts on line 2; its keys are at column 5
	tests := []struct {
		name  string
		table string
		files map[string]string // more files
		want  [][]string        // for each, one line of the output holding all
	}{
		{"an unknown key in a case", head + "    from: testdata/parcel.v1.yaml\n    when: {event: send}\n    then: {}\n",
			nil, [][]string{{":4:5: error: ", `unknown key "when" in a migration case`}}},
		{"an unknown key in then", head + "    from: testdata/parcel.v1.yaml\n    then: {error: guard_rejected}\n",
			nil, [][]string{{":4:12: error: ", `unknown key "error" in then`}}},
		{"an unknown key in given", head + "    from: testdata/parcel.v1.yaml\n    given: {version: 1}\n    then: {}\n",
			nil, [][]string{{":4:13: error: ", `unknown key "version" in given`}}},
		{"no from", head + "    then: {}\n", nil, [][]string{{":2:5: error: ", `migration case "m" needs ` + "`from`"}}},
		{"no then", head + "    from: testdata/parcel.v1.yaml\n", nil, [][]string{{":2:5: error: ", `migration case "m" needs ` + "`then`"}}},
		{"no name", "migrations:\n  - from: testdata/parcel.v1.yaml\n    then: {}\n", nil,
			[][]string{{":2:5: error: ", "a migration case needs a `name`"}}},
		{"from a file that does not exist", head + "    from: testdata/parcel.v0.yaml\n    then: {}\n",
			nil, [][]string{{":3:11: error: from: ", filepath.Join("testdata", "parcel.v0.yaml") + ": no such file or folder"}}},
		{"from a folder", head + "    from: testdata\n    then: {}\n",
			nil, [][]string{{":3:11: error: from: ", "not a regular file"}}},
		{"from an invalid definition", head + "    from: testdata/broken.yaml\n    then: {}\n" +
			"  - name: n\n    from: testdata/broken.yaml\n    then: {}\n",
			map[string]string{"testdata/broken.yaml": strings.Replace(parcelV1, "send: in_transit", "send: nowhere", 1)},
			[][]string{
				{filepath.Join("testdata", "broken.yaml") + ":8:", `"nowhere"`},
				{":3:11: error: from: testdata/broken.yaml is not a valid definition"},
				{":6:11: error: from: testdata/broken.yaml is not a valid definition"},
			}},
		{"from another definition", head + "    from: testdata/box.yaml\n    then: {}\n",
			map[string]string{"testdata/box.yaml": strings.Replace(parcelV1, "name: parcel", "name: box", 1)},
			[][]string{{":3:11: error: from: testdata/box.yaml defines \"box\"; it must be an older version of \"parcel\""}}},
		{"a reason that is not one", head + "    from: testdata/parcel.v1.yaml\n    then: {reason: lost}\n",
			nil, [][]string{{":4:20: error: ", `then.reason "lost" is not a reason`, "state_unmapped"}}},
		{"a reason of an instance that moves", head + "    from: testdata/parcel.v1.yaml\n    then: {stranded: false, reason: rule_failed}\n",
			nil, [][]string{{":4:37: error: ", "contradicts stranded: false"}}},
		{"stranded, with a state", head + "    from: testdata/parcel.v1.yaml\n    then: {stranded: true, state: on_road}\n",
			nil, [][]string{{":4:11: error: ", "a stranded instance stays on its version"}}},
		{"a reason, with a context", head + "    from: testdata/parcel.v1.yaml\n    then: {reason: rule_failed, ctx: {heavy: true}}\n",
			nil, [][]string{{":4:11: error: ", "a stranded instance stays on its version"}}},
		{"stranded that is not a bool", head + "    from: testdata/parcel.v1.yaml\n    then: {stranded: maybe}\n",
			nil, [][]string{{":4:22: error: ", "then.stranded must be true or false"}}},
		{"a name used by a case", parcelEvent + "migrations:\n  - name: sending a parcel puts it on the road\n" +
			"    from: testdata/parcel.v1.yaml\n    then: {}\n",
			nil, [][]string{{":6:1: error: ", "already named at line 2"}}},
		{"migrations that are not a list", "migrations: {name: m}\n", nil,
			[][]string{{":1:13: error: ", "migrations must be a list"}}},
		{"a case that is not a mapping", "migrations:\n  - m\n", nil,
			[][]string{{":2:5: error: ", "a migration case must be a mapping"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{
				"parcel.yaml":             parcelV2,
				"testdata/parcel.v1.yaml": parcelV1,
				"parcel.test.yaml":        tt.table,
				"sub/parcel.yaml":         parcelV2,
				"sub/parcel.test.yaml":    parcelEvent,
			}
			for k, v := range tt.files {
				files[k] = v
			}
			dir := badWrite(t, files)
			out, sum := badRun(t, dir)
			file := filepath.Join(dir, "parcel.test.yaml")
			for _, want := range tt.want {
				if strings.HasPrefix(want[0], ":") {
					want = append([]string{file + want[0]}, want[1:]...)
				}
				badFails(t, out, sum, want...)
			}
			if sum.Passed != 1 || sum.Failed != 1 {
				t.Errorf("summary %+v: want the bad table to count as 1 failure and the good one to pass\n%s", sum, out)
			}
		})
	}
}
