package service

import (
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
func (s *Service) replay(l loaded, prev audit.Row) (EventResult, error) {
	def, _, err := s.reg.get(l.row.Definition, prev.DefinitionVersion)
	if err != nil {
		return EventResult{}, err
	}
	then := l.row
	then.Version, then.State, then.Context, then.Revision = prev.DefinitionVersion, prev.To, prev.ContextAfter, prev.Seq
	then.Final, then.UpdatedAt, then.EnteredAt = def.Final(prev.To), prev.At, prev.At
	inst, err := toInstance(def, then)
	if err != nil {
		return EventResult{}, err
	}
	tr, err := toTransition(prev)
	return EventResult{Instance: inst, Transition: tr}, err
}
