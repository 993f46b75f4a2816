package machine

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/fsmd-io/fsmd/internal/source"
)

// Set is the definitions loaded from files, by name.
type Set struct {
	ByName map[string]*Definition
	Files  []string // every definition file read, in order
}

// Names returns the definition names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.ByName))
	for n := range s.ByName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IsTable reports whether path names a transition table rather than a definition.
func IsTable(path string) bool {
	return strings.HasSuffix(path, ".test.yaml") || strings.HasSuffix(path, ".test.yml")
}

func isYAML(path string) bool {
	return strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")
}

// DefinitionFiles lists the definition files under the given paths: files as given, folders walked
// for *.yaml and *.yml, leaving out transition tables (*.test.yaml) and folders named testdata (older
// versions kept for migration tests) or starting with a dot. A path that does not exist is an error.
func DefinitionFiles(paths ...string) ([]string, error) {
	var files []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, source.PathError(err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				if path != p && (e.Name() == "testdata" || strings.HasPrefix(e.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if isYAML(path) && !IsTable(path) {
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

// Load reads and validates every definition file under paths (see DefinitionFiles). It returns the
// valid definitions and every problem found in any file. A name defined by two files is an error in
// the second. A path that does not exist is returned as err; a folder without definitions is a
// diagnostic.
func Load(paths ...string) (*Set, source.Diagnostics, error) { return LoadWith(nil, paths...) }

// LoadWith is Load where a child group may also name a definition that registered finds (nil: only
// the definitions loaded together are known).
func LoadWith(registered Resolve, paths ...string) (*Set, source.Diagnostics, error) {
	files, err := DefinitionFiles(paths...)
	if err != nil {
		return nil, nil, err
	}
	set := &Set{ByName: map[string]*Definition{}, Files: files}
	var diags source.Diagnostics
	if len(files) == 0 {
		diags = append(diags, source.Diagnostic{File: strings.Join(paths, ", "), Severity: source.SevError,
			Message: "no definition files (*.yaml) found"})
		return set, diags, nil
	}
	parsed := parseAll(files, nil)
	// A definition with child groups is parsed again once every file is: its children's context
	// types and on_final payloads come from definitions loaded with it, or registered before.
	byName := map[string]*Definition{}
	again := make([]bool, len(files))
	for i, p := range parsed {
		if p.def != nil && p.def.Name != "" {
			if byName[p.def.Name] == nil {
				byName[p.def.Name] = p.def
			}
			again[i] = p.def.hasChildren
		}
	}
	resolve := func(name string) *Definition {
		if d := byName[name]; d != nil {
			return d
		}
		if registered != nil {
			return registered(name)
		}
		return nil
	}
	for i, p := range parseAll(files, func(i int) (Resolve, bool) { return resolve, again[i] }) {
		if again[i] {
			parsed[i] = p
		}
	}
	first := map[string]*Definition{}
	for i, file := range files {
		def, ds := parsed[i].def, parsed[i].diags
		diags = append(diags, ds...)
		if def == nil || def.Name == "" {
			continue
		}
		if prev := first[def.Name]; prev != nil {
			diags = append(diags, source.Diagnostic{File: file, Line: def.NamePos.Line, Col: def.NamePos.Col, Severity: source.SevError,
				Message: fmt.Sprintf("definition %q is also defined in %s:%d:%d", def.Name, prev.File, prev.NamePos.Line, prev.NamePos.Col)})
			delete(set.ByName, def.Name)
			continue
		}
		first[def.Name] = def
		if ds.Errors() == 0 {
			set.ByName[def.Name] = def
		}
	}
	return set, diags, nil
}

// parseResult is what Parse made of one file.
type parseResult struct {
	def   *Definition
	diags source.Diagnostics
}

// parseAll reads and parses the files on every CPU: files are independent, and compiling their
// expressions is most of the work of loading.
func parseAll(files []string, with func(i int) (Resolve, bool)) []parseResult {
	out := make([]parseResult, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(files)) {
		wg.Go(func() {
			for i := range next {
				var resolve Resolve
				if with != nil {
					var ok bool
					if resolve, ok = with(i); !ok {
						continue
					}
				}
				data, err := source.ReadFile(files[i])
				if err != nil {
					out[i].diags = source.Diagnostics{{File: files[i], Severity: source.SevError, Message: err.Error()}}
					continue
				}
				out[i].def, out[i].diags = ParseWith(files[i], data, resolve)
			}
		})
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}
