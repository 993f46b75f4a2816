// Package explore walks a definition from its initial state with generated events, breadth-first
// and bounded, to find the states no event sequence reaches (`fsmd test --explore`): which states
// were reached and by which shortest sequence, which were not and the guard that kept them out,
// and which events only ever failed with expression_failed.
//
// Events come from each event's payload schema: boundary values of each type, every enum value,
// nil for optional fields, and the constants the guards compare fields with (consts.go, values.go).
// Instances start from a bounded set of initial contexts built the same way. The walk (walk.go)
// drives the real engine (machine.Limits.FireAs) the way a transition table does, so that a
// sequence it finds can be written as a case of one (cases.go).
package explore
