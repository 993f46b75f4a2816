package service

import (
	"context"
	"fmt"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Reload re-reads the definitions folder dir as `fsmd serve` reads it at start; POST /v1/reload,
// SIGHUP and `fsmd serve --watch` call it. One Reload runs at a time.
//
// Validation is all or nothing: when any file has an error, Reload registers nothing and returns a
// machine.InvalidDefinitionError with every diagnostic of the folder (as PUT does for one file), and
// the registered versions go on serving. Otherwise each definition whose content is new becomes its
// next version, content registered already is a no-op, and every definition that got a new version
// migrates its running instances when that version's policy is auto (manual only plans).
//
// A definition whose file has left the folder stays registered: versions are never deleted, and
// instances keep running on theirs. An empty folder registers nothing, as at start, and is only a
// warning.
func (s *Service) Reload(ctx context.Context, dir string) (ReloadResult, error) {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	set, diags, err := machine.LoadWith(s.reg.latest, dir)
	if err != nil { // the folder itself cannot be read
		return ReloadResult{}, &machine.InvalidDefinitionError{Diagnostics: source.Diagnostics{
			{File: dir, Severity: source.SevError, Message: err.Error()}}}
	}
	res := ReloadResult{Definitions: []Reloaded{}, Warnings: []source.Diagnostic{}}
	if len(set.Files) == 0 {
		res.Warnings = append(res.Warnings, source.Diagnostic{File: dir, Severity: source.SevWarning,
			Message: "no definition files (*.yaml) found: nothing to register, the registered definitions stay"})
		return res, nil
	}
	if diags.Errors() == 0 {
		for _, name := range set.Names() {
			diags = append(diags, s.migrateErrors(set.ByName[name])...)
		}
		diags.Sort()
	}
	if diags.Errors() > 0 {
		return ReloadResult{}, &machine.InvalidDefinitionError{Diagnostics: diags}
	}
	res.Warnings = warningsOf(diags)
	var created []string
	for _, name := range set.Names() {
		def := set.ByName[name]
		row, isNew, err := s.register(ctx, def)
		if err != nil {
			return ReloadResult{}, fmt.Errorf("registering %s: %w", name, err)
		}
		res.Definitions = append(res.Definitions, Reloaded{Name: name, Version: row.Version, Created: isNew})
		res.Warnings = append(res.Warnings, s.migrateWarnings(def, row.Version)...)
		if isNew {
			created = append(created, name)
		}
	}
	source.Diagnostics(res.Warnings).Sort()
	// Every new version is registered before any migration starts, so that a failure to start one
	// leaves no definition of the folder unregistered.
	for _, name := range created {
		if err := s.autoMigrate(ctx, name); err != nil {
			return ReloadResult{}, fmt.Errorf("migrating %s: %w", name, err)
		}
	}
	return res, nil
}
