// Package machine is fsmd's pure core: the definition model, its loader and validation, and the
// engine that decides what an event does to an instance. It imports no database or HTTP code and
// has no clock: time is passed in.
//
// Loading a definition file:
//
//	YAML bytes ──source.Walk──▶ nodes with line:col ──parse──▶ Definition (schemas, states, branches)
//	                                                   │        expressions compiled by guards
//	                                                   ▼
//	                                    validate: references, graph warnings ──▶ Diagnostics
//
// Firing an event (Fire), the step every caller goes through:
//
//	event, payload, Snapshot, now
//	   │
//	   ├─ unknown to the definition? ─────────────────▶ UnknownEventError      (unknown_event)
//	   ├─ state final? ───────────────────────────────▶ InstanceFinalError     (instance_final)
//	   ├─ state does not handle it? ──────────────────▶ InvalidTransitionError (invalid_transition)
//	   ├─ payload does not fit its schema? ───────────▶ InvalidPayloadError    (invalid_payload)
//	   ├─ branches in order: first guard that holds
//	   │     none ────────────────────────────────────▶ GuardRejectedError     (guard_rejected)
//	   ├─ `set`: every expression on the context before, then the new context
//	   ├─ looplab/fsm executes the branch's transition (one pooled FSM per call)
//	   └─ timers: cancel the left state's, arm the entered state's
//	   ▼
//	Transition{From, To, Branch, Guards, ContextBefore, ContextAfter, Cancel, Arm}
//
// looplab/fsm knows one destination per (event, source state), and fsmd has ordered branches, so each
// branch is a looplab event of its own ("pay#0", "pay#1"): the branch is chosen above looplab by the
// guards, and looplab performs the state change.
package machine
