package service

import (
	"context"
	"time"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// answer is the API's answer to an event written: the instance as next holds it, and the
// transition t. It is built from the values in hand rather than by decoding what was just encoded,
// in the canonical form a replay reads back (decodeStored), so that both are the same bytes.
func answer(l loaded, next persistence.InstanceRow, t *machine.Transition, now time.Time) EventResult {
	after := canonicalNumbers(encodeMap(t.ContextAfter)).(map[string]any)
	guards := t.Guards
	if guards == nil {
		guards = []machine.GuardResult{}
	}
	tr := Transition{Seq: next.Revision, Event: t.Event, From: t.From, To: t.To, Branch: t.Branch, Guards: guards,
		Payload:       canonicalNumbers(encodeMap(t.Payload)).(map[string]any),
		ContextBefore: canonicalNumbers(encodeMap(t.ContextBefore)).(map[string]any),
		ContextAfter:  after, At: now}
	return EventResult{Instance: instanceOf(l.def, next, after), Transition: tr}
}

// replay rebuilds the first answer to an idempotency key from its audit row: the instance as that
// transition left it, and the transition.
func (s *Service) replay(ctx context.Context, l loaded, prev audit.Row) (EventResult, error) {
	def, _, err := s.reg.get(l.row.Definition, prev.DefinitionVersion)
	if err != nil {
		return EventResult{}, err
	}
	then := l.row
	then.Version, then.State, then.Context, then.Revision = prev.DefinitionVersion, prev.To, prev.ContextAfter, prev.Seq
	then.Final, then.UpdatedAt, then.EnteredAt = def.Final(prev.To), prev.At, prev.At
	if stayed(def, prev) {
		if then.EnteredAt, err = s.enteredBefore(ctx, l, prev); err != nil {
			return EventResult{}, err
		}
	}
	inst, err := toInstance(def, then)
	if err != nil {
		return EventResult{}, err
	}
	tr, err := toTransition(prev)
	return EventResult{Instance: inst, Transition: tr}, err
}

// stayed reports whether the audit row r of an event is a stay: its branch, in the version it was
// taken in, has no `to`.
func stayed(def *machine.Definition, r audit.Row) bool {
	if r.From != r.To || r.Branch < 0 || r.Dropped != "" || r.Source == audit.SourceMigration {
		return false
	}
	st := def.States[r.From]
	if st == nil || st.On[r.Event] == nil || r.Branch >= len(st.On[r.Event].Branches) {
		return false
	}
	return st.On[r.Event].Branches[r.Branch].Stays()
}

// enteredBefore is when the instance of l had entered the state that the stay prev did not leave:
// its entered_at now, unless it has entered a state since; then the time of the last transition
// before prev that entered one (or its creation), read from its history.
func (s *Service) enteredBefore(ctx context.Context, l loaded, prev audit.Row) (time.Time, error) {
	if !l.row.EnteredAt.After(prev.At) {
		return l.row.EnteredAt, nil
	}
	seq, entered := prev.Seq, l.row.CreatedAt
	for after := int64(0); after < seq-1; {
		rows, err := audit.History(ctx, s.db, l.row.ID, after, 500, 0)
		if err != nil || len(rows) == 0 {
			return entered, err
		}
		for _, r := range rows {
			if r.Seq >= seq {
				return entered, nil
			}
			if r.Dropped != "" || r.Source == audit.SourceMigration { // neither enters a state
				continue
			}
			def, _, err := s.reg.get(l.row.Definition, r.DefinitionVersion)
			if err != nil {
				return time.Time{}, err
			}
			if !stayed(def, r) {
				entered = r.At
			}
		}
		after = rows[len(rows)-1].Seq
	}
	return entered, nil
}
