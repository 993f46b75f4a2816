package machine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/source"
)

// validDef is a definition without problems, named name.
func validDef(name string) string {
	return fmt.Sprintf(`name: %s
initial: a
states:
  a:
    on:
      go: b
  b: {final: true}
`, name)
}

// writeFiles writes files (path relative to dir -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func diagStrings(ds source.Diagnostics) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

func TestLoadFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"order.yaml":                  validDef("order"),
		"sub/approval.yml":            validDef("approval"),
		"order.test.yaml":             "not: a definition\n",
		"sub/approval.test.yml":       "not: a definition\n",
		"testdata/order.v1.yaml":      "not: a definition\n",
		"sub/testdata/old.yaml":       "not: a definition\n",
		".hidden/secret.yaml":         "not: a definition\n",
		"README.md":                   "# not yaml\n",
		"notes.txt":                   "not: yaml either\n",
		"sub/deeper/loan.yaml":        validDef("loan"),
		"sub/deeper/loan.extra.json":  "{}",
		"testdatax/kept_as_well.yaml": validDef("kept_as_well"),
	})
	set, diags, err := machine.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, diagStrings(diags), nil)
	want := []string{"order.yaml", "sub/approval.yml", "sub/deeper/loan.yaml", "testdatax/kept_as_well.yaml"}
	var got []string
	for _, f := range set.Files {
		rel, _ := filepath.Rel(dir, f)
		got = append(got, filepath.ToSlash(rel))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Files = %v, want %v", got, want)
	}
	if names := set.Names(); !slices.Equal(names, []string{"approval", "kept_as_well", "loan", "order"}) {
		t.Errorf("Names = %v", names)
	}
	if def := set.ByName["order"]; def == nil || def.File != filepath.Join(dir, "order.yaml") {
		t.Errorf("ByName[order] = %+v", def)
	}
}

// TestLoadFileGivenByName: a file named on the command line is read whatever its name.
func TestLoadFileGivenByName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"testdata/t.test.yaml": validDef("t")})
	set, diags, err := machine.Load(filepath.Join(dir, "testdata", "t.test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if set.ByName["t"] == nil || len(set.Files) != 1 {
		t.Errorf("Load(a file) = %v, %v", set.Names(), diagStrings(diags))
	}
}

func TestLoadDuplicateName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml": validDef("dup"),
		"b.yaml": "# the same name again\n" + validDef("dup"),
		"c.yaml": validDef("c"),
	})
	set, diags, err := machine.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	diffLines(t, diagStrings(diags), []string{
		a + `:1:7: warning: definition "dup" is in a file named a.yaml; name the file dup.yaml`,
		b + `:2:7: warning: definition "dup" is in a file named b.yaml; name the file dup.yaml`,
		b + `:2:7: error: definition "dup" is also defined in ` + a + `:1:7`,
	})
	if diags.Errors() != 1 {
		t.Errorf("%d errors, want 1", diags.Errors())
	}
	if set.ByName["dup"] != nil {
		t.Error("a name defined twice is loaded")
	}
	if set.ByName["c"] == nil {
		t.Error("the other definition is not loaded")
	}
}

func TestLoadKeepsValidDefinitions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"bad.yaml":  "name: bad\ninitial: z\nstates:\n  a: {final: true}\n",
		"good.yaml": validDef("good"),
		"big.yaml":  "a: " + strings.Repeat("x", source.MaxFileBytes) + "\n",
	})
	set, diags, err := machine.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	bad, big := filepath.Join(dir, "bad.yaml"), filepath.Join(dir, "big.yaml")
	diffLines(t, diagStrings(diags), []string{
		bad + `:2:10: error: initial state "z" is not a declared state`,
		fmt.Sprintf("%s: error: the file is %d bytes; the limit is %d", big, source.MaxFileBytes+4, source.MaxFileBytes),
	})
	if names := set.Names(); !slices.Equal(names, []string{"good"}) {
		t.Errorf("Names = %v, want only the valid definition", names)
	}
}

func TestLoadNoDefinitions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"order.test.yaml":        "cases: []\n",
		"testdata/order.v1.yaml": validDef("order"),
		"README.md":              "#\n",
	})
	empty := t.TempDir()
	for _, d := range []string{dir, empty} {
		set, diags, err := machine.Load(d)
		if err != nil {
			t.Fatal(err)
		}
		diffLines(t, diagStrings(diags), []string{d + ": error: no definition files (*.yaml) found"})
		if diags.Errors() != 1 || len(set.ByName) != 0 || len(set.Files) != 0 {
			t.Errorf("Load(%s) = %+v", d, set)
		}
	}
	_, diags, err := machine.Load(dir, empty)
	if err != nil {
		t.Fatal(err)
	}
	diffLines(t, diagStrings(diags), []string{dir + ", " + empty + ": error: no definition files (*.yaml) found"})
}

func TestLoadMissingPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"t.yaml": validDef("t")})
	missing := filepath.Join(dir, "nope")
	for _, paths := range [][]string{{missing}, {dir, missing}, {filepath.Join(dir, "nope.yaml")}} {
		set, diags, err := machine.Load(paths...)
		if err == nil {
			t.Errorf("Load(%v) = %v, %v; want an error", paths, set, diags)
			continue
		}
		if !strings.Contains(err.Error(), filepath.Join(dir, "nope")) {
			t.Errorf("Load(%v) error %q does not name the path", paths, err)
		}
	}
}

func TestDefinitionFilesAndIsTable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path  string
		table bool
	}{
		{"order.test.yaml", true},
		{"defs/order.test.yml", true},
		{"order.yaml", false},
		{"test.yaml", false},
		{"order.testing.yaml", false},
	} {
		if got := machine.IsTable(tt.path); got != tt.table {
			t.Errorf("IsTable(%q) = %v", tt.path, got)
		}
	}
}
