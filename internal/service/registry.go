package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/migration"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/source"
)

// registry holds every stored version of every definition, compiled: instances run on the version
// they were created on, so old versions stay loaded.
type registry struct {
	mu     sync.RWMutex
	byName map[string]*versions
}

type versions struct {
	latest int
	defs   map[int]*machine.Definition
	rows   map[int]persistence.DefinitionRow
}

func newRegistry() *registry { return &registry{byName: map[string]*versions{}} }

func (r *registry) add(row persistence.DefinitionRow, def *machine.Definition) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.byName[row.Name]
	if v == nil {
		v = &versions{defs: map[int]*machine.Definition{}, rows: map[int]persistence.DefinitionRow{}}
		r.byName[row.Name] = v
	}
	v.defs[row.Version], v.rows[row.Version] = def, row
	if row.Version > v.latest {
		v.latest = row.Version
	}
}

// get returns a version of a definition, the latest for version 0.
func (r *registry) get(name string, version int) (*machine.Definition, persistence.DefinitionRow, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v := r.byName[name]
	if v == nil {
		return nil, persistence.DefinitionRow{}, &NotFoundError{What: "definition", Key: name}
	}
	if version == 0 {
		version = v.latest
	}
	def := v.defs[version]
	if def == nil {
		return nil, persistence.DefinitionRow{}, &NotFoundError{What: "definition version", Key: fmt.Sprintf("%s@%d", name, version)}
	}
	return def, v.rows[version], nil
}

// latest is the latest registered version of name, nil when there is none: what a child group of a
// definition being registered may name (machine.Resolve).
func (r *registry) latest(name string) *machine.Definition {
	def, _, err := r.get(name, 0)
	if err != nil {
		return nil
	}
	return def
}

// resolveWith finds a child group's definition for the definition being registered from yaml:
// itself, when it names itself (a tree of instances of one definition), else a registered one.
func (s *Service) resolveWith(file string, yaml []byte) machine.Resolve {
	var self *machine.Definition
	parsed := false
	return func(name string) *machine.Definition {
		if !parsed {
			self, _ = machine.Parse(file, yaml) // its context, which is all a child group reads
			parsed = true
		}
		if self != nil && self.Name == name {
			return self
		}
		return s.reg.latest(name)
	}
}

// names lists the definitions, sorted.
func (r *registry) names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// all returns every version of a definition, oldest first.
func (r *registry) all(name string) []persistence.DefinitionRow {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v := r.byName[name]
	if v == nil {
		return nil
	}
	rows := make([]persistence.DefinitionRow, 0, len(v.rows))
	for _, row := range v.rows {
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Version < rows[j].Version })
	return rows
}

// olderThan returns the loaded versions of a definition before version, oldest first.
func (r *registry) olderThan(name string, version int) []*machine.Definition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v := r.byName[name]
	if v == nil {
		return nil
	}
	var out []*machine.Definition
	for n := 1; n < version; n++ {
		if def := v.defs[n]; def != nil {
			out = append(out, def)
		}
	}
	return out
}

// older returns the loaded versions of name before version, by number.
func (r *registry) older(name string, version int) map[int]*machine.Definition {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[int]*machine.Definition{}
	if v := r.byName[name]; v != nil {
		for n := 1; n < version; n++ {
			if def := v.defs[n]; def != nil {
				out[n] = def
			}
		}
	}
	return out
}

// versionFor is the version content with hash has (registered already) or would get (the next).
func (r *registry) versionFor(name, hash string) int {
	rows := r.all(name)
	latest := 0
	for _, row := range rows {
		if row.Hash == hash {
			return row.Version
		}
		latest = max(latest, row.Version)
	}
	return latest + 1
}

func hashOf(source []byte) string {
	sum := sha256.Sum256(source)
	return hex.EncodeToString(sum[:])
}

// register stores def's content as the next version of its name unless the same content is stored
// already, and returns the stored row and whether it is new. Two processes registering the same
// content at once both end with the one row.
func (s *Service) register(ctx context.Context, def *machine.Definition) (persistence.DefinitionRow, bool, error) {
	if err := s.ensureIndexes(ctx, def); err != nil { // its keys hold from its first instance (keys.go)
		return persistence.DefinitionRow{}, false, err
	}
	// Two processes registering different content at once may pick the same version; the one that
	// loses the race registers again, after the winner.
	for attempt := 0; ; attempt++ {
		row, created, err := s.registerOnce(ctx, def)
		if !errors.Is(err, persistence.ErrConflict) || attempt == 3 {
			if err != nil {
				return row, false, s.dbError(err)
			}
			// Content registered already keeps the definition loaded for it (perhaps prepared): a
			// reload of an unchanged folder replaces nothing.
			if _, _, err := s.reg.get(row.Name, row.Version); created || err != nil {
				s.reg.add(row, def)
			}
			return row, created, nil
		}
	}
}

func (s *Service) registerOnce(ctx context.Context, def *machine.Definition) (persistence.DefinitionRow, bool, error) {
	hash := hashOf(def.Source)
	var row persistence.DefinitionRow
	created := false
	err := s.db.WithTx(ctx, func(tx *persistence.Tx) error {
		var err error
		row, err = persistence.DefinitionGetByHash(ctx, tx, def.Name, hash)
		if err == nil {
			created = false
			return nil
		}
		if !errors.Is(err, persistence.ErrNotFound) {
			return err
		}
		latest, err := persistence.DefinitionLatestVersion(ctx, tx, def.Name)
		if err != nil {
			return err
		}
		row = persistence.DefinitionRow{Name: def.Name, Version: latest + 1, Hash: hash, Source: string(def.Source),
			Description: def.Description, CreatedAt: s.now()}
		created = true
		return persistence.DefinitionInsert(ctx, tx, row)
	})
	if created && errors.Is(err, persistence.ErrUnavailable) && !persistence.NeverSent(err) {
		// The COMMIT may have applied without its answer (outcome.go): inserting the version again
		// on a new connection settles it (it waits for a commit still in flight), and a conflict
		// with this content at this version is this registration. Answered as created, the put
		// starts its migration (policy auto) as it would have.
		err = s.retryUncertain(ctx, "definition", def.Name, err, func(ctx context.Context) error {
			return s.db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.DefinitionInsert(ctx, tx, row) })
		})
		if errors.Is(err, persistence.ErrConflict) {
			if got, gerr := persistence.DefinitionGetByHash(ctx, s.db, def.Name, hash); gerr == nil && got.Version == row.Version {
				err = nil
			}
		}
	}
	return row, created, err
}

// Register stores every definition of set whose content is new as the next version of its name, then
// loads every stored version, so that instances of older versions keep running. It logs the warnings
// of migrate rules for states that no older version has (MigrateSourceWarnings).
func (s *Service) Register(ctx context.Context, set *machine.Set) error {
	versions := make(map[string]int, len(set.ByName))
	for _, name := range set.Names() {
		row, _, err := s.register(ctx, set.ByName[name])
		if err != nil {
			return fmt.Errorf("registering %s: %w", name, err)
		}
		versions[name] = row.Version
	}
	if err := s.loadStored(ctx); err != nil {
		return err
	}
	for _, name := range set.Names() {
		for _, d := range s.migrateWarnings(set.ByName[name], versions[name]) {
			if d.Severity == source.SevError {
				s.log.Error("definition error: migrate rules that can move no instance", "definition", name,
					"version", versions[name], "error", d.String())
				continue
			}
			s.log.Warn("definition warning", "definition", name, "version", versions[name], "warning", d.String())
		}
	}
	return nil
}

// migrateWarnings warns of def's migrate rules for states that no version before version has (the
// version def is registered as), and of rules that do not compile against some of those versions
// (migration.Check): every loaded version counts, so the answer is the same whenever the content is
// put or read again. At start, where the versions stored before are loaded only after registering,
// Check's errors come here too (PUT and reload refuse them first: migrateErrors).
func (s *Service) migrateWarnings(def *machine.Definition, version int) source.Diagnostics {
	diags := machine.MigrateSourceWarnings(def, s.reg.olderThan(def.Name, version))
	return append(diags, migration.Check(def, s.reg.older(def.Name, version))...)
}

// migrateErrors are the errors of def's migrate rules against the loaded versions before the one def
// would be registered as: an expression that compiles against none of them can move no instance.
func (s *Service) migrateErrors(def *machine.Definition) source.Diagnostics {
	var errs source.Diagnostics
	for _, d := range migration.Check(def, s.reg.older(def.Name, s.reg.versionFor(def.Name, hashOf(def.Source)))) {
		if d.Severity == source.SevError {
			errs = append(errs, d)
		}
	}
	return errs
}

// loadStored compiles every stored version not loaded yet. A stored version that no longer validates
// (a later fsmd is stricter) is skipped and reported: its instances answer not_found until migrated.
func (s *Service) loadStored(ctx context.Context) error {
	rows, err := persistence.DefinitionListAll(ctx, s.db)
	if err != nil {
		return s.dbError(err)
	}
	// A version with child groups needs its children's definitions: the latest stored version of
	// each, parsed here on its own when it is not loaded yet (only its context is read).
	latest := map[string]persistence.DefinitionRow{}
	for _, row := range rows {
		if row.Version > latest[row.Name].Version {
			latest[row.Name] = row
		}
	}
	resolve := func(name string) *machine.Definition {
		if def := s.reg.latest(name); def != nil {
			return def
		}
		row, ok := latest[name]
		if !ok {
			return nil
		}
		def, _ := machine.Parse(row.Name+".yaml", []byte(row.Source))
		return def
	}
	for _, row := range rows {
		if def, _, err := s.reg.get(row.Name, row.Version); err == nil && def != nil {
			continue
		}
		def, diags := machine.ParseWith(row.Name+".yaml", []byte(row.Source), resolve)
		if diags.Errors() > 0 {
			s.log.Error("a stored definition version no longer validates; its instances cannot run",
				"definition", row.Name, "version", row.Version, "problems", (&machine.InvalidDefinitionError{Diagnostics: diags}).Error())
			continue
		}
		s.reg.add(row, def)
	}
	s.ready.Store(true)
	return nil
}

// Prepare emits the bytecode of every loaded definition's expressions, so that no request pays for
// it; serve runs it in the background after start.
func (s *Service) Prepare() {
	for _, name := range s.reg.names() {
		for _, row := range s.reg.all(name) {
			if def, _, err := s.reg.get(name, row.Version); err == nil {
				if err := def.Prepare(); err != nil {
					s.log.Error("preparing a definition", "definition", name, "version", row.Version, "error", err)
				}
			}
		}
	}
}
