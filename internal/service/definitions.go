package service

import (
	"context"
	"fmt"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/source"
)

// ListDefinitions lists every definition: its latest version and its running instances.
func (s *Service) ListDefinitions(ctx context.Context) ([]DefinitionSummary, error) {
	running, err := persistence.InstanceCountRunning(ctx, s.db)
	if err != nil {
		return nil, s.dbError(err)
	}
	out := []DefinitionSummary{}
	for _, name := range s.reg.names() {
		def, row, err := s.reg.get(name, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, DefinitionSummary{Name: name, Version: row.Version, Description: def.Description, Running: running[name]})
	}
	return out, nil
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

// DefinitionVersions returns every stored version of a definition, oldest first.
func (s *Service) DefinitionVersions(ctx context.Context, name string) ([]DefinitionVersion, error) {
	rows := s.reg.all(name)
	if len(rows) == 0 {
		return nil, &NotFoundError{What: "definition", Key: name}
	}
	out := make([]DefinitionVersion, 0, len(rows))
	for _, row := range rows {
		v, err := s.DefinitionVersion(ctx, name, row.Version)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
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
	def, diags := machine.Parse(file, yaml)
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

func toDefinition(def *machine.Definition, row persistence.DefinitionRow) DefinitionVersion {
	v := DefinitionVersion{Name: row.Name, Version: row.Version, Description: def.Description, Hash: row.Hash,
		Source: row.Source, CreatedAt: row.CreatedAt, States: []State{}, Events: []string{}}
	for _, name := range def.StateOrder {
		st := def.States[name]
		events := st.OnOrder
		if events == nil {
			events = []string{}
		}
		v.States = append(v.States, State{Name: name, Description: st.Description, Final: st.Final, Events: events})
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
	return v
}
