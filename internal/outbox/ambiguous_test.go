package outbox_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestAmbiguousRecord: the connection to PostgreSQL breaks at the COMMIT of the transaction that
// records what became of attempts (deliveries deleted, failures counted), after the COMMIT was
// forwarded (recorded; the answer is lost) or before (not recorded). Recorded, nothing is attempted
// again and no failure counts twice: each delivery is answered 2xx once, its attempts numbered 1
// then 2. Not recorded, the rows stay claimed until their lease ends and are attempted again:
// at least once, as docs/operations.md promises, with the same delivery id; every row is
// delivered in the end.
func TestAmbiguousRecord(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		when    dbtest.When
		markers []string
	}{
		{"delivered, after forwarding", dbtest.AfterForwarding, []string{"DELETE FROM outbox", "COMMIT"}},
		{"delivered, before forwarding", dbtest.BeforeForwarding, []string{"DELETE FROM outbox", "COMMIT"}},
		{"failed, after forwarding", dbtest.AfterForwarding, []string{"attempts = attempts + 1", "COMMIT"}},
		{"failed, before forwarding", dbtest.BeforeForwarding, []string{"attempts = attempts + 1", "COMMIT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db, p := dbtest.PostgresProxied(t)
			rc := newReceiver(t)
			var mu sync.Mutex
			seen := map[string]bool{}
			rc.set(func(_ int64, b outbox.Body, _ http.ResponseWriter, _ *http.Request) int {
				mu.Lock()
				defer mu.Unlock()
				first := !seen[b.DeliveryID]
				seen[b.DeliveryID] = true
				if first { // every delivery fails its first attempt
					return http.StatusServiceUnavailable
				}
				return http.StatusNoContent
			})
			rows := seed(t, db, counterDef(t, rc.srv.URL, rc.srv.URL), 2, 2)
			fired := p.DropAt(c.when, c.markers...)
			start(t, db, fast())
			select {
			case <-fired:
			case <-time.After(10 * time.Second):
				t.Fatal("the proxy never saw the record's commit")
			}
			eventually(t, 15*time.Second, "every row delivered", func() bool { return counts(t, db) == persistence.OutboxCounts{} })
			hits, ok := rc.snapshot()
			if len(ok) != len(rows) {
				t.Fatalf("%d deliveries answered 2xx, want %d", len(ok), len(rows))
			}
			attempts := map[string][]string{}
			for _, h := range hits {
				attempts[h.id] = append(attempts[h.id], h.attempt)
			}
			for id, n := range ok {
				recorded := c.when == dbtest.AfterForwarding
				if recorded && (n != 1 || len(attempts[id]) != 2 || attempts[id][0] != "1" || attempts[id][1] != "2") {
					t.Errorf("%s: %d answers 2xx, attempts %v; want one, attempts [1 2]", id, n, attempts[id])
				}
				if !recorded && n > 2 {
					t.Errorf("%s: %d answers 2xx, attempts %v", id, n, attempts[id])
				}
			}
			checkOrder(t, hits)
		})
	}
}
