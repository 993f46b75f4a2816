package persistence

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/lib/pq"
)

// The statuses of an outbox row. A delivered row is deleted, so it has none.
//
// The rows of one instance and webhook form a chain in seq order: at most one of them is pending
// (the earliest), the later ones wait, and when the pending one is delivered or dead the earliest
// waiting one becomes pending. The dispatchers claim only pending rows, so an instance's
// deliveries to a webhook go out in seq order, and a claim never looks at a row that has to wait.
const (
	OutboxWaiting = "waiting" // an earlier row of its instance and webhook is pending
	OutboxPending = "pending" // to deliver, due at NextTryAt
	OutboxDead    = "dead"    // given up on: a dead letter, until re-driven
)

// OutboxRow is one webhook delivery of an accepted transition (the outbox table): package outbox
// builds the rows of a transition, which the event path inserts with the transition, and its
// dispatcher delivers them.
type OutboxRow struct {
	ID          string // the delivery id: unique, stable across attempts
	InstanceID  string
	Seq         int64 // of the transition announced
	Definition  string
	Version     int
	Webhook     string // the webhook's name in the definition's notify section
	URL         string
	Destination string // scheme://host:port of URL: the unit of the dispatcher's circuit breaker
	Body        []byte // the JSON sent, byte for byte, on every attempt
	Status      string // OutboxWaiting, OutboxPending or OutboxDead
	Attempts    int    // failed attempts so far
	NextTryAt   time.Time
	Claim       string // the token of the claim holding the row; "" for none
	LastError   string
	LastTryAt   time.Time // zero before the first failed attempt
	CreatedAt   time.Time
}

type outboxRow struct {
	ID          string  `db:"id"`
	InstanceID  string  `db:"instance_id"`
	Seq         int64   `db:"seq"`
	Definition  string  `db:"definition"`
	Version     int     `db:"version"`
	Webhook     string  `db:"webhook"`
	URL         string  `db:"url"`
	Destination string  `db:"destination"`
	Body        []byte  `db:"body"`
	Status      string  `db:"status"`
	Attempts    int     `db:"attempts"`
	NextTryAt   dbTime  `db:"next_try_at"`
	Claim       *string `db:"claim"`
	LastError   string  `db:"last_error"`
	LastTryAt   dbTime  `db:"last_try_at"` // NULL scans as the zero time
	CreatedAt   dbTime  `db:"created_at"`
}

func (r outboxRow) row() OutboxRow {
	o := OutboxRow{ID: r.ID, InstanceID: r.InstanceID, Seq: r.Seq, Definition: r.Definition, Version: r.Version,
		Webhook: r.Webhook, URL: r.URL, Destination: r.Destination, Body: r.Body, Status: r.Status,
		Attempts: r.Attempts, NextTryAt: r.NextTryAt.Time(), LastError: r.LastError,
		LastTryAt: r.LastTryAt.Time(), CreatedAt: r.CreatedAt.Time()}
	if r.Claim != nil {
		o.Claim = *r.Claim
	}
	return o
}

func outboxRows(rows []outboxRow) []OutboxRow {
	out := make([]OutboxRow, len(rows))
	for i, r := range rows {
		out[i] = r.row()
	}
	return out
}

const outboxColumns = `id, instance_id, seq, definition, version, webhook, url, destination, body, status, ` +
	`attempts, next_try_at, claim, last_error, last_try_at, created_at`

// outboxInsertColumns are those OutboxInsert writes; the others start at their defaults (no
// attempt, no claim, no error).
const outboxInsertColumns = `id, instance_id, seq, definition, version, webhook, url, destination, body, status, next_try_at, created_at`

// chain names the rows of one instance and webhook.
type chain struct{ instance, webhook string }

// OutboxInsert inserts the deliveries of a transition, due at their NextTryAt, with the caller's
// transaction, the one that records the transition. A row is pending when its instance and webhook
// have no pending or waiting row yet, waiting otherwise (rows of one call are ordered by seq).
// ErrConflict when a row's id or its (instance, webhook, seq) is taken; the transaction stays
// usable.
//
// On PostgreSQL the last pending or waiting row of each instance and webhook is locked (FOR
// UPDATE) to decide, so that a dispatcher finishing that row concurrently either sees the new row
// (and makes it pending) or is seen to have finished it.
func OutboxInsert(ctx context.Context, tx *Tx, rows []OutboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	d := tx.Dialect
	order := make([]int, len(rows))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rows[order[a]].Seq < rows[order[b]].Seq })
	var chains []chain
	seen := map[chain]bool{}
	for _, i := range order {
		c := chain{rows[i].InstanceID, rows[i].Webhook}
		if !seen[c] {
			seen[c] = true
			chains = append(chains, c)
		}
	}
	busy, err := outboxBusy(ctx, tx, chains)
	if err != nil {
		return err
	}
	status := make([]string, len(rows))
	for _, i := range order {
		c := chain{rows[i].InstanceID, rows[i].Webhook}
		status[i] = OutboxPending
		if busy[c] {
			status[i] = OutboxWaiting
		}
		busy[c] = true
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO outbox (` + outboxInsertColumns + `) VALUES `)
	args := make([]any, 0, 12*len(rows))
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, r.ID, r.InstanceID, r.Seq, r.Definition, r.Version, r.Webhook, r.URL, r.Destination,
			string(r.Body), status[i], timeArg(d, r.NextTryAt), timeArg(d, r.CreatedAt))
	}
	b.WriteString(" ON CONFLICT DO NOTHING")
	res, err := execContext(ctx, tx, b.String(), args...)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: insert %d outbox rows of instance %q: %w", len(rows), rows[0].InstanceID, err)))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("persistence: rows affected: %w", err)
	}
	if n != int64(len(rows)) {
		return fmt.Errorf("persistence: outbox rows of instance %q transition %d exist already: %w", rows[0].InstanceID, rows[0].Seq, ErrConflict)
	}
	return nil
}

// outboxBusy returns the chains that have a pending or waiting row, locking (PostgreSQL) the last
// of each.
func outboxBusy(ctx context.Context, tx *Tx, chains []chain) (map[chain]bool, error) {
	var found []chainRow
	var err error
	switch {
	case tx.db.Citus:
		found, err = outboxBusyRouted(ctx, tx, chains)
	case tx.Dialect == Postgres:
		instances, webhooks := make([]string, len(chains)), make([]string, len(chains))
		for i, c := range chains {
			instances[i], webhooks[i] = c.instance, c.webhook
		}
		err = selectContext(ctx, tx, &found, `SELECT c.instance_id, c.webhook
			FROM unnest(?::text[], ?::text[]) AS c(instance_id, webhook),
			LATERAL (SELECT 1 FROM outbox o WHERE o.instance_id = c.instance_id AND o.webhook = c.webhook
				AND o.status IN ('pending', 'waiting') ORDER BY o.seq DESC LIMIT 1 FOR UPDATE) last`,
			pq.Array(instances), pq.Array(webhooks))
	default:
		for start := 0; start < len(chains) && err == nil; start += sqliteChainsPerQuery {
			part := chains[start:min(start+sqliteChainsPerQuery, len(chains))]
			where, args := chainFilter(part, "")
			var more []chainRow
			err = selectContext(ctx, tx, &more, `SELECT DISTINCT instance_id, webhook FROM outbox
				WHERE status IN ('pending', 'waiting') AND (`+where+`)`, args...)
			found = append(found, more...)
		}
	}
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: outbox rows of %d instances and webhooks: %w", len(chains), err)))
	}
	busy := make(map[chain]bool, len(found))
	for _, f := range found {
		busy[chain{f.Instance, f.Webhook}] = true
	}
	return busy, nil
}

// outboxBusyRouted is outboxBusy's query on Citus, one per instance, so that each is routed to the
// worker holding it (the LATERAL join of the PostgreSQL form cannot be pushed down to the shards):
// it locks every pending or waiting row of the instance's chains, the last among them.
func outboxBusyRouted(ctx context.Context, tx *Tx, chains []chain) ([]chainRow, error) {
	var order []string // the instances, in the order of their first chain
	hooks := map[string][]string{}
	for _, c := range chains {
		if _, ok := hooks[c.instance]; !ok {
			order = append(order, c.instance)
		}
		hooks[c.instance] = append(hooks[c.instance], c.webhook)
	}
	var found []chainRow
	for _, id := range order {
		var more []chainRow
		if err := selectContext(ctx, tx, &more, `SELECT DISTINCT instance_id, webhook FROM (SELECT instance_id, webhook FROM outbox
			WHERE instance_id = ? AND webhook = ANY(?::text[]) AND status IN ('pending', 'waiting') FOR UPDATE) o`,
			id, pq.Array(hooks[id])); err != nil {
			return nil, err
		}
		found = append(found, more...)
	}
	return found, nil
}

// sqliteChainsPerQuery keeps a query's variables well below SQLite's limit (32766).
const sqliteChainsPerQuery = 500

// chainFilter is an SQL condition that holds for the rows of the chains: (instance_id = ? AND
// webhook = ?) OR ..., the columns qualified with table when it is not "".
func chainFilter(chains []chain, table string) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 2*len(chains))
	for i, c := range chains {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(" + table + "instance_id = ? AND " + table + "webhook = ?)")
		args = append(args, c.instance, c.webhook)
	}
	return b.String(), args
}

// outboxPromote makes the earliest waiting row of each chain pending, where the chain has no
// pending row (its pending one was delivered or dead). It returns how many rows it made pending.
// Without chains, it looks at every chain (a repair: see OutboxPromoteOrphans).
func outboxPromote(ctx context.Context, tx *Tx, chains []chain) (int64, error) {
	const promote = `UPDATE outbox SET status = 'pending'
		WHERE status = 'waiting'%s
		AND seq = (SELECT MIN(x.seq) FROM outbox x WHERE x.instance_id = outbox.instance_id
			AND x.webhook = outbox.webhook AND x.status = 'waiting')
		AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.instance_id = outbox.instance_id
			AND p.webhook = outbox.webhook AND p.status = 'pending')`
	run := func(filter string, args ...any) (int64, error) {
		res, err := execContext(ctx, tx, fmt.Sprintf(promote, filter), args...)
		if err != nil {
			return 0, translate(canceled(ctx, fmt.Errorf("persistence: promote waiting outbox rows: %w", err)))
		}
		return res.RowsAffected()
	}
	if chains == nil {
		return run("")
	}
	if len(chains) == 0 {
		return 0, nil
	}
	if tx.Dialect == Postgres {
		instances, webhooks := make([]string, len(chains)), make([]string, len(chains))
		for i, c := range chains {
			instances[i], webhooks[i] = c.instance, c.webhook
		}
		return run(` AND (instance_id, webhook) IN (SELECT * FROM unnest(?::text[], ?::text[]))`,
			pq.Array(instances), pq.Array(webhooks))
	}
	var total int64
	for start := 0; start < len(chains); start += sqliteChainsPerQuery {
		where, args := chainFilter(chains[start:min(start+sqliteChainsPerQuery, len(chains))], "")
		n, err := run(` AND (`+where+`)`, args...)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// OutboxPromoteOrphans makes pending the earliest waiting row of every instance and webhook that
// has waiting rows and no pending one. Finishing a row does this for its own chain; a chain can
// still be left without a pending row when re-driven dead letters made two rows of it pending and
// both finished at once, so the dispatcher runs this now and then. It returns how many rows it
// made pending.
func OutboxPromoteOrphans(ctx context.Context, tx *Tx) (int64, error) {
	return outboxPromote(ctx, tx, nil)
}

// chainRow is the instance and webhook of a row a statement returned.
type chainRow struct {
	Instance string `db:"instance_id"`
	Webhook  string `db:"webhook"`
}

func distinctChains(rows []chainRow) []chain {
	seen := map[chain]bool{}
	out := []chain{}
	for _, r := range rows {
		c := chain{r.Instance, r.Webhook}
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// OutboxClaimParams selects the deliveries a dispatcher claims.
type OutboxClaimParams struct {
	Now        time.Time // rows due at or before Now
	LeaseUntil time.Time // the claimed rows are due again then, should the claimer die
	Claim      string    // the claim's token, a random text; the rows carry it until finished
	Limit      int       // at most this many
	Skip       []string  // destinations not to claim (their circuit breaker is open)
}

// OutboxClaim claims pending rows that are due, the earliest due first. A pending row is the
// earliest undelivered row of its instance and webhook (the later ones wait), so an instance's
// deliveries to a webhook go out in seq order; a dead letter does not hold the later ones back.
// Each claimed row is due again at LeaseUntil and carries the claim's token; it is finished by
// OutboxDelete, OutboxFail or OutboxRelease under that token. Returned in creation order.
//
// Several processes claim safely: on PostgreSQL the rows are locked FOR UPDATE SKIP LOCKED, so
// concurrent claims take different rows and never wait for each other; SQLite has one writer.
func OutboxClaim(ctx context.Context, tx *Tx, p OutboxClaimParams) ([]OutboxRow, error) {
	d := tx.Dialect
	due := `o.status = 'pending' AND o.next_try_at <= ?`
	dueArgs := []any{timeArg(d, p.Now)}
	if len(p.Skip) > 0 {
		due += ` AND o.destination NOT IN (?` + strings.Repeat(", ?", len(p.Skip)-1) + `)`
		for _, s := range p.Skip {
			dueArgs = append(dueArgs, s)
		}
	}
	var query string
	var args []any
	switch {
	case tx.db.Citus:
		// FOR UPDATE is refused in a query over every shard: the due rows are read unlocked, then
		// claimed by an update that checks again that each is due, which a concurrent claim that
		// took one first (and moved its next_try_at past now) makes fail for that row.
		var found []struct {
			Instance string `db:"instance_id"`
			ID       string `db:"id"`
		}
		if err := selectContext(ctx, tx, &found, `SELECT o.instance_id, o.id FROM outbox o WHERE `+due+`
			ORDER BY o.next_try_at, o.id LIMIT ?`, append(dueArgs, p.Limit)...); err != nil {
			return nil, translate(canceled(ctx, fmt.Errorf("persistence: claim outbox rows: %w", err)))
		}
		if len(found) == 0 {
			return nil, nil
		}
		instances, ids := make([]string, len(found)), make([]string, len(found))
		for i, f := range found {
			instances[i], ids[i] = f.Instance, f.ID
		}
		query = `UPDATE outbox o SET next_try_at = ?, claim = ?
			WHERE o.instance_id = ANY(?::text[]) AND o.id = ANY(?::text[]) AND ` + due + `
			RETURNING ` + prefixed("o.", outboxColumns)
		args = append([]any{timeArg(d, p.LeaseUntil), p.Claim, pq.Array(instances), pq.Array(ids)}, dueArgs...)
	case d == Postgres:
		query = `WITH due AS (
				SELECT o.id FROM outbox o WHERE ` + due + `
				ORDER BY o.next_try_at, o.id LIMIT ?
				FOR UPDATE OF o SKIP LOCKED)
			UPDATE outbox SET next_try_at = ?, claim = ? FROM due WHERE outbox.id = due.id
			RETURNING ` + prefixed("outbox.", outboxColumns)
		args = append(append(dueArgs, p.Limit), timeArg(d, p.LeaseUntil), p.Claim)
	default:
		query = `UPDATE outbox SET next_try_at = ?, claim = ?
			WHERE id IN (SELECT o.id FROM outbox o WHERE ` + due + ` ORDER BY o.next_try_at, o.id LIMIT ?)
			RETURNING ` + outboxColumns
		args = append(append([]any{timeArg(d, p.LeaseUntil), p.Claim}, dueArgs...), p.Limit)
	}
	var rows []outboxRow
	if err := selectContext(ctx, tx, &rows, query, args...); err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: claim outbox rows: %w", err)))
	}
	out := outboxRows(rows)
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// prefixed qualifies each column of a column list.
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}

// OutboxDelete deletes delivered rows, each only while the claim still holds it (a row whose lease
// ran out may have been claimed again by then), and makes the next row of each of their instances
// and webhooks pending. It returns how many rows it deleted.
func OutboxDelete(ctx context.Context, tx *Tx, claim string, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, claim)
	for _, id := range ids {
		args = append(args, id)
	}
	var deleted []chainRow
	err := selectContext(ctx, tx, &deleted, `DELETE FROM outbox WHERE claim = ? AND id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)
		RETURNING instance_id, webhook`, args...)
	if err != nil {
		return 0, translate(canceled(ctx, fmt.Errorf("persistence: delete %d delivered outbox rows: %w", len(ids), err)))
	}
	if _, err := outboxPromote(ctx, tx, distinctChains(deleted)); err != nil {
		return 0, err
	}
	return int64(len(deleted)), nil
}

// OutboxFailParams records a failed attempt of a claimed row.
type OutboxFailParams struct {
	ID, Claim string
	At        time.Time // when the attempt was made
	NextTryAt time.Time // when to try again (ignored when Dead)
	Error     string
	Dead      bool // give up: the row becomes a dead letter
	// OnDead, with Dead, is the message written with the dead letter, in its transaction: the
	// webhook's on_dead event, from the instance to itself (docs/definitions.md, "Notify"). Its Seq
	// is assigned as MessagesInsert does. Nil for none.
	OnDead *MessageRow
}

// OutboxFail counts a failed attempt of a claimed row and releases it: due again at NextTryAt, or
// dead (and then the next row of its instance and webhook is pending, and p.OnDead is written).
// ErrConflict when the claim no longer holds the row (and nothing is written); an error writing
// p.OnDead is never ErrConflict: the transaction must not commit.
func OutboxFail(ctx context.Context, tx *Tx, p OutboxFailParams) error {
	d := tx.Dialect
	status, next := OutboxPending, p.NextTryAt
	if p.Dead {
		status, next = OutboxDead, p.At
	}
	var changed []chainRow
	err := selectContext(ctx, tx, &changed, `UPDATE outbox SET attempts = attempts + 1, status = ?, next_try_at = ?,
		last_error = ?, last_try_at = ?, claim = NULL WHERE id = ? AND claim = ? RETURNING instance_id, webhook`,
		status, timeArg(d, next), p.Error, timeArg(d, p.At), p.ID, p.Claim)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: fail outbox row %q: %w", p.ID, err)))
	}
	if len(changed) == 0 {
		return fmt.Errorf("persistence: outbox row %q is not held by claim %q: %w", p.ID, p.Claim, ErrConflict)
	}
	if p.Dead {
		if _, err := outboxPromote(ctx, tx, distinctChains(changed)); err != nil {
			return err
		}
		if p.OnDead != nil {
			if err := MessagesInsert(ctx, tx, []MessageRow{*p.OnDead}); err != nil {
				// %v: not ErrConflict, which would read as a lost claim (a concurrent message of the
				// instance to itself took the pair's next seq: the outcome is recorded again later).
				return fmt.Errorf("persistence: the on_dead message of outbox row %q: %v", p.ID, err)
			}
		}
	}
	return nil
}

// OutboxRelease gives a claimed row back without counting an attempt (its destination's circuit
// breaker opened): due again at next. ErrConflict when the claim no longer holds the row.
func OutboxRelease(ctx context.Context, tx *Tx, id, claim string, next time.Time) error {
	res, err := execContext(ctx, tx, `UPDATE outbox SET next_try_at = ?, claim = NULL WHERE id = ? AND claim = ?`,
		timeArg(tx.Dialect, next), id, claim)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: release outbox row %q: %w", id, err)))
	}
	return conflictUnlessOne(res, "outbox row %q is not held by claim %q", id, claim)
}

// OutboxListParams selects a page of dead letters, in id order (keyset pagination).
type OutboxListParams struct {
	Definition string // "" for any
	Webhook    string // "" for any
	After      string // the last id of the previous page; "" for the first
	Limit      int    // at most this many; 0 or less for no limit
	MaxBytes   int    // stop after the row that takes their Bytes past it; 0 for no bound
}

// Bytes is about the size of the row as JSON (TransitionRow.Bytes).
func (r OutboxRow) Bytes() int {
	return len(r.Body) + len(r.URL) + len(r.LastError) + len(r.ID) + len(r.InstanceID) + len(r.Webhook) + rowOverhead
}

// OutboxListDead returns a page of the dead letters, in id order (the order they were created).
func OutboxListDead(ctx context.Context, ex Executor, p OutboxListParams) ([]OutboxRow, error) {
	where, args := outboxFilter(p.Definition, p.Webhook)
	query := `SELECT ` + outboxColumns + ` FROM outbox WHERE status = 'dead' AND id > ?` + where + ` ORDER BY id`
	args = append([]any{p.After}, args...)
	if p.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, p.Limit)
	}
	out, err := selectBounded(ctx, ex, p.MaxBytes, outboxRow.row, query, args...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: list dead outbox rows: %w", err)))
	}
	return out, nil
}

func outboxFilter(definition, webhook string) (string, []any) {
	var where string
	var args []any
	if definition != "" {
		where += ` AND definition = ?`
		args = append(args, definition)
	}
	if webhook != "" {
		where += ` AND webhook = ?`
		args = append(args, webhook)
	}
	return where, args
}

// OutboxGet returns an outbox row. ErrNotFound when there is none (it was delivered, or never was).
func OutboxGet(ctx context.Context, ex Executor, id string) (OutboxRow, error) {
	var r outboxRow
	if err := getContext(ctx, ex, &r, `SELECT `+outboxColumns+` FROM outbox WHERE id = ?`, id); err != nil {
		return OutboxRow{}, notFound(err, "outbox row %q", id)
	}
	return r.row(), nil
}

// OutboxRedrive gives a dead letter another MaxAttempts: it is due at now, with its attempts
// counted from 0, pending when its instance and webhook have no pending row, waiting (first in
// line) otherwise. ErrNotFound when no dead letter has that id.
func OutboxRedrive(ctx context.Context, tx *Tx, id string, now time.Time) error {
	var changed []chainRow
	err := selectContext(ctx, tx, &changed, `UPDATE outbox SET status = 'waiting', attempts = 0, next_try_at = ?, claim = NULL
		WHERE id = ? AND status = 'dead' RETURNING instance_id, webhook`, timeArg(tx.Dialect, now), id)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: redrive outbox row %q: %w", id, err)))
	}
	if len(changed) == 0 {
		return fmt.Errorf("persistence: no dead outbox row %q: %w", id, ErrNotFound)
	}
	_, err = outboxPromote(ctx, tx, distinctChains(changed))
	return err
}

// OutboxRedriveParams selects the dead letters OutboxRedriveAll re-drives.
type OutboxRedriveParams struct {
	Definition string // "" for any
	Webhook    string // "" for any
	Now        time.Time
}

// OutboxRedriveAll re-drives every dead letter the filter selects, as OutboxRedrive does (of one
// instance and webhook, the earliest is pending, the others wait), and returns how many.
func OutboxRedriveAll(ctx context.Context, tx *Tx, p OutboxRedriveParams) (int64, error) {
	where, args := outboxFilter(p.Definition, p.Webhook)
	args = append([]any{timeArg(tx.Dialect, p.Now)}, args...)
	var changed []chainRow
	err := selectContext(ctx, tx, &changed, `UPDATE outbox SET status = 'waiting', attempts = 0, next_try_at = ?, claim = NULL
		WHERE status = 'dead'`+where+` RETURNING instance_id, webhook`, args...)
	if err != nil {
		return 0, translate(canceled(ctx, fmt.Errorf("persistence: redrive dead outbox rows: %w", err)))
	}
	if _, err := outboxPromote(ctx, tx, distinctChains(changed)); err != nil {
		return 0, err
	}
	return int64(len(changed)), nil
}

// OutboxCounts is how many outbox rows there are of each status.
type OutboxCounts struct {
	Waiting int64 `db:"waiting"`
	Pending int64 `db:"pending"`
	Dead    int64 `db:"dead"`
}

// OutboxCount counts the outbox rows by status.
func OutboxCount(ctx context.Context, ex Executor) (OutboxCounts, error) {
	var c OutboxCounts
	err := getContext(ctx, ex, &c, `SELECT
		COALESCE(SUM(CASE WHEN status = 'waiting' THEN 1 ELSE 0 END), 0) AS waiting,
		COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending,
		COALESCE(SUM(CASE WHEN status = 'dead' THEN 1 ELSE 0 END), 0) AS dead
		FROM outbox`)
	if err != nil {
		return OutboxCounts{}, translate(canceled(ctx, fmt.Errorf("persistence: count outbox rows: %w", err)))
	}
	return c, nil
}
