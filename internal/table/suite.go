package table

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Suite is the transition tables found under some paths, each with its definition.
type Suite struct {
	Tables   []*Loaded
	Problems source.Diagnostics // tables that cannot run: unreadable, invalid, or without a valid definition
	Broken   int                // how many table files have problems
}

// Loaded is a table ready to run.
type Loaded struct {
	*Table
	Def *machine.Definition
}

// Files lists the transition tables under paths: *.test.yaml files as given, folders walked (leaving
// out testdata and dot folders), and for a definition file the table next to it.
func Files(paths ...string) ([]string, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			file := p
			if !machine.IsTable(p) {
				file = strings.TrimSuffix(strings.TrimSuffix(p, ".yaml"), ".yml") + ".test.yaml"
				if _, err := os.Stat(file); err != nil {
					return nil, fmt.Errorf("%s is not a transition table, and no table sits next to it: %w", p, err)
				}
			}
			files = append(files, file)
			continue
		}
		err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case e.IsDir() && path != p && (e.Name() == "testdata" || strings.HasPrefix(e.Name(), ".")):
				return filepath.SkipDir
			case !e.IsDir() && machine.IsTable(path):
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// Load reads the tables under paths and resolves their definitions. A path that does not exist is
// returned as err; everything else wrong is in Problems, so the tables that can run still do.
func Load(paths ...string) (*Suite, error) {
	files, err := Files(paths...)
	if err != nil {
		return nil, err
	}
	s := &Suite{}
	if len(files) == 0 {
		s.Problems = append(s.Problems, source.Diagnostic{File: strings.Join(paths, ", "), Severity: source.SevError,
			Message: "no transition tables (*.test.yaml) found"})
		s.Broken++
		return s, nil
	}
	r := resolver{dirs: map[string]*machine.Set{}, olders: map[string]*olderVersion{}}
	for _, file := range files {
		data, err := source.ReadFile(file)
		if err != nil {
			s.problem(source.Diagnostics{{File: file, Severity: source.SevError, Message: err.Error()}})
			continue
		}
		t, diags := Parse(file, data)
		if diags.Errors() > 0 {
			s.problem(diags)
			continue
		}
		def, diags := r.definition(t)
		if def == nil {
			s.problem(diags)
			continue
		}
		if diags := r.olderVersions(t, def); diags.Errors() > 0 {
			s.problem(diags)
			continue
		}
		s.Tables = append(s.Tables, &Loaded{Table: t, Def: def})
	}
	return s, nil
}

func (s *Suite) problem(ds source.Diagnostics) {
	s.Problems = append(s.Problems, ds...)
	s.Broken++
}

// resolver finds the definition of a table: the file named after it in its folder (order.test.yaml
// tests order.yaml), or with `definition: NAME` the definition of that name, looked for first in
// NAME.yaml and then in every file of the folder.
type resolver struct {
	dirs   map[string]*machine.Set
	olders map[string]*olderVersion // `from` files of migration cases, by cleaned path
}

func (r *resolver) definition(t *Table) (*machine.Definition, source.Diagnostics) {
	fail := func(format string, args ...any) (*machine.Definition, source.Diagnostics) {
		return nil, source.Diagnostics{{File: t.File, Severity: source.SevError, Message: fmt.Sprintf(format, args...)}}
	}
	dir := filepath.Dir(t.File)
	name := t.Definition
	if name == "" {
		name = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(t.File), ".test.yaml"), ".test.yml")
	}
	file := filepath.Join(dir, name+".yaml")
	if data, err := source.ReadFile(file); err == nil {
		def, diags := machine.ParseWith(file, data, r.resolve(dir)) // a child group's definition is in the folder
		if diags.Errors() > 0 {
			return nil, append(diags, source.Diagnostic{File: t.File, Severity: source.SevError,
				Message: fmt.Sprintf("its definition %s is invalid", file)})
		}
		if t.Definition == "" || def.Name == name {
			return def, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fail("reading its definition: %v", err)
	}
	if t.Definition == "" {
		return fail("no definition to test: %s does not exist (name one with `definition:`)", file)
	}
	set, err := r.dir(dir)
	if err != nil {
		return fail("loading the definitions in %s: %v", dir, err)
	}
	if def := set.ByName[name]; def != nil {
		return def, nil
	}
	have := "none"
	if len(set.ByName) > 0 {
		have = strings.Join(set.Names(), ", ")
	}
	return fail("no valid definition named %q in %s (valid there: %s; run fsmd validate %s)", name, dir, have, dir)
}

// olderVersions loads the `from` file of each migration case of t: a valid definition of def's name
// (an older version of it). Problems are reported at the case's `from`, and an invalid file's own
// errors once per table.
func (r *resolver) olderVersions(t *Table, def *machine.Definition) source.Diagnostics {
	var diags source.Diagnostics
	reported := map[string]bool{}
	fail := func(c *Case, format string, args ...any) {
		diags = append(diags, source.Diagnostic{File: t.File, Line: c.Migration.Pos.Line, Col: c.Migration.Pos.Col,
			Severity: source.SevError, Message: fmt.Sprintf(format, args...)})
	}
	for _, c := range t.Cases {
		if c.Migration == nil {
			continue
		}
		old := r.older(c.Migration.Path)
		switch {
		case old.err != nil:
			msg := source.PathError(old.err).Error()
			if !strings.Contains(msg, c.Migration.Path) {
				msg = c.Migration.Path + ": " + msg
			}
			fail(c, "from: %s", msg)
		case old.def == nil || old.diags.Errors() > 0:
			if !reported[c.Migration.Path] {
				reported[c.Migration.Path] = true
				diags = append(diags, old.diags...)
			}
			fail(c, "from: %s is not a valid definition (fsmd validate %s)", c.Migration.From, c.Migration.Path)
		case old.def.Name != def.Name:
			fail(c, "from: %s defines %q; it must be an older version of %q, which this table tests", c.Migration.From, old.def.Name, def.Name)
		default:
			c.Migration.Old = old.def
		}
	}
	return diags
}

// olderVersion is a `from` file as loaded: a definition, or why there is none.
type olderVersion struct {
	def   *machine.Definition
	diags source.Diagnostics
	err   error // the file cannot be read
}

// dir loads the definitions of a folder once for every table in it.
func (r *resolver) dir(dir string) (*machine.Set, error) {
	if set := r.dirs[dir]; set != nil {
		return set, nil
	}
	set, _, err := machine.Load(dir)
	if err != nil {
		return nil, err
	}
	r.dirs[dir] = set
	return set, nil
}

// resolve finds the definitions a child group names among those of the folder.
func (r *resolver) resolve(dir string) machine.Resolve {
	return func(name string) *machine.Definition {
		set, err := r.dir(dir)
		if err != nil {
			return nil
		}
		return set.ByName[name]
	}
}

// older loads the definition in path once for every table that names it.
func (r *resolver) older(path string) *olderVersion {
	path = filepath.Clean(path)
	if v := r.olders[path]; v != nil {
		return v
	}
	v := &olderVersion{}
	if data, err := source.ReadFile(path); err != nil {
		v.err = err
	} else {
		v.def, v.diags = machine.Parse(path, data)
	}
	r.olders[path] = v
	return v
}

// Options control a run.
type Options struct {
	Run      *regexp.Regexp // run only the cases whose name matches; nil for all
	Verbose  bool           // print every case and what each step did
	Coverage bool           // print what no case exercised
}

// Summary counts the cases; a table that could not run counts as one failure.
type Summary struct {
	Passed, Failed int
}

// Run runs every case and reports to w: each failure with its file, case, step, expected and got,
// then the coverage if asked, and last the line "N passed, M failed".
func (s *Suite) Run(w io.Writer, o Options) Summary {
	var sum Summary
	s.Problems.WriteText(w)
	sum.Failed += s.Broken
	cov := NewCoverage()
	for _, t := range s.Tables {
		for _, c := range t.Cases {
			if o.Run != nil && !o.Run.MatchString(c.Name) {
				continue
			}
			res := Run(t.Def, c, cov)
			if res.Passed() {
				sum.Passed++
				if o.Verbose {
					fmt.Fprintf(w, "ok   %s:%d: %s\n", t.File, c.Line, c.Name)
					writeTrace(w, res.Trace)
				}
				continue
			}
			sum.Failed++
			fmt.Fprintf(w, "FAIL %s:%d: %s\n", t.File, c.Line, c.Name)
			if res.Step > 0 {
				st := c.Steps[res.Step-1]
				fmt.Fprintf(w, "    after step %d (%s, line %d):\n", res.Step, st, st.Line)
			}
			if c.Migration != nil {
				fmt.Fprintf(w, "    migrating from %s:\n", c.Migration.From)
			}
			for _, f := range res.Failures {
				fmt.Fprintf(w, "    %s\n", f)
			}
			if o.Verbose {
				writeTrace(w, res.Trace)
			}
		}
	}
	if o.Coverage {
		cov.Write(w)
	}
	if s.Broken > 0 {
		fmt.Fprintf(w, "%s could not run (each counted as one failed case)\n", plural(s.Broken, "table"))
	}
	if o.Run != nil && sum.Passed+sum.Failed == s.Broken {
		fmt.Fprintf(w, "no case matches -run %q\n", o.Run)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", sum.Passed, sum.Failed)
	return sum
}

func writeTrace(w io.Writer, trace []string) {
	for _, line := range trace {
		fmt.Fprintf(w, "      %s\n", line)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
