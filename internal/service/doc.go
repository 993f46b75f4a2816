// Package service is fsmd's event path and the place that owns database transactions: it checks
// If-Match and Idempotency-Key, fires the event through the pure engine, and writes the instance's
// update with its audit row together, with one `now`.
//
// The path of one event, file by file:
//
//	POST /v1/instances/{id}/events
//	  server/instances.go   decode the body; authenticated and given a request id by the middleware
//	  service/event.go      SendEvent: the instance's turn, then the loop below, its retries in one place
//	  service/snapshot.go     what to decide on: the cached row, or a read (+ the key's earlier answer)
//	  service/decide.go       If-Match, then machine.Fire (internal/machine: pure; no lock held)
//	  service/write.go        the update + audit row (+ timers, outbox), if still at the revision read:
//	                          persistence.InstanceAdvance, one statement (PostgreSQL) or a short
//	                          transaction (SQLite); moved on -> decide again on a fresh read
//	  service/group.go          ... queued, and written with the events of other instances queued at
//	                          the same time in one transaction (group commit: one flush for all;
//	                          persistence.AdvanceGroup); answered once that commits
//	  service/answer.go     -> 200 {instance, transition} (a replay: rebuilt from the audit row)
//
// Who owns transactions: this package, for everything an API request, a timer, a message, a
// migration or a registration writes (CreateInstance, the event path through
// persistence.InstanceAdvance, the timers' batches (timers_batch.go) and their single firings, a
// message's delivery or drop with its deletion (messages.go), a migration's record, each of its
// batches with its progress, and its end (migrate_run.go), definition registration, outbox
// re-drives, the stats rollup), so that what
// one step writes commits or fails whole, with one `now`; each store function in persistence takes
// the transaction it is handed and begins none, except InstanceAdvance on the database itself, whose
// one write is its own transaction, and AdvanceGroup, the group commit's transaction of several
// events' writes (group.go). The one other owner is the outbox's dispatcher
// (internal/outbox), which claims its deliveries and records their outcomes in transactions of its
// own: it runs apart from any request, and what it writes is only the outbox's (and, with a dead
// letter, the message of its webhook's on_dead: ondead.go).
package service
