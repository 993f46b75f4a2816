// Package outbox announces accepted transitions to the webhooks of their definition's `notify`
// section: a transactional outbox. [Rows] builds the deliveries of one transition, which the event
// path inserts (persistence.OutboxInsert) in the transaction that accepts the transition, so a
// transition is announced if and only if it happened. A [Dispatcher] in every process delivers
// them as signed HTTP POSTs, at least once, in seq order per instance and webhook.
//
// The life of one delivery (one outbox row):
//
//	             Rows + OutboxInsert (with the transition)
//	                          │
//	                          ▼
//	┌──────────────────▶  pending  ◀───────────── POST /v1/outbox/dead/{id}/redrive
//	│                         │                   (attempts from 0)            ▲
//	│ due at now + backoff    │ claimed when due, when no earlier row of its   │
//	│ (full jitter)           │ instance and webhook is pending, and its       │
//	│                         │ destination's breaker lets it through          │
//	│                         ▼                                                │
//	└──── failed ◀─────── POST ───────▶ 2xx: delivered (the row is deleted)    │
//	  (non-2xx, timeout,      │                                                │
//	   connection error)      └──── refused destination, or MaxAttempts ─▶ dead
//
// A claim moves the row's next_try_at to the end of a lease (Config.Lease, longer than an
// attempt can take) and marks it with a random token: no other dispatcher claims it meanwhile,
// and if its dispatcher dies the row is due again when the lease ends (delivered once more: at
// least once). On PostgreSQL concurrent claims lock FOR UPDATE SKIP LOCKED; SQLite has one
// writer.
//
// Each destination (scheme://host:port) has a circuit breaker per process: after
// Config.BreakerThreshold consecutive failed attempts it opens, and the dispatcher claims no row
// of that destination for Config.BreakerCooldown; then one attempt goes through (half-open), and
// its success closes the breaker, its failure opens it again. A dead receiver thus costs a few
// attempts per cool-down, and the other destinations keep their deliveries flowing.
//
// Destinations are checked when connecting (net.Dialer.Control), after DNS resolution, so a name
// that resolves (or rebinds) to a refused address is refused: link-local addresses and cloud
// metadata services always, unless Config.Allow names them; Config.Deny adds networks (such as
// PrivateNetworks).
package outbox
