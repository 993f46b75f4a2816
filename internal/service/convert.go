package service

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// Contexts are stored as the JSON the API shows (schema.Encode of the typed values) and typed again by
// the definition's schema when an event needs them.

// encodeContext encodes a new instance's context, its defaults filled in: one over the bound of a
// context (schema.CheckContext) is invalid_context, and nothing is written.
func encodeContext(ctx map[string]any) ([]byte, error) {
	b, err := schema.CheckContext(ctx)
	if err != nil {
		return nil, &machine.InvalidContextError{Err: err}
	}
	return b, nil
}

func encodeMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return schema.Encode(m).(map[string]any)
}

// decodeStored reads a stored JSON object with its numbers in one canonical form, whatever text the
// database kept (PostgreSQL's jsonb writes 1e-7 as 0.0000001 and 1E3 as 1000; SQLite keeps the
// text), so that an answer reads the same from either database, first or replayed: integers as
// exact integers (an int beyond 2^53 survives), other numbers as float64.
func decodeStored(data []byte) (map[string]any, error) {
	m := map[string]any{}
	if len(data) == 0 {
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("a stored JSON value is corrupt: %w", err)
	}
	return canonicalNumbers(m).(map[string]any), nil
}

func canonicalNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return json.Number(strconv.FormatInt(n, 10))
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
	case map[string]any:
		for k, e := range x {
			x[k] = canonicalNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = canonicalNumbers(e)
		}
	}
	return v
}

// snapshot types a stored instance for the engine.
func snapshot(def *machine.Definition, row persistence.InstanceRow) (machine.Snapshot, error) {
	raw, err := decodeStored(row.Context)
	if err != nil {
		return machine.Snapshot{}, err
	}
	typed, err := def.Context.Decode(raw, "ctx", schema.Options{})
	if err != nil {
		return machine.Snapshot{}, fmt.Errorf("instance %s: its stored context does not fit %s version %d: %w", row.ID, def.Name, row.Version, err)
	}
	return machine.Snapshot{ID: row.ID, Version: row.Version, State: row.State, Context: typed.(map[string]any),
		CreatedAt: row.CreatedAt, EnteredAt: row.EnteredAt, Depth: row.Depth,
		Parent: machine.Parent{ID: row.ParentID, Group: row.ParentGroup, Index: row.ParentIndex, Rev: row.ParentRev, OnFinal: row.OnFinal}}, nil
}

func toInstance(def *machine.Definition, row persistence.InstanceRow) (Instance, error) {
	ctx, err := decodeStored(row.Context)
	if err != nil {
		return Instance{}, err
	}
	return instanceOf(def, row, ctx), nil
}

// instanceOf is the API form of a row whose context is given in its JSON form.
func instanceOf(def *machine.Definition, row persistence.InstanceRow, ctx map[string]any) Instance {
	events := def.Handles(row.State)
	if events == nil {
		events = []string{}
	}
	inst := Instance{ID: row.ID, Definition: row.Definition, Version: row.Version, State: row.State, Context: ctx,
		Final: row.Final, Revision: row.Revision, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt,
		EnteredAt: row.EnteredAt, Events: events}
	if row.ParentID != "" {
		inst.Parent = &ParentRef{ID: row.ParentID, Group: row.ParentGroup, Index: row.ParentIndex}
	}
	inst.Assignees, inst.Suspended, inst.Terminated = row.Assignees, row.Suspended, row.Terminated
	if !row.DueAt.IsZero() {
		due := row.DueAt
		inst.DueAt = &due
	}
	return inst
}

// encodeTransition makes the audit row of an accepted transition (without source, ids and time).
func encodeTransition(l loaded, t *machine.Transition, seq int64) (audit.Row, error) {
	// The context before is the instance's stored context: its bytes are in hand, not to be encoded again.
	row := audit.Row{InstanceID: l.row.ID, Seq: seq, Event: t.Event, From: t.From, To: t.To, Branch: t.Branch,
		DefinitionVersion: l.row.Version, ContextBefore: l.row.Context}
	guards := t.Guards
	if guards == nil {
		guards = []machine.GuardResult{}
	}
	// So is the context after: the engine encoded it when a `set` built it, and without one it is
	// the context before.
	row.ContextAfter = t.ContextAfterJSON
	if row.ContextAfter == nil {
		row.ContextAfter = l.row.Context
	}
	var err error
	if row.Guards, err = json.Marshal(guards); err != nil {
		return audit.Row{}, err
	}
	if row.Payload, err = json.Marshal(schema.Encode(orEmpty(t.Payload))); err != nil {
		return audit.Row{}, err
	}
	return row, nil
}

func toTransition(r audit.Row) (Transition, error) {
	t := Transition{Seq: r.Seq, Event: r.Event, From: r.From, To: r.To, Branch: r.Branch, At: r.At, Guards: []machine.GuardResult{}}
	if err := json.Unmarshal(r.Guards, &t.Guards); err != nil && len(r.Guards) > 0 {
		return Transition{}, fmt.Errorf("a stored audit row is corrupt: %w", err)
	}
	var err error
	if t.Payload, err = decodeStored(r.Payload); err != nil {
		return Transition{}, err
	}
	if t.ContextBefore, err = decodeStored(r.ContextBefore); err != nil {
		return Transition{}, err
	}
	if t.ContextAfter, err = decodeStored(r.ContextAfter); err != nil {
		return Transition{}, err
	}
	return t, nil
}

func toHistory(r audit.Row) (HistoryEntry, error) {
	t, err := toTransition(r)
	if err != nil {
		return HistoryEntry{}, err
	}
	return HistoryEntry{Seq: r.Seq, Event: r.Event, From: r.From, To: r.To, Payload: t.Payload,
		ContextBefore: t.ContextBefore, ContextAfter: t.ContextAfter, Source: r.Source, RequestID: r.RequestID,
		IdempotencyKey: r.IdempotencyKey, DefinitionVersion: r.DefinitionVersion, FromVersion: r.FromVersion, At: r.At,
		Dropped: r.Dropped, Actor: r.Actor, ActorKind: r.ActorKind}, nil
}

// requestHash identifies a request's content, to tell a replay from another request under the same
// key. encoding/json writes map keys sorted, so equal content hashes equal.
func requestHash(v any) string {
	b, _ := json.Marshal(canonical(v))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonical writes numbers as the values they are, so that 1 and 1.0 (json.Number keeps the text)
// are the same request.
func canonical(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = canonical(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = canonical(e)
		}
		return l
	}
	return v
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
