package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// delivery is a pending outbox row of instance inst's transition seq to webhook, due at now().
func delivery(inst, webhook string, seq int64) persistence.OutboxRow {
	return persistence.OutboxRow{
		ID: fmt.Sprintf("d-%s-%s-%03d", inst, webhook, seq), InstanceID: inst, Seq: seq, Definition: "order", Version: 1,
		Webhook: webhook, URL: "https://" + webhook + ".example/in", Destination: "https://" + webhook + ".example:443",
		Body: []byte(fmt.Sprintf(`{"instance": {"id": %q}, "seq": %d}`, inst, seq)), NextTryAt: now(), CreatedAt: now(),
	}
}

func insertOutbox(t testing.TB, db *persistence.DB, rows ...persistence.OutboxRow) {
	t.Helper()
	mustTx(t, db, func(tx *persistence.Tx) error { return persistence.OutboxInsert(context.Background(), tx, rows) })
}

func claim(t testing.TB, db *persistence.DB, p persistence.OutboxClaimParams) []persistence.OutboxRow {
	t.Helper()
	if p.Limit == 0 {
		p.Limit = 100
	}
	if p.LeaseUntil.IsZero() {
		p.LeaseUntil = p.Now.Add(time.Minute)
	}
	var rows []persistence.OutboxRow
	mustTx(t, db, func(tx *persistence.Tx) error {
		var err error
		rows, err = persistence.OutboxClaim(context.Background(), tx, p)
		return err
	})
	return rows
}

func outboxIDs(rows []persistence.OutboxRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

func TestOutboxInsertGet(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		a, b := delivery("i-1", "billing", 1), delivery("i-1", "crm", 1)
		a.Body = []byte(`{"b": 1,  "a": "\u00e9\u0000"}`) // kept byte for byte: text, not jsonb
		insertOutbox(t, db, a, b)
		got, err := persistence.OutboxGet(ctx, db, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Body) != string(a.Body) {
			t.Errorf("body %s, want %s", got.Body, a.Body)
		}
		sameTime(t, "next_try_at", got.NextTryAt, a.NextTryAt)
		sameTime(t, "created_at", got.CreatedAt, a.CreatedAt)
		if got.Status != persistence.OutboxPending || got.Attempts != 0 || got.Claim != "" || !got.LastTryAt.IsZero() ||
			got.Webhook != "billing" || got.URL != a.URL || got.Destination != a.Destination || got.Seq != 1 ||
			got.Definition != "order" || got.Version != 1 || got.InstanceID != "i-1" {
			t.Errorf("row = %+v", got)
		}
		if _, err := persistence.OutboxGet(ctx, db, "nope"); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("OutboxGet(nope) = %v, want ErrNotFound", err)
		}

		// The same transition and webhook again, under another id: a conflict, and the
		// transaction stays usable.
		again := delivery("i-1", "billing", 1)
		again.ID = "other"
		err = db.WithTx(ctx, func(tx *persistence.Tx) error {
			if err := persistence.OutboxInsert(ctx, tx, []persistence.OutboxRow{again}); !errors.Is(err, persistence.ErrConflict) {
				t.Errorf("insert again = %v, want ErrConflict", err)
			}
			return persistence.OutboxInsert(ctx, tx, []persistence.OutboxRow{delivery("i-1", "billing", 2)})
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := persistence.OutboxCount(ctx, db)
		if err != nil || c != (persistence.OutboxCounts{Waiting: 1, Pending: 2}) {
			t.Errorf("OutboxCount = %+v, %v", c, err)
		}
		if err := db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.OutboxInsert(ctx, tx, nil) }); err != nil {
			t.Errorf("insert none: %v", err)
		}
		if r, _ := persistence.OutboxGet(ctx, db, "d-i-1-billing-002"); r.Status != persistence.OutboxWaiting {
			t.Errorf("the second row of i-1 to billing is %s, want waiting", r.Status)
		}
	})
}

// TestOutboxChains: of the rows of one instance and webhook, the earliest is pending and the
// others wait, whether they come in one call or one by one, out of seq order or not.
func TestOutboxChains(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		insertOutbox(t, db, delivery("i-1", "a", 3), delivery("i-1", "a", 1), delivery("i-1", "b", 2), delivery("i-1", "a", 2))
		insertOutbox(t, db, delivery("i-1", "b", 4))
		insertOutbox(t, db, delivery("i-2", "a", 1))
		want := map[string]string{"d-i-1-a-001": "pending", "d-i-1-a-002": "waiting", "d-i-1-a-003": "waiting",
			"d-i-1-b-002": "pending", "d-i-1-b-004": "waiting", "d-i-2-a-001": "pending"}
		for id, status := range want {
			if r, err := persistence.OutboxGet(ctx, db, id); err != nil || r.Status != status {
				t.Errorf("%s: %s, %v; want %s", id, r.Status, err, status)
			}
		}

		// An orphan chain (waiting rows, none pending) is repaired.
		if _, err := db.X.ExecContext(ctx, `UPDATE outbox SET status = 'waiting' WHERE id = 'd-i-1-a-001'`); err != nil {
			t.Fatal(err)
		}
		var n int64
		mustTx(t, db, func(tx *persistence.Tx) (err error) {
			n, err = persistence.OutboxPromoteOrphans(ctx, tx)
			return err
		})
		if r, _ := persistence.OutboxGet(ctx, db, "d-i-1-a-001"); n != 1 || r.Status != persistence.OutboxPending {
			t.Errorf("repair promoted %d; d-i-1-a-001 is %s", n, r.Status)
		}
		mustTx(t, db, func(tx *persistence.Tx) (err error) {
			n, err = persistence.OutboxPromoteOrphans(ctx, tx)
			return err
		})
		if n != 0 {
			t.Errorf("a second repair promoted %d", n)
		}

		// A dead letter re-driven while its chain has a pending row waits, first in line.
		got := claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c"})
		if ids := outboxIDs(got); !slices.Equal(ids, []string{"d-i-1-a-001", "d-i-1-b-002", "d-i-2-a-001"}) {
			t.Fatalf("claim = %v", ids)
		}
		mustTx(t, db, func(tx *persistence.Tx) error {
			return persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: "d-i-1-a-001", Claim: "c", At: now(), Dead: true})
		})
		if r, _ := persistence.OutboxGet(ctx, db, "d-i-1-a-002"); r.Status != persistence.OutboxPending {
			t.Errorf("after a dead letter, the next row is %s", r.Status)
		}
		mustTx(t, db, func(tx *persistence.Tx) error { return persistence.OutboxRedrive(ctx, tx, "d-i-1-a-001", now()) })
		if r, _ := persistence.OutboxGet(ctx, db, "d-i-1-a-001"); r.Status != persistence.OutboxWaiting || r.Attempts != 0 {
			t.Errorf("re-driven behind a pending row: %+v", r)
		}
		got = claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c2"})
		if ids := outboxIDs(got); !slices.Equal(ids, []string{"d-i-1-a-002"}) {
			t.Fatalf("claim = %v", ids)
		}
		mustTx(t, db, func(tx *persistence.Tx) error {
			_, err := persistence.OutboxDelete(ctx, tx, "c2", []string{"d-i-1-a-002"})
			return err
		})
		for id, status := range map[string]string{"d-i-1-a-001": "pending", "d-i-1-a-003": "waiting"} {
			if r, _ := persistence.OutboxGet(ctx, db, id); r.Status != status {
				t.Errorf("after the delivery: %s is %s, want %s", id, r.Status, status)
			}
		}
	})
}

// TestOutboxClaimOrder: a row is claimed only when it is due, and only when no earlier row of its
// instance and webhook is pending; a dead letter does not hold the later ones back.
func TestOutboxClaimOrder(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		later := delivery("i-2", "billing", 1)
		later.NextTryAt = now().Add(time.Hour)
		insertOutbox(t, db, delivery("i-1", "billing", 1), delivery("i-1", "billing", 2), delivery("i-1", "billing", 3),
			delivery("i-1", "crm", 1), later)

		got := claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c1"})
		if ids := outboxIDs(got); !slices.Equal(ids, []string{"d-i-1-billing-001", "d-i-1-crm-001"}) {
			t.Fatalf("first claim = %v", ids)
		}
		for _, r := range got {
			if r.Claim != "c1" || !r.NextTryAt.Equal(now().Add(time.Minute)) {
				t.Errorf("claimed row = %+v", r)
			}
		}
		// Claimed rows are not due until their lease ends; the later rows wait for them.
		if c, _ := persistence.OutboxCount(ctx, db); c != (persistence.OutboxCounts{Waiting: 2, Pending: 3}) {
			t.Errorf("counts = %+v", c)
		}
		if got := claim(t, db, persistence.OutboxClaimParams{Now: now().Add(time.Second), Claim: "c2"}); len(got) != 0 {
			t.Errorf("claim during the lease = %v", outboxIDs(got))
		}

		// Delivered: the next row of the instance and webhook is claimed.
		mustTx(t, db, func(tx *persistence.Tx) error {
			n, err := persistence.OutboxDelete(ctx, tx, "c1", []string{"d-i-1-billing-001"})
			if n != 1 {
				t.Errorf("deleted %d", n)
			}
			return err
		})
		got = claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c3"})
		if ids := outboxIDs(got); !slices.Equal(ids, []string{"d-i-1-billing-002"}) {
			t.Fatalf("claim after delivery = %v", ids)
		}

		// A failure to be retried later holds seq 3 back; dead, it does not.
		fail := persistence.OutboxFailParams{ID: "d-i-1-billing-002", Claim: "c3", At: now(), NextTryAt: now().Add(time.Second), Error: "HTTP 500"}
		mustTx(t, db, func(tx *persistence.Tx) error { return persistence.OutboxFail(ctx, tx, fail) })
		if got := claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c4"}); len(got) != 0 {
			t.Errorf("claim before the retry is due = %v", outboxIDs(got))
		}
		got = claim(t, db, persistence.OutboxClaimParams{Now: now().Add(time.Second), Claim: "c5"})
		if ids := outboxIDs(got); !slices.Equal(ids, []string{"d-i-1-billing-002"}) || got[0].Attempts != 1 ||
			got[0].LastError != "HTTP 500" {
			t.Fatalf("claim of the retry = %+v", got)
		}
		fail.Claim, fail.Dead, fail.Error = "c5", true, "HTTP 503"
		mustTx(t, db, func(tx *persistence.Tx) error { return persistence.OutboxFail(ctx, tx, fail) })
		got = claim(t, db, persistence.OutboxClaimParams{Now: now().Add(time.Second), Claim: "c6"})
		if ids := outboxIDs(got); !slices.Equal(ids, []string{"d-i-1-billing-003"}) {
			t.Fatalf("claim after a dead letter = %v", ids)
		}
		dead, err := persistence.OutboxGet(ctx, db, "d-i-1-billing-002")
		if err != nil || dead.Status != persistence.OutboxDead || dead.Attempts != 2 || dead.LastError != "HTTP 503" || dead.Claim != "" {
			t.Errorf("dead letter = %+v, %v", dead, err)
		}
		sameTime(t, "last_try_at", dead.LastTryAt, now())

		// A row due later is claimed once due; so are the claimed rows whose lease ran out.
		got = claim(t, db, persistence.OutboxClaimParams{Now: now().Add(time.Hour), Claim: "c7"})
		if ids := outboxIDs(got); !slices.Equal(ids, []string{"d-i-1-billing-003", "d-i-1-crm-001", "d-i-2-billing-001"}) {
			t.Errorf("claim an hour later = %v", ids)
		}
	})
}

// TestOutboxClaimLease: a claim whose lease ran out loses its rows to the next claim, and can
// finish none of them.
func TestOutboxClaimLease(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		insertOutbox(t, db, delivery("i-1", "billing", 1))
		claim(t, db, persistence.OutboxClaimParams{Now: now(), LeaseUntil: now().Add(time.Second), Claim: "old"})
		got := claim(t, db, persistence.OutboxClaimParams{Now: now().Add(time.Second), Claim: "new"})
		if len(got) != 1 {
			t.Fatalf("claim after the lease = %v", outboxIDs(got))
		}
		mustTx(t, db, func(tx *persistence.Tx) error {
			if n, err := persistence.OutboxDelete(ctx, tx, "old", []string{got[0].ID}); n != 0 || err != nil {
				t.Errorf("delete under the old claim = %d, %v", n, err)
			}
			err := persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: got[0].ID, Claim: "old", At: now(), NextTryAt: now()})
			if !errors.Is(err, persistence.ErrConflict) {
				t.Errorf("fail under the old claim = %v, want ErrConflict", err)
			}
			if err := persistence.OutboxRelease(ctx, tx, got[0].ID, "old", now()); !errors.Is(err, persistence.ErrConflict) {
				t.Errorf("release under the old claim = %v, want ErrConflict", err)
			}
			return nil
		})
		// Released (a breaker opened): due at the time given, no attempt counted.
		mustTx(t, db, func(tx *persistence.Tx) error {
			return persistence.OutboxRelease(ctx, tx, got[0].ID, "new", now().Add(time.Minute))
		})
		r, err := persistence.OutboxGet(ctx, db, got[0].ID)
		if err != nil || r.Claim != "" || r.Attempts != 0 || !r.NextTryAt.Equal(now().Add(time.Minute)) || r.Status != persistence.OutboxPending {
			t.Errorf("released row = %+v, %v", r, err)
		}
	})
}

// TestOutboxClaimSkip: the destinations of open circuit breakers are not claimed.
func TestOutboxClaimSkip(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		insertOutbox(t, db, delivery("i-1", "billing", 1), delivery("i-1", "crm", 1), delivery("i-1", "erp", 1))
		got := claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c", Skip: []string{"https://billing.example:443", "https://erp.example:443"}})
		if ids := outboxIDs(got); !slices.Equal(ids, []string{"d-i-1-crm-001"}) {
			t.Errorf("claim = %v", ids)
		}
		got = claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c", Limit: 1})
		if len(got) != 1 {
			t.Errorf("claim with limit 1 = %v", outboxIDs(got))
		}
	})
}

func TestOutboxDeadLetters(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		var rows []persistence.OutboxRow
		for i := range 5 {
			rows = append(rows, delivery(fmt.Sprintf("i-%d", i), "billing", 1), delivery(fmt.Sprintf("i-%d", i), "crm", 1))
		}
		other := delivery("j-0", "billing", 1)
		other.Definition = "loan"
		insertOutbox(t, db, append(rows, other, delivery("k-0", "billing", 1))...)
		// Everything but k-0 dies.
		got := claim(t, db, persistence.OutboxClaimParams{Now: now(), Claim: "c"})
		mustTx(t, db, func(tx *persistence.Tx) error {
			for _, r := range got {
				if r.InstanceID == "k-0" {
					continue
				}
				if err := persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: r.ID, Claim: "c", At: now(), Error: "gone", Dead: true}); err != nil {
					return err
				}
			}
			return nil
		})
		list := func(p persistence.OutboxListParams) []string {
			t.Helper()
			rows, err := persistence.OutboxListDead(ctx, db, p)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range rows {
				if r.Status != persistence.OutboxDead || r.Attempts != 1 || r.LastError != "gone" {
					t.Errorf("dead letter = %+v", r)
				}
				ids = append(ids, r.ID)
			}
			return ids
		}
		if ids := list(persistence.OutboxListParams{Limit: 3}); !slices.Equal(ids, []string{"d-i-0-billing-001", "d-i-0-crm-001", "d-i-1-billing-001"}) {
			t.Errorf("first page = %v", ids)
		}
		if ids := list(persistence.OutboxListParams{After: "d-i-4-billing-001"}); !slices.Equal(ids, []string{"d-i-4-crm-001", "d-j-0-billing-001"}) {
			t.Errorf("last page = %v", ids)
		}
		if ids := list(persistence.OutboxListParams{Webhook: "billing", Definition: "order"}); len(ids) != 5 {
			t.Errorf("billing of order = %v", ids)
		}
		if ids := list(persistence.OutboxListParams{Definition: "loan"}); !slices.Equal(ids, []string{"d-j-0-billing-001"}) {
			t.Errorf("loan = %v", ids)
		}

		// Re-drive one, then one webhook's, then the rest.
		later := now().Add(time.Minute)
		mustTx(t, db, func(tx *persistence.Tx) error {
			if err := persistence.OutboxRedrive(ctx, tx, "d-k-0-billing-001", later); !errors.Is(err, persistence.ErrNotFound) {
				t.Errorf("redrive a pending row = %v, want ErrNotFound", err)
			}
			if err := persistence.OutboxRedrive(ctx, tx, "nope", later); !errors.Is(err, persistence.ErrNotFound) {
				t.Errorf("redrive no row = %v, want ErrNotFound", err)
			}
			return persistence.OutboxRedrive(ctx, tx, "d-j-0-billing-001", later)
		})
		r, err := persistence.OutboxGet(ctx, db, "d-j-0-billing-001")
		if err != nil || r.Status != persistence.OutboxPending || r.Attempts != 0 || !r.NextTryAt.Equal(later) {
			t.Errorf("re-driven row = %+v, %v", r, err)
		}
		var n int64
		mustTx(t, db, func(tx *persistence.Tx) (err error) {
			n, err = persistence.OutboxRedriveAll(ctx, tx, persistence.OutboxRedriveParams{Webhook: "crm", Now: later})
			return err
		})
		if n != 5 {
			t.Errorf("re-drove %d crm rows, want 5", n)
		}
		mustTx(t, db, func(tx *persistence.Tx) (err error) {
			n, err = persistence.OutboxRedriveAll(ctx, tx, persistence.OutboxRedriveParams{Now: later})
			return err
		})
		if n != 5 {
			t.Errorf("re-drove %d rows, want 5", n)
		}
		c, err := persistence.OutboxCount(ctx, db)
		if err != nil || c != (persistence.OutboxCounts{Pending: 12}) {
			t.Errorf("counts = %+v, %v", c, err)
		}
	})
}

// TestOutboxClaimConcurrent: claims running at once on PostgreSQL take different rows, each once.
func TestOutboxClaimConcurrent(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	ctx := context.Background()
	const instances, webhooks, claimers = 100, 3, 8
	var rows []persistence.OutboxRow
	for i := range instances {
		for w := range webhooks {
			rows = append(rows, delivery(fmt.Sprintf("i-%03d", i), fmt.Sprintf("w%d", w), 1))
		}
	}
	insertOutbox(t, db, rows...)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for c := range claimers {
		wg.Go(func() {
			for {
				var got []persistence.OutboxRow
				err := db.WithTx(ctx, func(tx *persistence.Tx) (err error) {
					got, err = persistence.OutboxClaim(ctx, tx, persistence.OutboxClaimParams{Now: now(), LeaseUntil: now().Add(time.Hour),
						Claim: fmt.Sprintf("c%d", c), Limit: 7})
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, r := range got {
					seen[r.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != len(rows) {
		t.Errorf("claimed %d rows, want %d", len(seen), len(rows))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("row %s claimed %d times", id, n)
		}
	}
}

// TestOutboxInsertWhileDelivering: on PostgreSQL, transitions appended to instances while other
// connections claim and deliver their rows never leave an instance's later rows waiting behind
// nothing: every row is delivered, each instance's in seq order, without a repair.
func TestOutboxInsertWhileDelivering(t *testing.T) {
	t.Parallel()
	// The rows are inserted as the locked event path does (OutboxInsert in a transaction), and as
	// the quick path does (in the one statement of InstanceAdvance).
	for _, way := range []string{"OutboxInsert", "InstanceAdvance"} {
		t.Run(way, func(t *testing.T) {
			t.Parallel()
			testOutboxInsertWhileDelivering(t, way)
		})
	}
}

func testOutboxInsertWhileDelivering(t *testing.T, way string) {
	db := dbtest.Postgres(t)
	ctx := context.Background()
	const instances, transitions, finishers = 8, 40, 3
	write := func(i int, seq int64) error {
		row := delivery(fmt.Sprintf("i-%d", i), "w", seq)
		if way == "OutboxInsert" {
			return db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.OutboxInsert(ctx, tx, []persistence.OutboxRow{row}) })
		}
		u := persistence.InstanceUpdateParams{ID: row.InstanceID, ExpectRevision: seq - 1, Version: 1, State: "on",
			Context: []byte(`{}`), Revision: seq, UpdatedAt: now(), EnteredAt: now(), Outbox: []persistence.OutboxRow{row}}
		r := persistence.TransitionRow{InstanceID: row.InstanceID, Seq: seq, Event: "inc", From: "on", To: "on", Source: "api",
			RequestID: "r", DefinitionVersion: 1, At: now()}
		return persistence.InstanceAdvance(ctx, db, u, r)
	}
	if way == "InstanceAdvance" {
		var rows []persistence.InstanceRow
		for i := range instances {
			rows = append(rows, instance(fmt.Sprintf("i-%d", i), "counter", 1, "on"))
		}
		seed(t, db, []persistence.DefinitionRow{definition("counter", 1)}, rows)
	}
	var inserting sync.WaitGroup
	for i := range instances {
		inserting.Go(func() { // one goroutine per instance: the event path serializes an instance's events
			for seq := int64(1); seq <= transitions; seq++ {
				err := write(i, seq)
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	insertsDone := make(chan struct{})
	go func() { inserting.Wait(); close(insertsDone) }()
	var mu sync.Mutex
	delivered := map[string][]int64{}
	var finishing sync.WaitGroup
	deadline := time.Now().Add(30 * time.Second)
	for f := range finishers {
		finishing.Go(func() {
			for time.Now().Before(deadline) {
				var got []persistence.OutboxRow
				err := db.WithTx(ctx, func(tx *persistence.Tx) (err error) {
					got, err = persistence.OutboxClaim(ctx, tx, persistence.OutboxClaimParams{Now: now(), LeaseUntil: now().Add(time.Hour),
						Claim: fmt.Sprintf("f%d", f), Limit: 4})
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					select {
					case <-insertsDone:
						if c, err := persistence.OutboxCount(ctx, db); err == nil && c == (persistence.OutboxCounts{}) {
							return
						}
					default:
					}
					time.Sleep(time.Millisecond)
					continue
				}
				ids := make([]string, len(got))
				for i, r := range got {
					ids[i] = r.ID
				}
				mu.Lock() // record the order of deliveries as they are made
				for _, r := range got {
					delivered[r.InstanceID] = append(delivered[r.InstanceID], r.Seq)
				}
				err = db.WithTx(ctx, func(tx *persistence.Tx) error {
					_, err := persistence.OutboxDelete(ctx, tx, fmt.Sprintf("f%d", f), ids)
					return err
				})
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	finishing.Wait()
	c, err := persistence.OutboxCount(ctx, db)
	if err != nil || c != (persistence.OutboxCounts{}) {
		t.Fatalf("left over: %+v, %v (a chain was left without a pending row?)", c, err)
	}
	for inst, seqs := range delivered {
		if len(seqs) != transitions {
			t.Errorf("%s: %d deliveries", inst, len(seqs))
		}
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Errorf("%s: deliveries in order %v", inst, seqs)
				break
			}
		}
	}
}
