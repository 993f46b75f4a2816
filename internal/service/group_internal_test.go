package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestCommitterLifecycle: a write withdrawn while queued is never written and is answered with its
// context's error; close lets the writer write what is queued and stops it (no goroutine left), and
// a write after close is written alone.
func TestCommitterLifecycle(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		if err := db.WithTx(ctx, func(tx *persistence.Tx) error {
			if err := persistence.DefinitionInsert(ctx, tx, persistence.DefinitionRow{Name: "d", Version: 1, Hash: "h", Source: "name: d\n",
				CreatedAt: time.Now()}); err != nil {
				return err
			}
			for i := range 3 {
				now := time.Now().UTC().Truncate(time.Microsecond)
				if err := persistence.InstanceInsert(ctx, tx, persistence.InstanceRow{ID: fmt.Sprint("i", i), Definition: "d", Version: 1,
					State: "s", Context: []byte("{}"), CreatedAt: now, UpdatedAt: now, EnteredAt: now, Children: []byte("{}")}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		advance := func(id string) (persistence.InstanceUpdateParams, persistence.TransitionRow) {
			now := time.Now().UTC().Truncate(time.Microsecond)
			return persistence.InstanceUpdateParams{ID: id, ExpectRevision: 0, Version: 1, State: "s", Context: []byte(`{}`), Revision: 1,
					UpdatedAt: now, EnteredAt: now},
				persistence.TransitionRow{InstanceID: id, Seq: 1, Event: "e", From: "s", To: "s", Source: "api", DefinitionVersion: 1, At: now}
		}
		// A writer that is not running yet: what is queued stays queued.
		c := idleCommitter(db, 8)
		canceled, cancel := context.WithCancel(ctx)
		withdrawn := make(chan error, 1)
		go func() {
			u, r := advance("i0")
			withdrawn <- c.advance(canceled, u, r)
		}()
		for len(c.queue) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-withdrawn; !errors.Is(err, context.Canceled) {
			t.Errorf("a write canceled while queued: %v, want context.Canceled", err)
		}
		queued := make(chan error, 1)
		go func() {
			u, r := advance("i1")
			queued <- c.advance(ctx, u, r)
		}()
		for len(c.queue) < 2 {
			time.Sleep(time.Millisecond)
		}
		go runWriter(c)
		c.close()
		select {
		case <-c.done:
		default:
			t.Error("the writer still runs after close")
		}
		if err := <-queued; err != nil {
			t.Errorf("a write queued before close: %v", err)
		}
		u, r := advance("i2")
		if err := c.advance(ctx, u, r); err != nil {
			t.Errorf("a write after close: %v", err)
		}
		c.close() // again: nothing happens
		for i, want := range []int64{0, 1, 1} {
			row, err := persistence.InstanceGet(ctx, db, fmt.Sprint("i", i))
			if err != nil || row.Revision != want {
				t.Errorf("i%d: revision %d, %v; want %d", i, row.Revision, err, want)
			}
		}
	})
}

// TestGroupBrokenConnection: the connection to PostgreSQL breaks during a group's write (a proxy
// cuts it on one event's request id, which the group's statement carries with the others'). After
// the statement was forwarded the server committed the whole group without fsmd hearing back;
// before, nothing was written. The same for a group whose events notify a webhook, written in a
// transaction: broken after its COMMIT was forwarded, or before. Either way every event of the
// group is answered 200 and is in its history once, with its one delivery: each resolves its own
// outcome from its audit row, as an event alone does (outcome.go), and one written is never
// written again.
func TestGroupBrokenConnection(t *testing.T) {
	t.Parallel()
	const events = 8
	for _, tt := range []struct {
		name   string
		when   dbtest.When
		notify bool // the events write outbox rows: the group is a transaction, cut at its COMMIT
	}{
		{"after forwarding", dbtest.AfterForwarding, false},
		{"before forwarding", dbtest.BeforeForwarding, false},
		{"commit, after forwarding", dbtest.AfterForwarding, true},
		{"commit, before forwarding", dbtest.BeforeForwarding, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, p := dbtest.PostgresProxied(t)
			s := New(db, Options{Logger: slog.New(slog.DiscardHandler), GroupCommit: DefaultGroupCommit})
			t.Cleanup(s.Close)
			src := "name: tally\ninitial: counting\ncontext:\n  n: int\nstates:\n  counting:\n    on:\n      add: {to: counting, set: {n: ctx.n + 1}}\n"
			markers := []string{"cut-request-3"}
			if tt.notify {
				src += "notify:\n  - {name: hook, url: 'http://127.0.0.1:9/'}\n"
				markers = append(markers, "COMMIT")
			}
			def, diags := machine.Parse("tally.yaml", []byte(src))
			if diags.Errors() > 0 {
				t.Fatal(diags)
			}
			if err := s.Register(ctx, &machine.Set{ByName: map[string]*machine.Definition{"tally": def}}); err != nil {
				t.Fatal(err)
			}
			for i := range events {
				if _, _, err := s.CreateInstance(ctx, CreateInstance{Definition: "tally", ID: fmt.Sprint("cut", i)}); err != nil {
					t.Fatal(err)
				}
			}
			// A writer held back until every event is queued: they are one group.
			s.group.close()
			held := idleCommitter(db, 64)
			s.group = held
			errs := make([]error, events)
			var wg sync.WaitGroup
			for i := range events {
				wg.Go(func() {
					_, _, errs[i] = s.SendEvent(ctx, SendEvent{InstanceID: fmt.Sprint("cut", i), Event: "add", RequestID: fmt.Sprint("cut-request-", i)})
				})
			}
			for len(held.queue) < events {
				time.Sleep(time.Millisecond)
			}
			fired := p.DropAt(tt.when, markers...)
			go runWriter(held)
			wg.Wait()
			select {
			case <-fired:
			default:
				t.Fatal("the proxy never saw the group's write")
			}
			for i := range events {
				id := fmt.Sprint("cut", i)
				rows, err := persistence.TransitionList(ctx, db, persistence.TransitionListParams{InstanceID: id})
				switch {
				case errs[i] != nil:
					t.Errorf("%s: %v", id, errs[i])
				case err != nil || len(rows) != 1 || rows[0].RequestID != fmt.Sprint("cut-request-", i):
					t.Errorf("%s: history %+v, %v; want its one event", id, rows, err)
				}
				var deliveries int
				if err := db.X.QueryRow(`SELECT COUNT(*) FROM outbox WHERE instance_id = $1`, id).Scan(&deliveries); err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{true: 1}[tt.notify]; deliveries != want {
					t.Errorf("%s: %d deliveries, want %d", id, deliveries, want)
				}
			}
		})
	}
}

// runWriter is the one writer of a committer the test built by hand, closing done when it stops,
// as newCommitter's writers do.
func runWriter(c *committer) {
	defer close(c.done)
	c.loop()
}
