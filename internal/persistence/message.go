package persistence

import (
	"context"
	"fmt"
	"time"
)

// MessageRow is one message of the messages table (migrations/postgres/008_messages.sql): an event
// a transition of Sender (its Seq is SenderSeq) sends to the instance Target.
type MessageRow struct {
	ID        string
	Sender    string
	SenderSeq int64
	Target    string
	Seq       int64 // the order of the (Sender, Target) pair: assigned when it is written
	Event     string
	Payload   []byte // a JSON object
	Status    string // MessagePending or MessageDead (not written: a message is written pending)
	Reason    string // why it is dead
	CreatedAt time.Time
	DeadAt    time.Time // the zero time while pending
	// ChildFinal marks a child's on_final message to its parent (machine.Message.ChildFinal).
	ChildFinal bool
}

// The statuses of a message.
const (
	MessagePending = "pending"
	MessageDead    = "dead"
)

// Bytes estimates the row's size as JSON, for the bounds of a page.
func (r MessageRow) Bytes() int {
	return len(r.ID) + len(r.Sender) + len(r.Target) + len(r.Event) + len(r.Payload) + len(r.Reason) + rowOverhead
}

type messageRow struct {
	ID         string `db:"id"`
	Sender     string `db:"sender"`
	SenderSeq  int64  `db:"sender_seq"`
	Target     string `db:"target"`
	Seq        int64  `db:"seq"`
	Event      string `db:"event"`
	Payload    []byte `db:"payload"`
	Status     string `db:"status"`
	Reason     string `db:"reason"`
	CreatedAt  dbTime `db:"created_at"`
	DeadAt     dbTime `db:"dead_at"` // NULL scans as the zero time
	ChildFinal bool   `db:"child_final"`
}

func (r messageRow) row() MessageRow {
	return MessageRow{ID: r.ID, Sender: r.Sender, SenderSeq: r.SenderSeq, Target: r.Target, Seq: r.Seq, Event: r.Event,
		Payload: r.Payload, Status: r.Status, Reason: r.Reason, CreatedAt: r.CreatedAt.Time(), DeadAt: r.DeadAt.Time(), ChildFinal: r.ChildFinal}
}

const messageColumns = `id, sender, sender_seq, target, seq, event, payload, status, reason, created_at, dead_at, child_final`

// messageInsertColumns are the columns MessagesInsert and the PostgreSQL advance statement write.
const messageInsertColumns = `id, sender, sender_seq, target, seq, event, payload, created_at, child_final`

// messageInsertQuery inserts one message, next in the order of its (sender, target) pair.
const messageInsertQuery = `INSERT INTO messages (` + messageInsertColumns + `)
	VALUES (?, ?, ?, ?, COALESCE((SELECT max(seq) FROM messages WHERE sender = ? AND target = ?), 0) + 1, ?, ?, ?, ?)`

// MessagesInsert inserts rows, in order, in tx: each is given the next seq of its (sender, target)
// pair (the rows' Seq is not read). It is how the messages of a transition are written on SQLite
// (advanceInTx); on PostgreSQL they are a part of the advance statement.
func MessagesInsert(ctx context.Context, tx *Tx, rows []MessageRow) error {
	for _, m := range rows {
		var err error
		if tx.db.Citus {
			err = messageInsertRouted(ctx, tx, m)
		} else {
			_, err = execContext(ctx, tx, messageInsertQuery, m.ID, m.Sender, m.SenderSeq, m.Target, m.Sender, m.Target,
				m.Event, jsonArg(m.Payload, "{}"), timeArg(tx.Dialect, m.CreatedAt), m.ChildFinal)
		}
		if err != nil {
			return translate(canceled(ctx, fmt.Errorf("persistence: insert message %q from %q to %q: %w", m.ID, m.Sender, m.Target, err)))
		}
	}
	return nil
}

// messageInsertRouted is messageInsertQuery on Citus, which refuses a subquery in an INSERT: the
// pair's last seq is read first, by its own statement routed to the sender's worker. The sender's
// transitions are written one at a time, so no other message of the pair comes between the two.
func messageInsertRouted(ctx context.Context, tx *Tx, m MessageRow) error {
	var last int64
	if err := getContext(ctx, tx, &last, `SELECT COALESCE(max(seq), 0) FROM messages WHERE sender = ? AND target = ?`,
		m.Sender, m.Target); err != nil {
		return err
	}
	_, err := execContext(ctx, tx, `INSERT INTO messages (`+messageInsertColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Sender, m.SenderSeq, m.Target, last+1, m.Event, jsonArg(m.Payload, "{}"), timeArg(tx.Dialect, m.CreatedAt), m.ChildFinal)
	return err
}

// messagesDueQuery reads pending messages each of which is the first pending one of its (sender,
// target) pair, oldest first (the order of its messages_pending_idx).
const messagesDueQuery = `SELECT ` + messageColumns + ` FROM messages m WHERE m.status = 'pending'
	AND NOT EXISTS (SELECT 1 FROM messages e WHERE e.sender = m.sender AND e.target = m.target AND e.seq < m.seq
		AND e.status = 'pending')
	AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = m.target AND i.suspended)`

// messagesDueCitusQuery is messagesDueQuery on Citus, where a message (distributed by its sender)
// and its target are on different workers: the suspended instances are read first, by a subquery
// of their own (through instances_suspended_idx), which Citus runs before the rest.
const messagesDueCitusQuery = `SELECT ` + messageColumns + ` FROM messages m WHERE m.status = 'pending'
	AND NOT EXISTS (SELECT 1 FROM messages e WHERE e.sender = m.sender AND e.target = m.target AND e.seq < m.seq
		AND e.status = 'pending')
	AND m.target NOT IN (SELECT id FROM instances WHERE suspended)`

// MessagesDue returns up to limit messages to deliver, oldest first: each the first pending message
// of its (sender, target) pair, so that a pair's messages are delivered in order. It locks nothing:
// several processes may read the same messages, and the one whose delivery commits first deletes it
// (MessageDelete).
func MessagesDue(ctx context.Context, ex Executor, limit int) ([]MessageRow, error) {
	var rows []messageRow
	query := messagesDueQuery
	if ex.citus() {
		query = messagesDueCitusQuery
	}
	if err := selectContext(ctx, ex, &rows, query+` ORDER BY m.created_at, m.id LIMIT ?`, limit); err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: due messages: %w", err)))
	}
	return messageRows(rows), nil
}

// MessageNext returns the first pending message of the (sender, target) pair; ok is false when
// there is none.
func MessageNext(ctx context.Context, ex Executor, sender, target string) (MessageRow, bool, error) {
	rows, err := MessagesOfPair(ctx, ex, sender, target, 1)
	if err != nil || len(rows) == 0 {
		return MessageRow{}, false, err
	}
	return rows[0], true, nil
}

// MessagesOfPair returns the first pending messages of the (sender, target) pair, at most limit,
// in the pair's order.
func MessagesOfPair(ctx context.Context, ex Executor, sender, target string, limit int) ([]MessageRow, error) {
	var rows []messageRow
	err := selectContext(ctx, ex, &rows, `SELECT `+messageColumns+` FROM messages WHERE sender = ? AND target = ?
		AND status = 'pending' ORDER BY seq LIMIT ?`, sender, target, limit)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: next messages from %q to %q: %w", sender, target, err)))
	}
	return messageRows(rows), nil
}

func messageRows(rows []messageRow) []MessageRow {
	out := make([]MessageRow, len(rows))
	for i, r := range rows {
		out[i] = r.row()
	}
	return out
}

// MessageDelete deletes a pending message, delivered or dropped, in the transaction that writes
// what its delivery did. ErrConflict when it is not pending any more: another process delivered it
// first (or it was found dead), and the transaction must not commit.
func MessageDelete(ctx context.Context, tx *Tx, id string) error {
	res, err := execContext(ctx, tx, `DELETE FROM messages WHERE id = ? AND status = 'pending'`, id)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: delete message %q: %w", id, err)))
	}
	return conflictUnlessOne(res, "message %q is not pending", id)
}

// MessageKill makes a pending message dead, for reason, at now. ErrConflict when it is not pending
// any more.
func MessageKill(ctx context.Context, ex Executor, id, reason string, now time.Time) error {
	res, err := execContext(ctx, ex, `UPDATE messages SET status = 'dead', reason = ?, dead_at = ? WHERE id = ? AND status = 'pending'`,
		truncateText(reason, 1000), timeArg(ex.dialect(), now), id)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: make message %q dead: %w", id, err)))
	}
	return conflictUnlessOne(res, "message %q is not pending", id)
}

// MessageListParams selects a page of dead messages, in id order.
type MessageListParams struct {
	After    string // the last id of the previous page
	Limit    int
	MaxBytes int // stop after the row that passes this many bytes (0: no bound)
}

// MessageListDead returns a page of the dead messages, in id order (the order they were sent).
func MessageListDead(ctx context.Context, ex Executor, p MessageListParams) ([]MessageRow, error) {
	query := `SELECT ` + messageColumns + ` FROM messages WHERE status = 'dead' AND id > ? ORDER BY id`
	args := []any{p.After}
	if p.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, p.Limit)
	}
	out, err := selectBounded(ctx, ex, p.MaxBytes, messageRow.row, query, args...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: list dead messages: %w", err)))
	}
	return out, nil
}

// MessageRedrive makes a dead message pending again, to be delivered in its pair's order (after the
// pair's pending messages sent before it). ErrNotFound when no dead message has that id.
func MessageRedrive(ctx context.Context, ex Executor, id string) error {
	res, err := execContext(ctx, ex, `UPDATE messages SET status = 'pending', reason = '', dead_at = NULL WHERE id = ? AND status = 'dead'`, id)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: re-drive message %q: %w", id, err)))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("persistence: rows affected: %w", err)
	} else if n == 0 {
		return fmt.Errorf("persistence: dead message %q: %w", id, ErrNotFound)
	}
	return nil
}
