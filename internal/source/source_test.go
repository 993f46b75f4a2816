package source_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fsmd-io/fsmd/internal/source"
)

// walkAll visits every node of the document, following aliases, as the definition parser does.
func walkAll(d *source.Doc, n *yaml.Node) {
	n = d.Resolve(n)
	for _, c := range n.Content {
		walkAll(d, c)
	}
}

// diagLines runs Walk with walk and returns its diagnostics as text lines.
func diagLines(t *testing.T, data string, walk func(d *source.Doc, root *yaml.Node)) ([]string, bool) {
	t.Helper()
	r := &source.Reporter{File: "f.yaml"}
	ok := source.Walk(r, []byte(data), walk)
	var lines []string
	for _, d := range r.Diags {
		lines = append(lines, d.String())
	}
	return lines, ok
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestWalkRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data string
		want string
	}{
		{"empty", "", "f.yaml: error: the file is empty"},
		{"only a comment", "# nothing here\n", "f.yaml: error: the file is empty"},
		{"unclosed flow mapping", "name: t\ninitial: a\nstates:\n  a: {final: true\n  b: [\n",
			"f.yaml:4: error: invalid YAML: did not find expected ',' or '}'"},
		{"tab indentation", "name: t\nstates:\n\ta: 1\n",
			"f.yaml:3: error: invalid YAML: found character that cannot start any token"},
		{"bad indentation", "a:\n  b: 1\n c: 2\n",
			"f.yaml:3: error: invalid YAML: did not find expected key"},
		{"two documents", "name: t\n---\nname: u\n",
			"f.yaml:2:1: error: the file holds more than one YAML document; put one definition in each file"},
		{"a broken second document", "name: t\n---\nname: [\n",
			"f.yaml:4: error: invalid YAML: did not find expected node content"},
		{"too big", "a: " + strings.Repeat("x", source.MaxFileBytes) + "\n",
			fmt.Sprintf("f.yaml: error: the file is %d bytes; the limit is %d", source.MaxFileBytes+4, source.MaxFileBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			called := false
			got, ok := diagLines(t, tt.data, func(*source.Doc, *yaml.Node) { called = true })
			if ok || called {
				t.Errorf("Walk = %v, walk called: %v; want false, not called", ok, called)
			}
			sameLines(t, "diagnostics", got, []string{tt.want})
		})
	}
}

func TestWalkGivesTheRoot(t *testing.T) {
	t.Parallel()
	for _, data := range []string{"a: 1\n", "---\na: 1\n", "---\na: 1\n...\n", "# comment\na: 1 # more\n"} {
		var root *yaml.Node
		got, ok := diagLines(t, data, func(_ *source.Doc, n *yaml.Node) { root = n })
		if !ok || len(got) > 0 {
			t.Errorf("Walk(%q) = %v, %v", data, ok, got)
			continue
		}
		if root.Kind != yaml.MappingNode || len(root.Content) != 2 || root.Content[1].Value != "1" {
			t.Errorf("Walk(%q) root = %+v, want the mapping", data, root)
		}
	}
	// Exactly MaxFileBytes is not too big (a comment: it is quicker to scan than a value).
	data := "#" + strings.Repeat("x", source.MaxFileBytes-2) + "\n"
	got, _ := diagLines(t, data, func(*source.Doc, *yaml.Node) {})
	sameLines(t, "a file of exactly MaxFileBytes", got, []string{"f.yaml: error: the file is empty"})
}

// billionLaughs is nine levels of ten aliases each: 10^9 nodes once expanded, a few hundred bytes.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestAliasBudget(t *testing.T) {
	t.Parallel()
	start := time.Now()
	got, ok := diagLines(t, billionLaughs(), walkAll)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the alias bomb took %v to refuse", d)
	}
	if ok {
		t.Error("Walk = true for an alias bomb")
	}
	// Refused at an alias, past ten times the file's own 121 nodes (and MinBudget).
	sameLines(t, "diagnostics", got, []string{
		fmt.Sprintf("f.yaml:2:45: error: the document expands to more than %d YAML nodes through this alias: "+
			"aliases may take a file to %d times its own nodes (121 here), or %d nodes",
			source.MaxExpansion*121+source.MinBudget, source.MaxExpansion, source.MinBudget),
	})

	// What a reader shares instead of reading again still counts, against MaxNodes: here each alias
	// of l1 is charged half of MaxNodes, and the second takes the document past it.
	got, ok = diagLines(t, "l1: &l1 [a]\nl2: [*l1, *l1, *l1]\n", func(d *source.Doc, root *yaml.Node) {
		entries, _ := d.Mapping(root, "root")
		for _, item := range d.Sequence(entries[1].Val, "l2") {
			d.Charge(item, source.MaxNodes/2)
		}
	})
	sameLines(t, "shared", got, []string{
		fmt.Sprintf("f.yaml:2:11: error: the document expands to more than %d YAML nodes through this alias", source.MaxNodes),
	})
	if ok {
		t.Error("Walk = true past MaxNodes")
	}

	// A few aliases are fine, and resolve to what they name.
	var vals []string
	got, ok = diagLines(t, "a: &x {k: v}\nb: *x\nc: *x\n", func(d *source.Doc, root *yaml.Node) {
		entries, _ := d.Mapping(root, "root")
		for _, e := range entries {
			inner, _ := d.Mapping(e.Val, e.Key)
			for _, ie := range inner {
				s, _ := d.Scalar(ie.Val, ie.Key)
				vals = append(vals, e.Key+"."+ie.Key+"="+s)
			}
		}
	})
	if !ok || len(got) > 0 || strings.Join(vals, " ") != "a.k=v b.k=v c.k=v" {
		t.Errorf("aliases: ok %v, diags %v, values %v", ok, got, vals)
	}
}

func TestWalkPassesOtherPanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want the walk's own panic", r)
		}
	}()
	source.Walk(&source.Reporter{File: "f.yaml"}, []byte("a: 1\n"), func(*source.Doc, *yaml.Node) { panic("boom") })
	t.Error("Walk returned")
}

func TestMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		data  string
		keys  []string
		ok    bool
		diags []string
	}{
		{"in order", "b: 1\na: 2\nc: 3\n", []string{"b", "a", "c"}, true, nil},
		{"null is empty", "~\n", nil, true, nil},
		{"empty flow mapping", "{}\n", nil, true, nil},
		{"not a mapping", "[1, 2]\n", nil, false, []string{`f.yaml:1:1: error: root must be a mapping, not a list`}},
		{"a scalar", "hello\n", nil, false, []string{`f.yaml:1:1: error: root must be a mapping, not "hello"`}},
		{"duplicate keys", "a: 1\nb: 2\na: 3\nb: 4\n", []string{"a", "b"}, true, []string{
			`f.yaml:3:1: error: duplicate key "a" in root`,
			`f.yaml:4:1: error: duplicate key "b" in root`,
		}},
		{"a key that is a list", "[a]: 1\nb: 2\n", []string{"b"}, true, []string{
			`f.yaml:1:1: error: a key in root must be a plain name, not a list`,
		}},
		{"an alias to a mapping", "&m {a: 1}\n", []string{"a"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var keys []string
			var ok bool
			got, _ := diagLines(t, tt.data, func(d *source.Doc, root *yaml.Node) {
				var entries []source.Entry
				entries, ok = d.Mapping(root, "root")
				for _, e := range entries {
					keys = append(keys, e.Key)
				}
			})
			if ok != tt.ok || strings.Join(keys, ",") != strings.Join(tt.keys, ",") {
				t.Errorf("Mapping = %v, %v; want %v, %v", keys, ok, tt.keys, tt.ok)
			}
			sameLines(t, "diagnostics", got, tt.diags)
		})
	}
}

func TestMergeKeysRefused(t *testing.T) {
	t.Parallel()
	data := "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n"
	var keys []string
	got, ok := diagLines(t, data, func(d *source.Doc, root *yaml.Node) {
		entries, _ := d.Mapping(root, "root")
		inner, _ := d.Mapping(entries[1].Val, "other")
		for _, e := range inner {
			keys = append(keys, e.Key)
		}
	})
	if !ok || strings.Join(keys, ",") != "y" {
		t.Errorf("Walk = %v, keys %v; want true, [y]", ok, keys)
	}
	sameLines(t, "diagnostics", got, []string{
		"f.yaml:3:3: error: merge keys (<<) are not supported; repeat the keys or use an alias for the value",
	})
}

func TestKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		allowed []string
		want    string
	}{
		{"several allowed, listed sorted", []string{"to", "guard", "set"}, `f.yaml:2:1: error: unknown key "colour" in a thing (expected guard, set or to)`},
		{"two allowed", []string{"to", "guard"}, `f.yaml:2:1: error: unknown key "colour" in a thing (expected guard or to)`},
		{"one allowed", []string{"to"}, `f.yaml:2:1: error: unknown key "colour" in a thing (expected to)`},
	}
	for _, tt := range tests {
		var got source.Fields
		lines, _ := diagLines(t, "to: a\ncolour: red\n", func(d *source.Doc, root *yaml.Node) {
			entries, _ := d.Mapping(root, "a thing")
			got = d.Keys(entries, "a thing", tt.allowed...)
		})
		sameLines(t, tt.name, lines, []string{tt.want})
		to, ok := got.Get("to")
		if len(got) != 1 || !ok || to.Val.Value != "a" || to.KeyNode.Line != 1 {
			t.Errorf("%s: Keys = %v, want only to", tt.name, got)
		}
	}
}

func TestScalarBooleanSequence(t *testing.T) {
	t.Parallel()
	data := `s: hello
q: "quoted"
n: ~
l: [a, b]
m: {a: 1}
t: true
T: True
f: false
y: yes
one: 1
seq: [x, y]
nullseq:
`
	var (
		scalars []string
		bools   []bool
		seqs    []int
	)
	got, _ := diagLines(t, data, func(d *source.Doc, root *yaml.Node) {
		entries, _ := d.Mapping(root, "root")
		v := map[string]*yaml.Node{}
		for _, e := range entries {
			v[e.Key] = e.Val
		}
		for _, k := range []string{"s", "q", "n", "l", "m"} {
			s, ok := d.Scalar(v[k], k)
			scalars = append(scalars, fmt.Sprintf("%s=%q/%v", k, s, ok))
		}
		for _, k := range []string{"t", "T", "f", "y", "one", "n"} {
			bools = append(bools, d.Boolean(v[k], k))
		}
		for _, k := range []string{"seq", "nullseq", "s", "m"} {
			seqs = append(seqs, len(d.Sequence(v[k], k)))
		}
	})
	if want := `s="hello"/true q="quoted"/true n=""/false l=""/false m=""/false`; strings.Join(scalars, " ") != want {
		t.Errorf("Scalar: %s\nwant    %s", strings.Join(scalars, " "), want)
	}
	if want := []bool{true, true, false, false, false, false}; fmt.Sprint(bools) != fmt.Sprint(want) {
		t.Errorf("Boolean: %v, want %v", bools, want)
	}
	if want := []int{2, 0, 0, 0}; fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Errorf("Sequence: %v, want %v", seqs, want)
	}
	sameLines(t, "diagnostics", got, []string{
		`f.yaml:3:4: error: n must be a single value, not nothing`,
		`f.yaml:4:4: error: l must be a single value, not a list`,
		`f.yaml:5:4: error: m must be a single value, not a mapping`,
		`f.yaml:9:4: error: y must be true or false, not "yes"`,
		`f.yaml:10:6: error: one must be true or false, not "1"`,
		`f.yaml:3:4: error: n must be true or false, not nothing`,
		`f.yaml:1:4: error: s must be a list, not "hello"`,
		`f.yaml:5:4: error: m must be a list, not a mapping`,
	})
}

func TestName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
	}{
		{"paid", true},
		{"Paid_2", true},
		{"a", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"1st", false},
		{"_x", false},
		{"pay-now", false},
		{"pay now", false},
		{"pay.now", false},
		{"", false},
		{"café", false},
	}
	for _, tt := range tests {
		r := &source.Reporter{File: "f.yaml"}
		n := &yaml.Node{Kind: yaml.ScalarNode, Value: tt.name, Line: 2, Column: 3}
		var ok bool
		source.Walk(r, []byte("a: 1\n"), func(d *source.Doc, _ *yaml.Node) { ok = d.Name(n, "state") })
		if ok != tt.ok || (len(r.Diags) == 0) != tt.ok {
			t.Errorf("Name(%q) = %v, diags %v; want %v", tt.name, ok, r.Diags, tt.ok)
		}
		if !tt.ok {
			want := fmt.Sprintf(`f.yaml:2:3: error: state name %q is not valid: it must start with a letter and hold only letters, digits and _ (at most 63)`, tt.name)
			if len(r.Diags) != 1 || r.Diags[0].String() != want {
				t.Errorf("Name(%q) diags = %v, want %s", tt.name, r.Diags, want)
			}
		}
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    *yaml.Node
		want string
	}{
		{&yaml.Node{Kind: yaml.MappingNode}, "a mapping"},
		{&yaml.Node{Kind: yaml.SequenceNode}, "a list"},
		{&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "~"}, "nothing"},
		{&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: `say "hi"`}, `"say \"hi\""`},
		{&yaml.Node{Kind: yaml.AliasNode}, "something else"},
	}
	for _, tt := range tests {
		if got := source.Describe(tt.n); got != tt.want {
			t.Errorf("Describe(%v) = %q, want %q", tt.n.Kind, got, tt.want)
		}
	}
}

func TestDiagnostics(t *testing.T) {
	t.Parallel()
	ds := source.Diagnostics{
		{File: "b.yaml", Line: 1, Col: 1, Severity: source.SevError, Message: "b1"},
		{File: "a.yaml", Line: 3, Col: 2, Severity: source.SevWarning, Message: "a3w"},
		{File: "a.yaml", Line: 3, Col: 2, Severity: source.SevError, Message: "a3e"},
		{File: "a.yaml", Line: 0, Col: 0, Severity: source.SevError, Message: "a0"},
		{File: "a.yaml", Line: 3, Col: 1, Severity: source.SevError, Message: "a3c1"},
		{File: "a.yaml", Line: 10, Col: 1, Severity: source.SevError, Message: "a10"},
	}
	if ds.Errors() != 5 || ds.Warnings() != 1 {
		t.Errorf("Errors, Warnings = %d, %d; want 5, 1", ds.Errors(), ds.Warnings())
	}
	ds.Sort()
	var buf bytes.Buffer
	if err := ds.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	want := `a.yaml: error: a0
a.yaml:3:1: error: a3c1
a.yaml:3:2: warning: a3w
a.yaml:3:2: error: a3e
a.yaml:10:1: error: a10
b.yaml:1:1: error: b1
`
	if buf.String() != want {
		t.Errorf("sorted text:\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	if err := ds[:1].WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("WriteJSON wrote %q: %v", buf.String(), err)
	}
	wantJSON := []map[string]any{{"file": "a.yaml", "line": 0.0, "column": 0.0, "severity": "error", "message": "a0"}}
	if fmt.Sprint(got) != fmt.Sprint(wantJSON) {
		t.Errorf("WriteJSON = %v, want %v", got, wantJSON)
	}

	buf.Reset()
	if err := source.Diagnostics(nil).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("WriteJSON of none = %q, want []", buf.String())
	}
}

func TestReporter(t *testing.T) {
	t.Parallel()
	r := &source.Reporter{File: "x.yaml"}
	r.Errorf(source.Pos{Line: 2, Col: 5}, "bad %s", "thing")
	r.Warnf(source.Pos{}, "odd %d", 3)
	var got []string
	for _, d := range r.Diags {
		got = append(got, d.String())
	}
	sameLines(t, "reporter", got, []string{"x.yaml:2:5: error: bad thing", "x.yaml: warning: odd 3"})
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), size), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small := write("small.yaml", 10)
	exact := write("exact.yaml", source.MaxFileBytes)
	over := write("over.yaml", source.MaxFileBytes+1)
	huge := write("huge.yaml", 3*source.MaxFileBytes)

	for _, p := range []string{small, exact} {
		data, err := source.ReadFile(p)
		if err != nil {
			t.Errorf("ReadFile(%s): %v", filepath.Base(p), err)
		}
		info, _ := os.Stat(p)
		if int64(len(data)) != info.Size() {
			t.Errorf("ReadFile(%s) read %d bytes of %d", filepath.Base(p), len(data), info.Size())
		}
	}
	for _, tt := range []struct {
		path string
		size int
	}{{over, source.MaxFileBytes + 1}, {huge, 3 * source.MaxFileBytes}} {
		data, err := source.ReadFile(tt.path)
		want := fmt.Sprintf("the file is %d bytes; the limit is %d", tt.size, source.MaxFileBytes)
		if err == nil || err.Error() != want || data != nil {
			t.Errorf("ReadFile(%s) = %d bytes, %v; want %s", filepath.Base(tt.path), len(data), err, want)
		}
	}
	if _, err := source.ReadFile(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want fs.ErrNotExist", err)
	}
}
