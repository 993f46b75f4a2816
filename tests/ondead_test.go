package tests

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// onDeadOrder tells its billing webhook of payments; a delivery to it that is dead sends the order
// billing_failed, which moves a paid order to compensating with the error.
const onDeadOrder = `name: order
initial: created
context:
  failure: string
states:
  created:
    on:
      pay: paid
  paid:
    on:
      billing_failed:
        to: compensating
        guard: event.webhook == "billing" && event.attempts >= 1
        set: {failure: event.last_error}
  compensating: {final: true}
notify:
  - name: billing
    url: %s/billing
    events: [pay]
    on_dead: billing_failed
`

// apiDeadLetter is a dead letter as GET /v1/outbox/dead lists it.
type apiDeadLetter struct {
	ID        string `json:"id"`
	Instance  string `json:"instance"`
	Seq       int64  `json:"seq"`
	Webhook   string `json:"webhook"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

// TestOnDeadEndToEnd: fsmd serve on PostgreSQL and on SQLite, with a billing webhook whose
// receiver fsmd refuses (--webhook-deny: the delivery is dead at its first attempt, as after the
// last of a failing receiver's). The dead letter sends the webhook's on_dead event to the instance:
// a message, delivered through its event path, that moves it to compensating; its history row has
// source message and the payload {webhook, attempts, last_error} of the dead letter. Every exchange
// is checked against the API document.
func TestOnDeadEndToEnd(t *testing.T) {
	t.Parallel()
	for name, dbURL := range dbtest.Databases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int64
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				w.WriteHeader(http.StatusInternalServerError)
			}))
			t.Cleanup(recv.Close)
			defs := t.TempDir()
			if err := os.WriteFile(filepath.Join(defs, "order.yaml"), fmt.Appendf(nil, onDeadOrder, recv.URL), 0o644); err != nil {
				t.Fatal(err)
			}
			child := startFsmdEnv(t, []string{"FSMD_WEBHOOK_SECRET=s3cret"}, dbURL(t), defs,
				"--timer-poll", "50ms", "--webhook-deny", "127.0.0.0/8")
			env := &apiEnv{srv: &httptest.Server{URL: child.base}, client: &http.Client{Transport: apiConformTransport(t, http.DefaultTransport)}}

			env.create(t, "order", "o-1", nil)
			env.mustFire(t, "o-1", "pay", nil)
			waitFor(t, child, "o-1 compensating", func() bool { return env.instance(t, "o-1").State == "compensating" })

			dead := apiWant[apiPage[apiDeadLetter]](t, env.do(t, "GET", "/v1/outbox/dead?limit=10", nil), http.StatusOK)
			if len(dead.Items) != 1 {
				t.Fatalf("dead letters: %+v", dead.Items)
			}
			d := dead.Items[0]
			if d.Instance != "o-1" || d.Seq != 1 || d.Webhook != "billing" || d.Attempts != 1 ||
				!strings.HasPrefix(d.LastError, "refused: 127.0.0.1 is a network the process refuses") {
				t.Errorf("dead letter %+v", d)
			}
			h := messagesHistory(t, env, "o-1")
			if len(h) != 2 {
				t.Fatalf("o-1's history has %d rows, want 2: %+v", len(h), h)
			}
			e := h[1]
			if e.Seq != 2 || e.Event != "billing_failed" || e.From != "paid" || e.To != "compensating" || e.Source != "message" ||
				e.RequestID == "" || e.Dropped != "" || len(e.Payload) != 3 || e.Payload["webhook"] != "billing" ||
				fmt.Sprint(e.Payload["attempts"]) != "1" || e.Payload["last_error"] != d.LastError ||
				e.ContextAfter["failure"] != d.LastError {
				t.Errorf("history row %+v", e)
			}
			if n := hits.Load(); n != 0 {
				t.Errorf("the refused receiver got %d requests", n)
			}
		})
	}
}
