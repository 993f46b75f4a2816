package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// deposit is a deposit's write as fsmd makes it for the account of bench/testdata, on instance i
// from revision rev: the update and its audit row.
func deposit(i int, rev int64, at time.Time) (persistence.InstanceUpdateParams, persistence.TransitionRow) {
	before := `{"owner": "bench", "balance": 0, "deposits": 0, "last_reference": "", "last_deposit_at": null}`
	after := `{"owner": "bench", "balance": 17, "deposits": 1, "last_reference": "c0-1", "last_deposit_at": "2026-12-07T06:00:00Z"}`
	u := persistence.InstanceUpdateParams{ID: instanceID(i), ExpectRevision: rev, Version: 1, State: "open",
		Context: []byte(after), Revision: rev + 1, UpdatedAt: at, EnteredAt: at.Add(-time.Hour)}
	r := persistence.TransitionRow{InstanceID: instanceID(i), Seq: rev + 1, Event: "deposit", From: "open", To: "open",
		Guards:  []byte(`[{"expr": "event.amount > 0 && event.amount <= 1000000 && event.reference != \"\"", "result": true}]`),
		Payload: []byte(`{"amount": 17, "reference": "c0-1"}`), ContextBefore: []byte(before), ContextAfter: []byte(after),
		Source: "api", RequestID: "01kc0000000000000000000000", RequestHash: "", DefinitionVersion: 1, At: at,
		ActorKind: "user"}
	return u, r
}

func TestBuildCeilingScript(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	inst := persistence.InstanceRow{ID: instanceID(0), Definition: "account", Version: 1, State: "open", Revision: 1,
		EnteredAt: at.Add(-time.Hour)}
	_, last := deposit(0, 0, at)
	s, err := buildCeilingScript(inst, last, 8, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// The statement's variables: the id and the revision read once, the new revision twice (the
	// update and the audit row's seq), the time twice (updated_at and at), in each branch.
	for name, want := range map[string]int{":id": 1, ":expect": 1, ":rev": 2, ":ts": 2} {
		if s.uses[name] != want {
			t.Errorf("%s used %d times, want %d", name, s.uses[name], want)
		}
	}
	branches := strings.Split(s.script, "\\else")
	if len(branches) != 2 || !strings.Contains(branches[0], ":tsa,") && !strings.Contains(branches[0], ":tsa ") ||
		strings.Contains(branches[0], ":tsb") || !strings.Contains(branches[1], ":tsb") || strings.Contains(branches[1], ":tsa") {
		t.Errorf("each branch should write its own time:\n%s", s.script)
	}
	for _, want := range []string{"\\set slot (:n - 1) % 125\n", "\\set id 1000000 + :client_id + 8 * :slot\n",
		"\\set expect :base + :round\n", "\\set rev :expect + 1\n", "WHERE id = :id AND revision = :expect", "NULL::text", "''::text"} {
		if !strings.Contains(s.script, want) {
			t.Errorf("the script has no %q:\n%s", want, s.script)
		}
	}
	if strings.Contains(s.script, "$") {
		t.Errorf("a $ parameter is left in the script:\n%s", s.script)
	}
	consts := strings.Join(s.consts, "\n")
	for _, want := range []string{string(last.ContextAfter), string(last.Payload), "=deposit", "=" + last.RequestID, "tsa=2030-01-01 00:00:00Z"} {
		if !strings.Contains(consts, want) {
			t.Errorf("the constants have no %q:\n%s", want, consts)
		}
	}
	// With -idempotency-key every event has a key of its own: the replay's is the new revision.
	keyed := last
	keyed.IdempotencyKey = "c0-1"
	k, err := buildCeilingScript(inst, keyed, 8, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if k.uses[":rev"] != 3 || strings.Contains(strings.Join(k.consts, "\n"), "=c0-1") {
		t.Errorf("a keyed event: :rev used %d times (want 3), constants %v", k.uses[":rev"], k.consts)
	}
	if _, err := buildCeilingScript(inst, last, 8, 7); err == nil {
		t.Error("fewer instances than clients: no error")
	}
}

func TestArgText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   any
		want string
		ok   bool
	}{
		{"open", "open", true},
		{[]byte(`{"a": 1}`), `{"a": 1}`, true},
		{7, "7", true},
		{int64(-3), "-3", true},
		{true, "true", true},
		{time.Date(2026, 12, 7, 6, 1, 2, 345678000, time.UTC), "2026-12-07 06:01:02.345678Z", true},
		{"two\nlines", "", false},
		{3.5, "", false},
	} {
		got, err := argText(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("argText(%#v) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestCeilingReplay runs the ceiling's phase for a second on a database of fsmd's schema whose
// instances took one deposit each through persistence.InstanceAdvance: every statement pgbench
// sends must update its instance and write its audit row (runCeiling checks it), and the rows it
// writes must be the template's.
func TestCeilingReplay(t *testing.T) {
	pgbench, err := findPgbench("")
	if err != nil {
		t.Skip(err)
	}
	dbURL := dbtest.PostgresDatabaseURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const instances = 20
	at := time.Now().UTC().Truncate(time.Microsecond)
	err = db.WithTx(ctx, func(tx *persistence.Tx) error {
		if err := persistence.DefinitionInsert(ctx, tx, persistence.DefinitionRow{Name: "account", Version: 1, Hash: "h",
			Source: "name: account", CreatedAt: at}); err != nil {
			return err
		}
		for i := range instances {
			if err := persistence.InstanceInsert(ctx, tx, persistence.InstanceRow{ID: instanceID(i), Definition: "account",
				Version: 1, State: "open", Context: []byte(`{"owner": "bench", "balance": 0}`), CreateHash: "c",
				CreatedAt: at, UpdatedAt: at, EnteredAt: at, Children: []byte(`{}`)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range instances {
		u, r := deposit(i, 0, at)
		if err := persistence.InstanceAdvance(ctx, db, u, r); err != nil {
			t.Fatal(err)
		}
	}
	pg, err := dbtest.OpenServer(ctx, dbtest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	var out, log bytes.Buffer
	b := newBench(config{Clients: 3, Duration: time.Second, Warmup: time.Second, Instances: instances,
		DatabaseURL: dbtest.PostgresURL()}, &out, &log)
	b.dir = t.TempDir()
	name := dbURL[strings.LastIndex(dbURL, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	res, err := b.runCeiling(ctx, pg, pgbench, name, dbURL)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.count == 0 || res.tps <= 0 || res.failed != 0 || res.lat.p50 <= 0 {
		t.Fatalf("ceiling = %+v", res)
	}
	// Instance 0 belongs to client 0, which wrote it; its last audit row is the template's event.
	inst, err := persistence.InstanceGet(ctx, db, instanceID(0))
	if err != nil {
		t.Fatal(err)
	}
	if inst.Revision <= 1 {
		t.Fatalf("instance 0 at revision %d: the replay did not write it", inst.Revision)
	}
	got, err := persistence.TransitionGet(ctx, db, inst.ID, inst.Revision)
	if err != nil {
		t.Fatal(err)
	}
	_, want := deposit(0, 0, at)
	same := func(a, b []byte) bool {
		var x, y any
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && jsonEqual(x, y)
	}
	if got.Event != want.Event || got.RequestID != want.RequestID || !same(got.Payload, want.Payload) ||
		!same(got.ContextAfter, want.ContextAfter) || !same(inst.Context, want.ContextAfter) {
		t.Errorf("the replay wrote %+v\ninstance %+v\nwant the template %+v", got, inst, want)
	}
	if !got.At.Equal(ceilingTimeA) && !got.At.Equal(ceilingTimeB) {
		t.Errorf("audit row at %v, want one of the replay's times", got.At)
	}
}

// jsonEqual compares two decoded JSON values.
func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestParseStatusSize(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status string
		want   int64
	}{
		{"Name:\tfsmd\nVmPeak:\t  1264112 kB\nVmHWM:\t    51234 kB\nVmRSS:\t    40000 kB\n", 51234 << 10},
		{"Name:\tfsmd\nVmRSS:\t    40000 kB\n", -1},
		{"VmHWMx:\t    12 kB\n", -1},
		{"VmHWM:\t    x kB\n", -1},
		{"VmHWM:\t    12 MB\n", -1},
	} {
		if got := parseStatusSize(tt.status, "VmHWM"); got != tt.want {
			t.Errorf("parseStatusSize(%q, VmHWM) = %d, want %d", tt.status, got, tt.want)
		}
	}
	if got := peakRSS(-1); got != -1 {
		t.Errorf("peakRSS(-1) = %d", got)
	}
}
