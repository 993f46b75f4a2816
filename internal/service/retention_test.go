package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// The definitions of TestRetention: order keeps its final instances a day, and its finish tells a
// webhook and sends a message; log has no retention; ledger gains one in its second version.
const (
	retainedOrder = `name: order
initial: open
states:
  open:
    on:
      finish:
        to: done
        send: [{to: '"keeper"', event: ping}]
  done: {final: true}
retention: {final_after: 1d}
notify:
  - {name: hook, url: "https://hooks.example/order", events: [finish]}
`
	retainedLog = `name: log
initial: open
states:
  open: {on: {finish: done}}
  done: {final: true}
`
	ledgerV1 = `name: ledger
initial: open
states:
  open: {on: {finish: done}}
  done: {final: true}
`
	ledgerV2 = ledgerV1 + "retention: {final_after: 12h}\n"
)

// TestRetention: a pass deletes exactly the instances due (final, and final for longer than the
// retention of their definition's latest version), with their audit rows, timers, webhook
// deliveries, the messages addressed to them and the dead ones they sent, and nothing else: not a
// running instance, not one final for less time, not one of a definition without retention, not a
// child whose parent still exists, not a pending message it sent. Batches of one instance give the
// same result as one batch.
func TestRetention(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{1, 1000} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			t.Parallel()
			dbtest.Each(t, func(t *testing.T, db *persistence.DB) { testRetention(t, db, batch) })
		})
	}
}

func testRetention(t *testing.T, db *persistence.DB, batch int) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
	svc := service.New(db, service.Options{Now: c.now, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(svc.Close)
	reg := prometheus.NewRegistry()
	if err := svc.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := svc.Register(ctx, set(t, retainedOrder, retainedLog, ledgerV1)); err != nil {
		t.Fatal(err)
	}
	finish := func(def string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			create(t, svc, def, id)
			send(t, svc, id, "finish")
		}
	}
	// Day 0: finished long enough ago by day 2.
	create(t, svc, "order", "keeper") // running: kept
	finish("order", "old-1", "old-2", "old-3", "kid", "orphan")
	finish("log", "log-old")
	finish("ledger", "ledger-old") // version 1, which has no retention
	c.advance(36 * time.Hour)
	finish("order", "recent") // final for 12 h by day 2
	c.advance(12 * time.Hour)
	if _, err := svc.PutDefinition(ctx, "ledger", []byte(ledgerV2)); err != nil {
		t.Fatal(err)
	}
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := db.X.ExecContext(ctx, db.X.Rebind(query), args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	// A child whose parent exists waits for it; one whose parent is gone does not.
	exec(`UPDATE instances SET parent_id = 'keeper', parent_group = 'g' WHERE id = 'kid'`)
	exec(`UPDATE instances SET parent_id = 'gone', parent_group = 'g' WHERE id = 'orphan'`)
	// Rows that only a crash or an operator leaves on a final instance, to see that they go too: a
	// timer, a dead message it sent, messages to it.
	now := c.now().Format(time.RFC3339)
	for _, id := range []string{"old-1", "recent", "log-old"} {
		exec(`INSERT INTO timers (instance_id, revision, idx, event, due_at, next_try_at) VALUES (?, 1, 0, 'finish', ?, ?)`, id, now, now)
		exec(`INSERT INTO messages (id, sender, sender_seq, target, seq, event, payload, status, reason, created_at)
			VALUES (?, ?, 1, 'nowhere', 1, 'ping', '{}', 'dead', 'no such instance', ?)`, "dead-from-"+id, id, now)
		exec(`INSERT INTO messages (id, sender, sender_seq, target, seq, event, payload, created_at)
			VALUES (?, 'keeper', 1, ?, 1, 'ping', '{}', ?)`, "to-"+id, id, now)
	}

	deleted, err := svc.ApplyRetention(ctx, service.RetentionOptions{Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"order": 4, "ledger": 1}; !maps.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	for def, want := range map[string]float64{"order": 4, "ledger": 1, "log": 0} {
		if got := counterOf(t, reg, def); got != want {
			t.Errorf("fsmd_retention_deleted_total{definition=%q} = %v, want %v", def, got, want)
		}
	}
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.X.GetContext(ctx, &n, db.X.Rebind(query), args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	gone := []string{"old-1", "old-2", "old-3", "orphan", "ledger-old"}
	kept := []string{"keeper", "kid", "recent", "log-old"}
	for _, id := range slices.Concat(gone, kept) {
		wantGone := slices.Contains(gone, id)
		rows := map[string]int{
			"instance":        count(`SELECT COUNT(*) FROM instances WHERE id = ?`, id),
			"history":         count(`SELECT COUNT(*) FROM transitions WHERE instance_id = ?`, id),
			"timers":          count(`SELECT COUNT(*) FROM timers WHERE instance_id = ?`, id),
			"outbox":          count(`SELECT COUNT(*) FROM outbox WHERE instance_id = ?`, id),
			"messages to":     count(`SELECT COUNT(*) FROM messages WHERE target = ?`, id),
			"dead messages":   count(`SELECT COUNT(*) FROM messages WHERE sender = ? AND status = 'dead'`, id),
			"pending sent by": count(`SELECT COUNT(*) FROM messages WHERE sender = ? AND status = 'pending'`, id),
		}
		var left []string
		for what, n := range rows {
			switch {
			case wantGone && what != "pending sent by" && n > 0:
				left = append(left, fmt.Sprintf("%d %s", n, what))
			case !wantGone && what == "instance" && n != 1:
				left = append(left, "no instance")
			case !wantGone && what == "history" && id != "keeper" && n != 1:
				left = append(left, fmt.Sprintf("%d history rows", n))
			}
		}
		if id != "keeper" && id != "log-old" && id != "ledger-old" && rows["pending sent by"] != 1 {
			left = append(left, fmt.Sprintf("%d pending messages it sent, want 1 (kept: its target's)", rows["pending sent by"]))
		}
		slices.Sort(left)
		if len(left) > 0 {
			t.Errorf("%s (deleted %v): %s", id, wantGone, strings.Join(left, ", "))
		}
	}
	for id, want := range map[string]int{"recent": 4, "log-old": 3} { // kept with what they had (recent sent a ping)
		if n := count(`SELECT COUNT(*) FROM timers WHERE instance_id = ?`, id) +
			count(`SELECT COUNT(*) FROM messages WHERE target = ? OR sender = ?`, id, id); n != want {
			t.Errorf("%s: %d timers and messages, want %d", id, n, want)
		}
	}
	if n := count(`SELECT COUNT(*) FROM outbox WHERE instance_id = 'recent'`); n != 1 {
		t.Errorf("recent: %d outbox rows, want 1", n)
	}
	if _, err := svc.GetInstance(ctx, "old-1"); err == nil {
		t.Error("old-1 is still found")
	}

	// A second pass finds nothing; once the parent is gone, its child goes at the next pass.
	if deleted, err := svc.ApplyRetention(ctx, service.RetentionOptions{Batch: batch}); err != nil || len(deleted) != 0 {
		t.Errorf("second pass: %v, %v", deleted, err)
	}
	send(t, svc, "keeper", "finish")
	c.advance(25 * time.Hour)
	deleted, err = svc.ApplyRetention(ctx, service.RetentionOptions{Batch: batch})
	if want := map[string]int{"order": 2}; err != nil || !maps.Equal(deleted, want) {
		t.Errorf("third pass: %v, %v; want %v", deleted, err, want) // keeper and recent
	}
	deleted, err = svc.ApplyRetention(ctx, service.RetentionOptions{Batch: batch})
	if want := map[string]int{"order": 1}; err != nil || !maps.Equal(deleted, want) {
		t.Errorf("fourth pass: %v, %v; want %v (kid, its parent gone)", deleted, err, want)
	}
}

// counterOf is fsmd_retention_deleted_total{definition} as reg gathers it (0 when the definition
// has none).
func counterOf(t *testing.T, reg *prometheus.Registry, definition string) float64 {
	t.Helper()
	v := 0.0
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "fsmd_retention_deleted_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "definition" && l.GetValue() == definition {
					v += m.GetCounter().GetValue()
				}
			}
		}
	}
	return v
}

// TestRetentionSkipsLocked: on PostgreSQL a pass does not wait for an instance another transaction
// holds (an event, a repair): it deletes the others and leaves that one to the next pass.
func TestRetentionSkipsLocked(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
	svc := service.New(db, service.Options{Now: c.now, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(svc.Close)
	if err := svc.Register(ctx, set(t, retainedLog+"retention: {final_after: 1h}\n")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		create(t, svc, "log", id)
		send(t, svc, id, "finish")
	}
	c.advance(2 * time.Hour)
	tx, err := db.X.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Rollback
	if _, err := tx.ExecContext(ctx, `SELECT id FROM instances WHERE id = 'b' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	passCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	deleted, err := svc.ApplyRetention(passCtx, service.RetentionOptions{})
	if want := map[string]int{"log": 2}; err != nil || !maps.Equal(deleted, want) || time.Since(start) > 5*time.Second {
		t.Fatalf("with b locked: %v, %v after %s; want %v at once", deleted, err, time.Since(start), want)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if deleted, err := svc.ApplyRetention(ctx, service.RetentionOptions{}); err != nil || deleted["log"] != 1 {
		t.Errorf("once b is free: %v, %v; want b deleted", deleted, err)
	}
}
