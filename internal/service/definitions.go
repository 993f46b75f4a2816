package service

import (
	"context"
	"fmt"
	"strconv"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// ListDefinitions returns a page of the definitions in name order, after the name after: each
// with its latest version and its running instances.
func (s *Service) ListDefinitions(ctx context.Context, after string, limit int) (Page[DefinitionSummary], error) {
	running, err := persistence.InstanceCountRunning(ctx, s.db)
	if err != nil {
		return Page[DefinitionSummary]{}, s.dbError(err)
	}
	names := s.reg.names()
	return readPage(pageSpec[string, DefinitionSummary]{
		limit: limit,
		fetch: func(last *string, n, _ int) ([]string, error) { // names are small
			if last != nil {
				after = *last
			}
			return nextOf(names, n, func(name string) bool { return name > after }), nil
		},
		size: func(name string) int { return len(name) + 256 }, // the description is counted when encoded
		item: func(name string) (DefinitionSummary, error) {
			def, row, err := s.reg.get(name, 0)
			if err != nil {
				return DefinitionSummary{}, err
			}
			return DefinitionSummary{Name: name, Version: row.Version, Description: def.Description, Running: running[name],
				Keys: fieldNames(def.Keys)}, nil
		},
		key: func(d DefinitionSummary) string { return d.Name },
	})
}

// nextOf returns the first n of sorted that are past the key (after(x) reports whether x is).
func nextOf[T any](sorted []T, n int, after func(T) bool) []T {
	i := 0
	for i < len(sorted) && !after(sorted[i]) {
		i++
	}
	return sorted[i:min(len(sorted), i+n)]
}

// GetDefinition returns the latest version of a definition, with its running instances counted per
// version (RunningByVersion): one grouped count over the index of running instances.
func (s *Service) GetDefinition(ctx context.Context, name string) (DefinitionVersion, error) {
	v, err := s.DefinitionVersion(ctx, name, 0)
	if err != nil {
		return DefinitionVersion{}, err
	}
	counts, err := persistence.InstanceCountRunningByVersion(ctx, s.db, name)
	if err != nil {
		return DefinitionVersion{}, s.dbError(err)
	}
	v.RunningByVersion = make([]RunningCount, len(counts))
	for i, c := range counts {
		v.RunningByVersion[i] = RunningCount{Version: c.Version, Count: c.N}
	}
	return v, nil
}

// DefinitionVersion returns one version of a definition (0: the latest).
func (s *Service) DefinitionVersion(_ context.Context, name string, version int) (DefinitionVersion, error) {
	def, row, err := s.reg.get(name, version)
	if err != nil {
		return DefinitionVersion{}, err
	}
	return toDefinition(def, row), nil
}

// DefinitionVersions returns a page of the stored versions of a definition, oldest first, after
// the version after (0 for the first page).
func (s *Service) DefinitionVersions(ctx context.Context, name string, after, limit int) (Page[DefinitionVersion], error) {
	rows := s.reg.all(name)
	if len(rows) == 0 {
		return Page[DefinitionVersion]{}, &NotFoundError{What: "definition", Key: name}
	}
	return readPage(pageSpec[persistence.DefinitionRow, DefinitionVersion]{
		limit: limit,
		fetch: func(last *persistence.DefinitionRow, n, _ int) ([]persistence.DefinitionRow, error) { // in memory
			if last != nil {
				after = last.Version
			}
			return nextOf(rows, n, func(r persistence.DefinitionRow) bool { return r.Version > after }), nil
		},
		// The answer carries the source and the states and events parsed from it: about twice it.
		size: func(r persistence.DefinitionRow) int { return 2*len(r.Source) + 256 },
		item: func(r persistence.DefinitionRow) (DefinitionVersion, error) {
			return s.DefinitionVersion(ctx, name, r.Version)
		},
		key: func(v DefinitionVersion) string { return strconv.Itoa(v.Version) },
	})
}

// Diagram draws a version (0: the latest) as a Mermaid stateDiagram-v2.
func (s *Service) Diagram(_ context.Context, name string, version int) (string, error) {
	def, _, err := s.reg.get(name, version)
	if err != nil {
		return "", err
	}
	return machine.Mermaid(def), nil
}

// PutDefinition validates a definition's YAML and registers it as the next version of name when its
// content is new. Instances keep the version they run on.
func (s *Service) PutDefinition(ctx context.Context, name string, yaml []byte) (PutResult, error) {
	file := name + ".yaml"
	def, diags := machine.ParseWith(file, yaml, s.resolveWith(file, yaml))
	if diags.Errors() == 0 && def.Name != name {
		diags = append(diags, source.Diagnostic{File: file, Line: def.NamePos.Line, Col: def.NamePos.Col, Severity: source.SevError,
			Message: fmt.Sprintf("the definition is named %q, but it is put at %q", def.Name, name)})
	}
	if diags.Errors() == 0 {
		diags = append(diags, s.migrateErrors(def)...)
	}
	if diags.Errors() > 0 {
		return PutResult{}, &machine.InvalidDefinitionError{Diagnostics: diags}
	}
	row, created, err := s.register(ctx, def)
	if err != nil {
		return PutResult{}, err
	}
	if created {
		if err := s.autoMigrate(ctx, name); err != nil {
			return PutResult{}, err
		}
	}
	stored, _, err := s.reg.get(name, row.Version)
	if err != nil {
		return PutResult{}, err
	}
	warnings := append(warningsOf(diags), s.migrateWarnings(def, row.Version)...)
	return PutResult{Definition: toDefinition(stored, row), Created: created, Warnings: warnings}, nil
}

// warningsOf returns the warnings of diags, never nil: the API shows an empty list.
func warningsOf(diags source.Diagnostics) []source.Diagnostic {
	out := []source.Diagnostic{}
	for _, d := range diags {
		if d.Severity == source.SevWarning {
			out = append(out, d)
		}
	}
	return out
}

// stateBranches are st's branches as the API shows them: event by event, each handler's in order.
func stateBranches(st *machine.State) []StateBranch {
	out := []StateBranch{}
	for _, ev := range st.OnOrder {
		for _, b := range st.On[ev].Branches {
			out = append(out, StateBranch{Event: ev, To: b.Target(st.Name), Allow: b.Allow})
		}
	}
	return out
}

func toDefinition(def *machine.Definition, row persistence.DefinitionRow) DefinitionVersion {
	v := DefinitionVersion{Name: row.Name, Version: row.Version, Description: def.Description, Hash: row.Hash,
		Source: row.Source, CreatedAt: row.CreatedAt, States: []State{}, Events: []string{}}
	for _, name := range def.StateOrder {
		st := def.States[name]
		events := st.OnOrder
		if events == nil {
			events = []string{}
		}
		v.States = append(v.States, State{Name: name, Description: st.Description, Final: st.Final, Events: events, Branches: stateBranches(st)})
	}
	seen := map[string]bool{}
	for _, name := range def.StateOrder {
		for _, ev := range def.States[name].OnOrder {
			if !seen[ev] {
				seen[ev] = true
				v.Events = append(v.Events, ev)
			}
		}
	}
	v.Keys, v.Index = fieldNames(def.Keys), fieldNames(def.Index) // find.go
	v.Payloads = make(map[string]any, len(v.Events))
	noPayload := schema.ObjectOf()
	for _, ev := range v.Events {
		v.Payloads[ev] = noPayload.JSONSchema()
	}
	for name, spec := range def.Events { // declared: handled or not
		v.Payloads[name] = spec.Payload.JSONSchema()
	}
	return v
}
