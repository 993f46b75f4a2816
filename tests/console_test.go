package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/auth"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/server"
	"github.com/fsmd-io/fsmd/internal/service"
)

// The web console (/ui) driven in headless Chromium by tests/ui/console.mjs (playwright-core,
// Debian's chromium), against the real server on PostgreSQL with API keys: the key prompt, the
// definitions page, a definition's diagram with its live counts and heat, an instance with its
// state highlighted, timers and history, finding an instance by id, a script in an instance id
// shown as text, the instances a migration stranded, and a trip's children (their counts, by
// state, listed and paged) with the way back from a child to its parent; and acting: a write key
// explains and sends an event from the form its payload schema makes, a read key sees no form, a
// branch's allow hides its event from a key not in its groups, and script in a payload stays
// text; and operating (an admin key): a bulk on loans planned (its table) then run to done, a repair
// with a reason holding script (kept as text), a suspend then a resume, a terminate confirmed in the
// page, a dead letter re-driven, while read and write keys see none of these controls. The script
// writes a screenshot of each page to tests/ui/screenshots (or $FSMD_SCREENSHOTS). `make ui-deps`
// installs what it needs.

// consoleManyLegs is how many legs the second trip books: more than the 100 a group lists at first.
const consoleManyLegs = 105

// consoleXSS is an instance id that would run script if the console wrote ids as HTML.
const consoleXSS = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`

// consoleFixture is what the seeding made, for the script to look for.
type consoleFixture struct {
	URL         string   `json:"url"`
	OpenURL     string   `json:"open_url"`    // the same service, served without keys
	Key         string   `json:"key"`         // a read key: the console needs no more to read
	WriteKey    string   `json:"write_key"`   // a write key in no group: it may send events, but not take a branch with allow
	FinanceKey  string   `json:"finance_key"` // a write key in the group finance, which approval's finance approval allows
	Payable     string   `json:"payable"`     // an order awaiting payment, for the write key's forms
	Amount      float64  `json:"amount"`      // what it costs
	Approval    string   `json:"approval"`    // an approval in finance_review: approve is allowed to finance only
	Assigned    string   `json:"assigned"`    // an approval in manager_review, assigned to the finance key by name, due in 3 days
	Order       string   `json:"order"`
	OrderState  string   `json:"order_state"`
	OrderEvents int      `json:"order_events"` // its history rows
	Pending     string   `json:"pending"`      // an order with a pending timer
	XSS         string   `json:"xss"`
	Stranded    string   `json:"stranded"`  // a claim the migration to v2 left on v1 (state_unmapped)
	Trip        string   `json:"trip"`      // a trip booking its 2 legs: children of group legs, both requested
	TripLegs    []string `json:"trip_legs"` // their ids, in index order
	ManyTrip    string   `json:"many_trip"` // a trip booking consoleManyLegs legs: more than a group's list shows at first
	ManyLegs    int      `json:"many_legs"`
	DoneTrip    string   `json:"done_trip"` // a trip cancelled when its first leg failed: its children were started by a state it has left
	AdminKey    string   `json:"admin_key"`
	BulkLoans   []string `json:"bulk_loans"`  // loans in draft of purpose "bulk": 2000 and 3000 (submit takes them to kyc_check), 60000 (refused), 500 (filtered out by amount)
	RepairLoan  string   `json:"repair_loan"` // loans in draft, one for each operation
	PauseLoan   string   `json:"pause_loan"`
	EndLoan     string   `json:"end_loan"`
	DeadLetter  string   `json:"dead_letter"` // a dead webhook delivery of order-3
	Screenshots string   `json:"screenshots"`
}

func TestConsole(t *testing.T) {
	t.Parallel()
	node, script := consoleTools(t)

	db := dbtest.Postgres(t)
	ctx := context.Background()
	set, diags, err := machine.Load("../definitions")
	if err != nil || diags.Errors() > 0 {
		t.Fatalf("loading ../definitions: %v %v", err, diags)
	}
	svc := service.New(db, service.Options{})
	t.Cleanup(svc.Close)
	if err := svc.Register(ctx, set); err != nil {
		t.Fatal(err)
	}
	// Bulks run as under fsmd serve, for the console's Run to be followed to its end.
	bulkCtx, stopBulks := context.WithCancel(ctx)
	bulking := make(chan struct{})
	go func() {
		defer close(bulking)
		svc.RunBulks(bulkCtx, 100*time.Millisecond)
	}()
	t.Cleanup(func() { stopBulks(); <-bulking })
	keys, parsed := consoleKeys(t)
	srv := httptest.NewServer(server.New(svc, server.Options{Keys: parsed}))
	t.Cleanup(srv.Close)
	noKeys := httptest.NewServer(server.New(svc, server.Options{})) // no keys: nothing to ask for
	t.Cleanup(noKeys.Close)
	admin := &apiEnv{srv: srv}
	as := func(method, path string, body any, header ...string) apiResponse {
		t.Helper()
		return admin.do(t, method, path, body, append([]string{"Authorization", "Bearer " + keys["admin"]}, header...)...)
	}
	want := func(r apiResponse, status int) {
		t.Helper()
		if r.status != status {
			t.Fatalf("%s: want %d", r, status)
		}
	}

	// Orders in several states, a refused event or two, and one whose id is markup.
	customer := map[string]any{"id": "c-1", "email": "ana@example.com", "tier": "gold"}
	for i, id := range []string{"order-1", "order-2", "order-3", "order-4", "order-5", consoleXSS} {
		want(as("POST", "/v1/instances", map[string]any{"definition": "order", "id": id,
			"context": map[string]any{"amount": 40.0 + float64(i), "customer": customer}}), 201)
	}
	send := func(id, event string, payload map[string]any, status int) {
		t.Helper()
		want(as("POST", apiPath("/v1/instances/%s/events", id), map[string]any{"event": event, "payload": payload}), status)
	}
	pay := map[string]any{"amount": 100.0, "method": "card"}
	for _, id := range []string{"order-1", "order-2", "order-3"} {
		send(id, "pay", pay, 200)
	}
	send("order-1", "ship", map[string]any{"carrier": "dhl", "tracking_number": "JD0001"}, 200)
	send("order-1", "deliver", nil, 200)
	send("order-2", "ship", map[string]any{"carrier": "ups", "tracking_number": "1Z999"}, 200)
	send("order-4", "pay", map[string]any{"amount": 10.0, "method": "card"}, 200) // short: payment_failed
	send("order-5", "pay", map[string]any{"amount": 100.0, "method": "cash"}, 409)
	send("order-5", "ship", map[string]any{"carrier": "dhl", "tracking_number": "x"}, 409)
	send(consoleXSS, "cancel", map[string]any{"reason": `</pre><b onmouseover="window.__xss=3">bold</b>`}, 200)
	// An order for the write key's forms, and an approval waiting for finance (definitions/approval.yaml).
	want(as("POST", "/v1/instances", map[string]any{"definition": "order", "id": "order-pay",
		"context": map[string]any{"amount": 25.0, "customer": customer}}), 201)
	want(as("POST", "/v1/instances", map[string]any{"definition": "approval", "id": "approval-1",
		"context": map[string]any{"requester": "rita", "department": "it"}}), 201)
	send("approval-1", "submit", map[string]any{"amount": 9000.0, "description": "laptops"}, 200)
	send("approval-1", "approve", map[string]any{"approver": "max"}, 200)
	// One waiting for its manager, the finance key's holder, due in 3 days: first in that worklist.
	want(as("POST", "/v1/instances", map[string]any{"definition": "approval", "id": "approval-2",
		"context": map[string]any{"requester": "rita", "manager": "finance-key"}}), 201)
	send("approval-2", "submit", map[string]any{"amount": 100.0, "description": "a chair"}, 200)

	// Loans (definitions/loan.yaml) for the admin's bulk and one for each operation on an instance.
	bulkLoans := []string{"loan-bulk-1", "loan-bulk-2", "loan-bulk-3", "loan-bulk-4"}
	for i, amount := range []float64{2000, 3000, 60000, 500} {
		want(as("POST", "/v1/instances", map[string]any{"definition": "loan", "id": bulkLoans[i],
			"context": map[string]any{"applicant_id": "c-" + fmt.Sprint(i), "amount_requested": amount, "purpose": "bulk"}}), 201)
	}
	for _, id := range []string{"loan-repair", "loan-pause", "loan-end"} {
		want(as("POST", "/v1/instances", map[string]any{"definition": "loan", "id": id,
			"context": map[string]any{"applicant_id": "c-9", "amount_requested": 5000.0}}), 201)
	}
	consoleDeadLetter(t, db, "dl-console-1", "order-3")

	// A claim that the migration to version 2 strands (its state is gone), and one that moves.
	claimV1, err := os.ReadFile(apiPutDir + "/claim_v1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want(as("PUT", "/v1/definitions/claim", claimV1, "Content-Type", "application/yaml"), 201)
	for _, id := range []string{"claim-f1", "claim-h1"} {
		want(as("POST", "/v1/instances", map[string]any{"definition": "claim", "id": id,
			"context": map[string]any{"amount": 50, "due": apiClaimDue}}), 201)
	}
	send("claim-h1", "assess", nil, 200)
	send("claim-h1", "hold", map[string]any{"reason": "waiting for the police report"}, 200)
	claimV2, err := os.ReadFile(apiPutDir + "/claim_v2.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want(as("PUT", "/v1/definitions/claim", claimV2, "Content-Type", "application/yaml"), 201)
	r := as("POST", "/v1/definitions/claim/migrations", nil)
	want(r, 202)
	m := apiWant[apiMigration](t, r, 202)
	for deadline := time.Now().Add(20 * time.Second); m.Status != "done"; time.Sleep(50 * time.Millisecond) {
		m = apiWant[apiMigration](t, as("GET", apiPath("/v1/migrations/%s", m.ID), nil), 200)
		if time.Now().After(deadline) {
			t.Fatalf("the claim migration: %+v after 20s", m)
		}
	}
	// Trips (definitions/trip.yaml) that start bookings as their children: one with 2 legs, and one
	// with more legs than the console lists at first.
	legs := []map[string]any{{"kind": "flight", "price": 1}, {"kind": "hotel", "price": 2}}
	many := make([]map[string]any, consoleManyLegs)
	for i := range many {
		many[i] = map[string]any{"kind": "car", "price": i + 1}
	}
	for id, l := range map[string][]map[string]any{"trip-1": legs, "trip-many": many} {
		want(as("POST", "/v1/instances", map[string]any{"definition": "trip", "id": id, "context": map[string]any{"legs": l}}), 201)
		send(id, "book", nil, 200)
	}
	var trip struct {
		State    string                    `json:"state"`
		Revision int64                     `json:"revision"`
		Children map[string]map[string]int `json:"children"`
	}
	if err := json.Unmarshal(as("GET", "/v1/instances/trip-1", nil).body, &trip); err != nil {
		t.Fatal(err)
	}
	if trip.State != "booking" || trip.Children["legs"]["total"] != 2 || trip.Children["legs"]["running"] != 2 {
		t.Fatalf("trip-1 after book: %+v", trip)
	}
	tripLegs := []string{machine.ChildID("trip-1", "legs", trip.Revision, 0), machine.ChildID("trip-1", "legs", trip.Revision, 1)}
	for _, id := range tripLegs {
		want(as("GET", apiPath("/v1/instances/%s", id), nil), 200)
	}
	// A trip whose first leg fails: it cancels the other (a message), and ends cancelled once both
	// legs have ended (their on_final messages), out of the state that started them. Messages are
	// delivered (as by fsmd serve) until it has ended.
	msgCtx, stopMessages := context.WithCancel(ctx)
	delivering := make(chan struct{})
	go func() {
		defer close(delivering)
		svc.RunMessages(msgCtx, service.MessageOptions{})
	}()
	stopDelivering := func() { stopMessages(); <-delivering }
	t.Cleanup(stopDelivering)
	want(as("POST", "/v1/instances", map[string]any{"definition": "trip", "id": "trip-done", "context": map[string]any{"legs": legs}}), 201)
	send("trip-done", "book", nil, 200)
	send(machine.ChildID("trip-done", "legs", 1, 0), "fail", nil, 200)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var done struct {
			State    string         `json:"state"`
			Children map[string]any `json:"children"`
		}
		if err := json.Unmarshal(as("GET", "/v1/instances/trip-done", nil).body, &done); err != nil {
			t.Fatal(err)
		}
		if done.State == "cancelled" {
			if done.Children != nil {
				t.Fatalf("trip-done, cancelled, has the children of its current entry: %v", done.Children)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trip-done is %s after 20s, want cancelled", done.State)
		}
	}
	stopDelivering()
	// It ended on both legs' outcomes: the first failed, the other cancelled by it.
	var doneLegs struct {
		Items []struct {
			ID    string `json:"id"`
			State string `json:"state"`
			Final bool   `json:"final"`
		} `json:"items"`
	}
	if err := json.Unmarshal(as("GET", "/v1/instances/trip-done/children", nil).body, &doneLegs); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(doneLegs.Items); got != "[{trip-done.legs.1.0 failed true} {trip-done.legs.1.1 cancelled true}]" {
		t.Fatalf("trip-done is cancelled, its legs are %s", got)
	}

	// Refusals are counted in memory and written about once a second: wait until the stats have them.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		body := string(as("GET", "/v1/definitions/order/stats", nil).body)
		if strings.Contains(body, `"guard_rejected":1`) && strings.Contains(body, `"invalid_transition":1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the order's stats have not counted the refusals after 20s: %s", body)
		}
	}

	shots := os.Getenv("FSMD_SCREENSHOTS")
	if shots == "" {
		shots, _ = filepath.Abs("ui/screenshots")
	}
	fixture, _ := json.Marshal(consoleFixture{URL: srv.URL, OpenURL: noKeys.URL, Key: keys["read"], WriteKey: keys["write"],
		FinanceKey: keys["finance"], Payable: "order-pay", Amount: 25, Approval: "approval-1", Assigned: "approval-2", Order: "order-1", OrderState: "delivered",
		OrderEvents: 3, Pending: "order-5", XSS: consoleXSS, Stranded: "claim-h1", Trip: "trip-1", TripLegs: tripLegs,
		ManyTrip: "trip-many", ManyLegs: consoleManyLegs, DoneTrip: "trip-done", Screenshots: shots,
		AdminKey: keys["admin"], BulkLoans: bulkLoans, RepairLoan: "loan-repair", PauseLoan: "loan-pause", EndLoan: "loan-end",
		DeadLetter: "dl-console-1"})

	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = "ui"
	cmd.Env = append(os.Environ(), "FSMD_CONSOLE_FIXTURE="+string(fixture))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("console.mjs:\n%s", out.String())
	if err != nil {
		t.Fatalf("console.mjs: %v", err)
	}
}

// consoleDeadLetter stores a dead webhook delivery of instance inst (to its definition's crm webhook,
// which has no other row of it), as the dispatcher leaves one it gave up on: inserted due long ago,
// claimed, and failed for good.
func consoleDeadLetter(t *testing.T, db *persistence.DB, id, inst string) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	err := db.WithTx(ctx, func(tx *persistence.Tx) error {
		row := persistence.OutboxRow{ID: id, InstanceID: inst, Seq: 1, Definition: "order", Version: 1, Webhook: "crm",
			URL: "https://crm.example.com/fsmd/orders", Destination: "https://crm.example.com:443",
			Body: []byte(`{"instance":"` + inst + `","event":"pay"}`), NextTryAt: at, CreatedAt: time.Now()}
		if err := persistence.OutboxInsert(ctx, tx, []persistence.OutboxRow{row}); err != nil {
			return err
		}
		claimed, err := persistence.OutboxClaim(ctx, tx, persistence.OutboxClaimParams{Now: at.Add(time.Minute),
			LeaseUntil: at.Add(time.Hour), Claim: "console", Limit: 1})
		if err != nil || len(claimed) != 1 || claimed[0].ID != id {
			return fmt.Errorf("claimed %v: %v", claimed, err)
		}
		return persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: id, Claim: "console", At: time.Now(),
			Error: "HTTP 503 from https://crm.example.com/fsmd/orders", Dead: true})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// consoleKeys are the keys of the console's server, by name: read, write and admin, and finance (a
// write key in the group finance).
func consoleKeys(t *testing.T) (map[string]string, *auth.Keys) {
	t.Helper()
	keys, parsed := testKeys(t, testKey{auth.Read, "read-key", nil}, testKey{auth.Write, "write-key", nil},
		testKey{auth.Admin, "admin-key", nil}, testKey{auth.Write, "finance-key", []string{"finance"}})
	byRole := map[string]string{}
	for name, key := range keys {
		byRole[strings.TrimSuffix(name, "-key")] = key
	}
	return byRole, parsed
}

// consoleTools finds node and the driver script, and checks that Chromium and playwright-core are
// installed; a machine without them fails the test, naming what to install (`make ui-deps`).
func consoleTools(t *testing.T) (node, script string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: the console test drives Chromium with playwright-core (run make ui-deps)")
	}
	for _, need := range []string{"/usr/bin/chromium", "ui/node_modules/playwright-core/package.json"} {
		if _, err := os.Stat(need); errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s is missing: run make ui-deps (Debian's chromium, and npm ci in tests/ui)", need)
		}
	}
	return node, "console.mjs"
}
