package tests

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

// apiStayDefinition has a branch without `to` (note: stay), one that names its own state (reopen:
// re-enter), and a timer in that state.
const apiStayDefinition = `name: desk
initial: open
context:
  notes: int
events:
  note: {text: string}
states:
  open:
    on:
      note:
        set: {notes: ctx.notes + 1}
      reopen: open
      close: closed
    timers:
      - after: 1h
        event: close
  closed: {final: true}
`

// apiTimers is an instance with its pending timers (GET /v1/instances/{id}).
type apiTimers struct {
	apiInstance
	Timers []struct {
		Event string    `json:"event"`
		DueAt time.Time `json:"due_at"`
	} `json:"timers"`
}

// TestStayInState: a branch without `to` keeps the instance in its state without leaving it: its
// entered_at and its pending timer are kept, its set applies and a history row with from = to is
// written; a branch naming the state itself still re-enters it and re-arms its timer.
func TestStayInState(t *testing.T) {
	t.Parallel()
	apiEach(t, func(t *testing.T, env *apiEnv) {
		apiWant[map[string]any](t, env.do(t, "PUT", "/v1/definitions/desk", []byte(apiStayDefinition),
			"Content-Type", "application/yaml"), http.StatusCreated)
		created := env.create(t, "desk", "desk-1", nil)
		get := func() apiTimers {
			return apiWant[apiTimers](t, env.do(t, "GET", apiPath("/v1/instances/%s", "desk-1"), nil), http.StatusOK)
		}
		before := get()
		if len(before.Timers) != 1 || before.Timers[0].Event != "close" {
			t.Fatalf("timers after creation: %+v", before.Timers)
		}
		time.Sleep(20 * time.Millisecond) // so that a new entered_at or deadline would differ

		// A stay, sent twice under one key: the replay gives the same answer.
		first := env.mustFire(t, "desk-1", "note", map[string]any{"text": "hello"}, "Idempotency-Key", "note-1")
		replay := env.mustFire(t, "desk-1", "note", map[string]any{"text": "hello"}, "Idempotency-Key", "note-1")
		for _, res := range []apiEventResult{first, replay} {
			if tr := res.Transition; tr.From != "open" || tr.To != "open" || tr.Event != "note" {
				t.Errorf("the stay's transition: %s -> %s (%s)", tr.From, tr.To, tr.Event)
			}
			if !res.Instance.EnteredAt.Equal(created.EnteredAt) {
				t.Errorf("the stay's answer has entered_at %v, want %v (as created)", res.Instance.EnteredAt, created.EnteredAt)
			}
			if res.Instance.Context["notes"] != 1.0 {
				t.Errorf("the stay's set: notes = %v, want 1", res.Instance.Context["notes"])
			}
		}
		after := get()
		if after.State != "open" || after.Revision != 1 || !after.EnteredAt.Equal(created.EnteredAt) {
			t.Errorf("after the stay: state %s revision %d entered_at %v, want open 1 %v", after.State, after.Revision, after.EnteredAt, created.EnteredAt)
		}
		if !reflect.DeepEqual(after.Timers, before.Timers) {
			t.Errorf("the stay changed the timers: %+v, want %+v", after.Timers, before.Timers)
		}
		h := env.history(t, "desk-1", 0)
		if len(h) != 1 || h[0].From != "open" || h[0].To != "open" || h[0].Event != "note" || h[0].Seq != 1 {
			t.Fatalf("history: %+v", h)
		}

		// A re-entry: entered_at moves to its time, the timer is re-armed from then.
		re := env.mustFire(t, "desk-1", "reopen", nil)
		again := get()
		if !again.EnteredAt.Equal(re.Transition.At) || !again.EnteredAt.After(created.EnteredAt) {
			t.Errorf("after the re-entry: entered_at %v, want %v", again.EnteredAt, re.Transition.At)
		}
		if len(again.Timers) != 1 || !again.Timers[0].DueAt.Equal(re.Transition.At.Add(time.Hour)) {
			t.Errorf("after the re-entry: timers %+v, want close at %v", again.Timers, re.Transition.At.Add(time.Hour))
		}

		// A replay of the stay once the instance has re-entered its state still shows the
		// entered_at the stay kept.
		late := env.mustFire(t, "desk-1", "note", map[string]any{"text": "hello"}, "Idempotency-Key", "note-1")
		if !late.Instance.EnteredAt.Equal(created.EnteredAt) || late.Transition.Seq != 1 {
			t.Errorf("a late replay: entered_at %v seq %d, want %v 1", late.Instance.EnteredAt, late.Transition.Seq, created.EnteredAt)
		}
	})
}
