package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Correlate (docs/operators.md, "Correlate"): a definition's `keys` are context fields unique among
// its running instances, enforced by a unique index each (persistence/ctxindex.go); an event may be
// sent to the running instance that has a key value (POST /v1/definitions/{name}/events).

// KeyExistsError: a write would give a running instance a key value that another running instance
// of its definition has: at a creation, a transition whose `set` changes the key, or a child's
// start (409 key_exists). Nothing was written.
type KeyExistsError struct {
	Definition, Key string
	Value           any // as the context holds it (JSON)
}

func (e *KeyExistsError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("a running instance of %s has this key already: a key is unique among running instances", e.Definition)
	}
	v, _ := json.Marshal(e.Value)
	return fmt.Sprintf("a running instance of %s has %s %s already: a key is unique among running instances", e.Definition, e.Key, v)
}

// Code is the error code.
func (e *KeyExistsError) Code() string { return code.KeyExists }

// keyConflict turns persistence's ErrKeyExists into KeyExistsError, naming the key and the value
// of the rows written (the instance, and the children started with it) that took it: of these, the
// first whose value a running instance has, else one that two of them share, else the first with
// one. Any other error is returned as it is.
func (s *Service) keyConflict(ctx context.Context, err error, rows []persistence.InstanceRow) error {
	index := persistence.KeyIndex(err)
	if index == "" {
		return err
	}
	type candidate struct {
		row   persistence.InstanceRow
		key   *machine.FieldRef
		value any
	}
	var cands []candidate
	for _, r := range rows {
		for _, k := range s.keysOf(r.Definition) {
			if persistence.KeyIndexName(r.Definition, ctxField(k)) != index {
				continue
			}
			if v, ok := contextValue(r.Context, k.Path); ok {
				cands = append(cands, candidate{r, k, v})
			}
		}
	}
	if len(cands) == 0 {
		return &KeyExistsError{Definition: strings.TrimPrefix(index, "fsmd_key_")}
	}
	pick := cands[0]
	seen := map[string]bool{}
	found := false
	for _, c := range cands {
		typed, derr := schema.Scalar(c.key.Kind).Decode(c.value, "", schema.Options{})
		if derr != nil {
			continue
		}
		if id, ferr := persistence.InstanceFindByKey(ctx, s.db, c.row.Definition, ctxField(c.key), typed); ferr == nil && id != c.row.ID {
			pick, found = c, true
			break
		}
		b, _ := json.Marshal(c.value)
		if seen[string(b)] && !found {
			pick, found = c, true
		}
		seen[string(b)] = true
	}
	return &KeyExistsError{Definition: pick.row.Definition, Key: pick.key.Name, Value: pick.value}
}

// keysOf is every key any loaded version of a definition declares: a key an older version
// declared keeps its index.
func (s *Service) keysOf(definition string) []*machine.FieldRef {
	var out []*machine.FieldRef
	seen := map[string]bool{}
	for _, row := range s.reg.all(definition) {
		def, _, err := s.reg.get(definition, row.Version)
		if err != nil {
			continue
		}
		for _, k := range def.Keys {
			if id := persistence.KeyIndexName(definition, ctxField(k)); !seen[id] {
				seen[id] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// contextValue is the JSON value at path in a stored context; false when there is none.
func contextValue(stored []byte, path []string) (any, bool) {
	m, err := decodeStored(stored)
	if err != nil {
		return nil, false
	}
	var v any = m
	for _, p := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[p]; !ok {
			return nil, false
		}
	}
	return v, true
}

// ensureIndexes creates the indexes of def's `index` and `keys` before its version is registered,
// so that a key holds from the version's first instance. Running instances that share a value of a
// new key refuse the version (invalid_definition at the key): the database could not enforce it.
func (s *Service) ensureIndexes(ctx context.Context, def *machine.Definition) error {
	if len(def.Keys) == 0 && len(def.Index) == 0 {
		return nil
	}
	err := persistence.CtxIndexesEnsure(ctx, s.db, ctxIndexes(def))
	var taken *persistence.KeyTakenError
	if errors.As(err, &taken) {
		for _, k := range def.Keys {
			if persistence.KeyIndexName(def.Name, ctxField(k)) == taken.Index {
				return &machine.InvalidDefinitionError{Diagnostics: source.Diagnostics{{File: def.File, Line: k.Pos.Line, Col: k.Pos.Col,
					Severity: source.SevError, Message: fmt.Sprintf("keys: running instances of %s share a value of %s, so it cannot be "+
						"unique; change or finish them first (GET /v1/instances?definition=%[1]s&ctx.%[2]s=VALUE finds them)", def.Name, k.Name)}}}
			}
		}
	}
	return s.dbError(err)
}

// InstanceByKey returns the id of the running instance of definition that has the key value key
// names (one entry: a key the definition's latest version declares, and its value). With an
// idempotencyKey, an instance that has finished since it took an event under that key is found
// too, so that a replay answers as by id. NotFoundError when there is none; BadRequestError for a
// key that is not one.
func (s *Service) InstanceByKey(ctx context.Context, definition string, key map[string]any, idempotencyKey string) (string, error) {
	def, _, err := s.reg.get(definition, 0)
	if err != nil {
		return "", err
	}
	names := make([]string, len(def.Keys))
	for i, k := range def.Keys {
		names[i] = k.Name
	}
	sort.Strings(names)
	if len(def.Keys) == 0 {
		return "", &BadRequestError{fmt.Sprintf("field key: definition %s declares no keys (keys: in its file)", definition)}
	}
	if len(key) != 1 {
		return "", &BadRequestError{fmt.Sprintf("field key must name one key and its value, as {%q: VALUE} (the keys of %s: %s)",
			names[0], definition, strings.Join(names, ", "))}
	}
	var (
		name string
		raw  any
	)
	for n, v := range key { // the one entry
		name, raw = n, v
	}
	k := def.Key(name)
	if k == nil {
		return "", &BadRequestError{fmt.Sprintf("field key: %s has no key %q (its keys: %s)", definition, name, strings.Join(names, ", "))}
	}
	if raw == nil { // an optional key field's null is no key, as its zero value is none
		return "", &BadRequestError{fmt.Sprintf("field key.%s is null: an instance without a key value cannot be found by it", name)}
	}
	value, err := schema.Scalar(k.Kind).Decode(raw, "key."+name, schema.Options{})
	if err != nil {
		return "", &BadRequestError{fmt.Sprintf("field %v", err)}
	}
	if isZero(value) {
		return "", &BadRequestError{fmt.Sprintf("field key.%s is empty (%v): an instance without a key value cannot be found by it", name, raw)}
	}
	id, err := persistence.InstanceFindByKey(ctx, s.db, definition, ctxField(k), value)
	if errors.Is(err, persistence.ErrNotFound) && idempotencyKey != "" {
		id, err = persistence.InstanceFindByKeyReplay(ctx, s.db, definition, ctxField(k), value, idempotencyKey)
	}
	if errors.Is(err, persistence.ErrNotFound) {
		return "", &NotFoundError{What: "running instance of " + definition + " with " + name, Key: fmt.Sprint(raw)}
	}
	if err != nil {
		return "", s.dbError(err)
	}
	return id, nil
}

// isZero reports whether a typed scalar is its type's zero value: the value of an instance created
// without a key, which the key's index leaves out (persistence's ctxZero).
func isZero(v any) bool {
	switch x := v.(type) {
	case time.Time:
		return x.IsZero()
	case string:
		return x == ""
	case int:
		return x == 0
	case int64:
		return x == 0
	case float64:
		return x == 0
	case bool:
		return !x
	case time.Duration:
		return x == 0
	}
	return v == nil
}

// KeyedEvent is the body of POST /v1/definitions/{name}/events: an event for the running instance
// of the definition that has a key value.
type KeyedEvent struct {
	// Key names one of the definition's keys and its value, typed as the context field: {"order_number": "A-17"}.
	Key     map[string]any `json:"key" validate:"required"`
	Event   string         `json:"event" validate:"required" minLength:"1" maxLength:"200"`
	Payload map[string]any `json:"payload,omitempty" extensions:"x-nullable"`
}
