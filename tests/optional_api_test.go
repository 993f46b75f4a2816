package tests

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Optional values and enumerations through the API (docs/definitions.md, "Optional values and
// enumerations"), on both databases: an unset optional field reads null, a `set` gives it a value
// and nil clears it; a value outside an enumeration is refused at the edge, naming the field; a
// null key is no key (two instances without one do not clash), and a ctx filter never matches null.

const optionalMember = `name: member
initial: open
context:
  number: string?
  tier: {type: string, enum: [basic, silver, gold]}
  paid_at: time?
keys: [number]
index: [paid_at, tier]
events:
  pay: {at: time}
  upgrade:
    to: {type: string, enum: [basic, silver, gold]}
states:
  open:
    on:
      pay: {set: {paid_at: event.at}}
      unpay: {set: {paid_at: nil}}
      upgrade: {set: {tier: event.to}}
      close: closed
  closed: {final: true}
`

func TestOptionalAndEnumAPI(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		if r := env.putDefinition(t, "member", optionalMember); r.status != http.StatusCreated {
			t.Fatalf("PUT member: %s", r)
		}
		isNull := func(what string, ctx map[string]any, field string) {
			t.Helper()
			if v, ok := ctx[field]; !ok || v != nil {
				t.Errorf("%s: ctx.%s = %#v (present %v), want null", what, field, v, ok)
			}
		}
		// The payload's JSON Schema lists the enumeration's values.
		def := apiRaw(t, env.do(t, "GET", "/v1/definitions/member", nil))
		to := def["payloads"].(map[string]any)["upgrade"].(map[string]any)["properties"].(map[string]any)["to"]
		if b, _ := json.Marshal(to); string(b) != `{"enum":["basic","silver","gold"],"type":"string"}` {
			t.Errorf("the JSON Schema of upgrade's to: %s", b)
		}
		m1 := env.create(t, "member", "m1", nil)
		isNull("created", m1.Context, "paid_at")
		isNull("created", m1.Context, "number")
		if m1.Context["tier"] != "basic" {
			t.Errorf("created: tier %v, want basic (the first value)", m1.Context["tier"])
		}
		// A second instance without a number: a null key is no key, no clash. An explicit null too.
		env.create(t, "member", "m2", map[string]any{"paid_at": nil, "number": nil, "tier": "gold"})
		env.create(t, "member", "m3", map[string]any{"number": "A-1"})
		apiProblemOf(t, env.do(t, "POST", "/v1/instances", map[string]any{"definition": "member", "context": map[string]any{"number": "A-1"}}),
			http.StatusConflict, "key_exists")

		// No instance is found by a null key.
		p := apiProblemOf(t, env.do(t, "POST", "/v1/definitions/member/events", map[string]any{"key": map[string]any{"number": nil}, "event": "close"}),
			http.StatusBadRequest, "invalid_request")
		if !strings.Contains(p.Detail, "key.number is null") {
			t.Errorf("a null key: detail %q", p.Detail)
		}
		apiWant[apiEventResult](t, env.do(t, "POST", "/v1/definitions/member/events", map[string]any{"key": map[string]any{"number": "A-1"}, "event": "upgrade",
			"payload": map[string]any{"to": "silver"}}), http.StatusOK)

		p = apiProblemOf(t, env.do(t, "POST", "/v1/instances", map[string]any{"definition": "member", "context": map[string]any{"tier": "platinum"}}),
			http.StatusUnprocessableEntity, "invalid_context")
		if !strings.Contains(p.Detail, "tier") || !strings.Contains(p.Detail, `expected one of ["basic", "silver", "gold"], got "platinum"`) {
			t.Errorf("invalid_context detail %q", p.Detail)
		}
		p = apiProblemOf(t, env.fire(t, "m1", "upgrade", map[string]any{"to": "platinum"}), http.StatusUnprocessableEntity, "invalid_payload")
		if !strings.Contains(p.Detail, `to: expected one of ["basic", "silver", "gold"], got "platinum"`) {
			t.Errorf("invalid_payload detail %q", p.Detail)
		}
		p = apiProblemOf(t, env.fire(t, "m1", "pay", map[string]any{"at": nil}), http.StatusUnprocessableEntity, "invalid_payload")
		if !strings.Contains(p.Detail, "at: expected time, got null") {
			t.Errorf("a null for a plain time: detail %q", p.Detail)
		}
		if got := env.instance(t, "m1"); got.Revision != m1.Revision {
			t.Errorf("a refused event changed the instance: revision %d, was %d", got.Revision, m1.Revision)
		}

		env.mustFire(t, "m1", "pay", map[string]any{"at": "2026-03-01T09:00:00Z"})
		if got := env.instance(t, "m1").Context["paid_at"]; got != "2026-03-01T09:00:00Z" {
			t.Errorf("after pay: paid_at %#v", got)
		}
		// A filter matches the value set, never a null.
		if got := env.listIDs(t, "definition", "member", "ctx.paid_at[gte]", "2000-01-01T00:00:00Z"); !slices.Equal(got, []string{"m1"}) {
			t.Errorf("ctx.paid_at[gte]: %v, want [m1]", got)
		}
		if got := env.listIDs(t, "definition", "member", "ctx.tier", "gold"); !slices.Equal(got, []string{"m2"}) {
			t.Errorf("ctx.tier=gold: %v, want [m2]", got)
		}
		env.mustFire(t, "m1", "unpay", nil)
		isNull("after unpay", env.instance(t, "m1").Context, "paid_at")
		if got := env.listIDs(t, "definition", "member", "ctx.paid_at[gte]", "2000-01-01T00:00:00Z"); len(got) != 0 {
			t.Errorf("ctx.paid_at[gte] after unpay: %v, want none", got)
		}
		// The history keeps the nulls too.
		h := env.history(t, "m1", 0)
		if last := h[len(h)-1]; last.ContextAfter == nil {
			t.Errorf("history: %+v", last)
		} else {
			isNull("history", last.ContextAfter, "paid_at")
		}
	})
}

// TestOptionalAndEnumMigrationAPI: version 2 of member drops gold from the tier enumeration and
// adds an optional field. A migration moves the basic and silver members (each decided in Go: the
// tier's type changed) and strands the gold one as context_invalid, naming the field; the moved ones
// keep their nulls and times and read the new field as null.
func TestOptionalAndEnumMigrationAPI(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		if r := env.putDefinition(t, "member", optionalMember); r.status != http.StatusCreated {
			t.Fatalf("PUT member: %s", r)
		}
		env.create(t, "member", "m1", nil)
		env.create(t, "member", "m2", map[string]any{"tier": "gold"})
		env.create(t, "member", "m3", map[string]any{"tier": "silver", "paid_at": "2026-03-01T09:00:00Z"})
		v2 := strings.Replace(optionalMember, "tier: {type: string, enum: [basic, silver, gold]}",
			"tier: {type: string, enum: [basic, silver]}\n  left_at: time?", 1)
		v2 = strings.Replace(v2, "to: {type: string, enum: [basic, silver, gold]}", "to: {type: string, enum: [basic, silver]}", 1)
		v2 += "migrate:\n  policy: manual\n"
		if r := env.putDefinition(t, "member", v2); r.status != http.StatusCreated {
			t.Fatalf("PUT member version 2: %s", r)
		}
		done := env.awaitMigration(t, env.startMigration(t, "member", nil).ID)
		if done.Status != "done" || done.Migrated != 2 || done.Stranded != 1 || done.Result == nil || len(done.Result.Stranded) != 1 {
			t.Fatalf("the migration: %+v", done)
		}
		s := done.Result.Stranded[0]
		if s.Reason != "context_invalid" || !slices.Equal(s.Sample, []string{"m2"}) ||
			!strings.Contains(s.Detail, `ctx.tier: expected one of ["basic", "silver"], got "gold"`) {
			t.Errorf("stranded: %+v", s)
		}
		for id, want := range map[string]any{"m1": nil, "m3": "2026-03-01T09:00:00Z"} {
			got := env.instance(t, id)
			if v, ok := got.Context["left_at"]; got.Version != 2 || !ok || v != nil || got.Context["paid_at"] != want {
				t.Errorf("%s after the migration: version %d, context %v", id, got.Version, got.Context)
			}
		}
		if got := env.instance(t, "m2"); got.Version != 1 || got.Context["tier"] != "gold" {
			t.Errorf("m2 after the migration: version %d, context %v", got.Version, got.Context)
		}

		// Version 3 only adds a field: every other is of the same type, so that PostgreSQL moves the
		// instances in one statement, their nulls being of the context's shape; m2, on version 1,
		// still holds gold and stays.
		v3 := strings.Replace(v2, "  left_at: time?", "  left_at: time?\n  note: string?", 1)
		if r := env.putDefinition(t, "member", v3); r.status != http.StatusCreated {
			t.Fatalf("PUT member version 3: %s", r)
		}
		done = env.awaitMigration(t, env.startMigration(t, "member", nil).ID)
		if done.Status != "done" || done.Migrated != 2 || done.Stranded != 1 {
			t.Fatalf("the migration to version 3: %+v", done)
		}
		for id, want := range map[string]any{"m1": nil, "m3": "2026-03-01T09:00:00Z"} {
			got := env.instance(t, id)
			note, ok := got.Context["note"]
			if got.Version != 3 || !ok || note != nil || got.Context["left_at"] != nil || got.Context["paid_at"] != want {
				t.Errorf("%s after the migration to version 3: version %d, context %v", id, got.Version, got.Context)
			}
		}
	})
}
