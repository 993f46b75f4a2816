package migration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/migration"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// claimV1 and claimV2 are the versions the executor tests move between: a rename (triage), a
// guarded split (review), a removed state (on_hold: stranded), a dropped field (note) and a new one
// with a default (priority). No migrate.context rule and no type change: the groups without a
// guard move in SQL on PostgreSQL. NAME is replaced, so that one database holds several copies.
const (
	claimV1 = `name: NAME
initial: received
context:
  amount: int
  note: string
  tags: [string]
states:
  received: {on: {triage: triage}}
  triage:
    on: {assess: review, hold: on_hold, nudge: triage}
    timers: [{after: 1h, event: nudge}]
  review: {on: {approve: approved}}
  on_hold: {on: {release: triage}}
  approved: {on: {pay: paid}}
  paid: {final: true}
`
	claimV2 = `name: NAME
initial: received
context:
  amount: int
  tags: [string]
  priority: {type: int, default: 3}
migrate:
  policy: manual
  states:
    triage: screening
    review:
      - to: senior_review
        guard: ctx.amount > 1000
      - to: review
states:
  received:
    on: {screen: screening}
    timers: [{at: 'instance.created_at + duration("72h")', event: screen}]
  screening:
    on: {assess: review, stale: received}
    timers: [{after: 48h, event: stale}]
  review: {on: {approve: approved}}
  senior_review: {on: {approve: approved}}
  approved: {on: {pay: paid}}
  paid: {final: true}
`
)

// claims is a database with both versions of a claim definition registered under name, and its
// migrator.
type claims struct {
	db   *persistence.DB
	name string
	defs map[int]*machine.Definition
	now  time.Time
}

func newClaims(t *testing.T, db *persistence.DB, name string) *claims {
	t.Helper()
	c := &claims{db: db, name: name, defs: map[int]*machine.Definition{}, now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	for v, src := range []string{claimV1, claimV2} {
		src = strings.ReplaceAll(src, "NAME", name)
		def, diags := machine.Parse(name+".yaml", []byte(src))
		if diags.Errors() > 0 {
			t.Fatalf("%s version %d: %v", name, v+1, diags)
		}
		c.defs[v+1] = def
		row := persistence.DefinitionRow{Name: name, Version: v + 1, Hash: fmt.Sprint(name, v), Source: src, CreatedAt: c.now}
		if err := db.WithTx(context.Background(), func(tx *persistence.Tx) error { return persistence.DefinitionInsert(context.Background(), tx, row) }); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *claims) migrator(batch int) *migration.Migrator {
	return &migration.Migrator{DB: c.db, Batch: batch, Now: func() time.Time { return c.now },
		Defs: func(name string, version int) (*machine.Definition, int, error) {
			if version == 0 {
				version = len(c.defs)
			}
			def := c.defs[version]
			if name != c.name || def == nil {
				return nil, 0, &migration.NotFoundError{What: fmt.Sprintf("definition %q version %d", name, version)}
			}
			return def, version, nil
		}}
}

// seed creates n instances of version 1, id NAME-00000..., spread over its states (paid, final,
// every sixth), amounts alternating around the split's 1000.
func (c *claims) seed(t *testing.T, n int) {
	t.Helper()
	states := []string{"received", "triage", "review", "on_hold", "approved", "paid"}
	err := c.db.WithTx(context.Background(), func(tx *persistence.Tx) error {
		for i := range n {
			st := states[i%len(states)]
			ctx := fmt.Sprintf(`{"amount": %d, "note": "n%d", "tags": ["t%d"]}`, 500+(i/6%3)*400, i, i%4)
			err := persistence.InstanceInsert(context.Background(), tx, persistence.InstanceRow{
				ID: fmt.Sprintf("%s-%05d", c.name, i), Definition: c.name, Version: 1, State: st, Context: []byte(ctx),
				Revision: int64(i % 3), Final: st == "paid", CreateHash: "h", CreatedAt: c.now, UpdatedAt: c.now, EnteredAt: c.now})
			if err != nil {
				return err
			}
			if st == "triage" { // its v1 timer, which the migration replaces
				if err := persistence.TimersReplace(context.Background(), tx, fmt.Sprintf("%s-%05d", c.name, i), false,
					int64(i%3), []persistence.Arm{{Event: "nudge", DueAt: c.now.Add(time.Hour)}}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// run starts and runs a migration of every older version to version 2.
func (c *claims) run(t *testing.T, m *migration.Migrator, id string) migration.Status {
	t.Helper()
	if _, err := m.Start(context.Background(), id, c.name, migration.Request{}); err != nil {
		t.Fatal(err)
	}
	st, err := m.Run(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// instance is what a test compares of an instance and its history, with the definition's name
// taken out of ids.
type instance struct {
	Version  int
	State    string
	Context  map[string]any
	Revision int64
	Final    bool
	History  []string
	Timers   []string
}

func (c *claims) instances(t *testing.T) map[string]instance {
	t.Helper()
	ctx := context.Background()
	rows, err := persistence.InstanceList(ctx, c.db, persistence.InstanceListParams{Definition: c.name, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]instance{}
	for _, r := range rows {
		in := instance{Version: r.Version, State: r.State, Context: decode(t, r.Context), Revision: r.Revision, Final: r.Final}
		timers, err := persistence.TimersOf(ctx, c.db, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, tm := range timers {
			in.Timers = append(in.Timers, fmt.Sprintf("%s@%s r%d", tm.Event, tm.DueAt.Sub(c.now), tm.Revision))
		}
		h, err := persistence.TransitionList(ctx, c.db, persistence.TransitionListParams{InstanceID: r.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range h {
			in.History = append(in.History, fmt.Sprintf("%d %s %s %s->%s v%d->v%d %s %s request %s at %s", tr.Seq, tr.Source, tr.Event,
				tr.From, tr.To, tr.FromVersion, tr.DefinitionVersion, canonical(t, tr.ContextBefore), canonical(t, tr.ContextAfter),
				tr.RequestID, tr.At.Format(time.RFC3339)))
		}
		out[strings.TrimPrefix(r.ID, c.name)] = in
	}
	return out
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

func canonical(t *testing.T, b []byte) string {
	t.Helper()
	out, _ := json.Marshal(decode(t, b))
	return string(out)
}

// TestRunInSQLMatchesPerInstance: on PostgreSQL the groups without a guard move in SQL; what they
// write (instances, contexts, audit rows) is what deciding and writing each instance in Go writes.
func TestRunInSQLMatchesPerInstance(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	inSQL, perInstance := newClaims(t, db, "a"), newClaims(t, db, "b")
	const n = 240 // batches of 7: several per group, the last one short
	inSQL.seed(t, n)
	perInstance.seed(t, n)
	// Contexts written outside fsmd, in states SQL would move: SQL leaves them to Go, which decides
	// as it does for every instance.
	for _, c := range []*claims{inSQL, perInstance} {
		for id, ctx := range map[string]string{
			"-00006": `{"amount": "lots", "note": "", "tags": []}`,         // a string for an int: stranded
			"-00007": `{"amount": 1.5, "note": "", "tags": []}`,            // a fraction for an int: stranded
			"-00012": `{"amount": 7, "note": "", "tags": [], "zzz": true}`, // a field v1 lacks: stranded
		} {
			if _, err := db.X.Exec(`UPDATE instances SET context = $1 WHERE id = $2`, ctx, c.name+id); err != nil {
				t.Fatal(err)
			}
		}
	}

	planA, err := inSQL.migrator(7).Plan(context.Background(), "a", migration.Request{})
	if err != nil {
		t.Fatal(err)
	}
	planB, err := migration.PerInstance(perInstance.migrator(7)).Plan(context.Background(), "b", migration.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := planString(planA, "a"), planString(planB, "b"); a != b {
		t.Fatalf("plans differ:\n in SQL       %s\n per instance %s", a, b)
	}
	stA := inSQL.run(t, inSQL.migrator(7), "m")
	stB := perInstance.run(t, migration.PerInstance(perInstance.migrator(7)), "m2")
	if stA.Migrated != stB.Migrated || stA.Stranded != stB.Stranded || stA.Migrated != 157 || stA.Stranded != 43 {
		t.Fatalf("in SQL: %d migrated %d stranded; per instance: %d and %d; want 157 and 43",
			stA.Migrated, stA.Stranded, stB.Migrated, stB.Stranded)
	}
	a, b := inSQL.instances(t), perInstance.instances(t)
	if len(a) != n {
		t.Fatalf("%d instances, want %d", len(a), n)
	}
	for id, ia := range a {
		ib := b[id]
		for i := range ib.History { // the migrations' ids differ
			ib.History[i] = strings.ReplaceAll(ib.History[i], "request m2 ", "request m ")
		}
		if !reflect.DeepEqual(ia, ib) {
			t.Errorf("instance %s:\n in SQL       %+v\n per instance %+v", id, ia, ib)
		}
	}
	// And what they wrote is right: spot checks of each kind of group.
	for id, want := range map[string]string{
		"-00000": "2 received 1 map[amount:500 priority:3 tags:[t0]]",       // kept its name, in SQL
		"-00001": "2 screening 2 map[amount:500 priority:3 tags:[t1]]",      // renamed, in SQL
		"-00014": "2 senior_review 3 map[amount:1300 priority:3 tags:[t2]]", // split by its amount
		"-00008": "2 review 3 map[amount:900 priority:3 tags:[t0]]",         // the other branch
		"-00003": "1 on_hold 0 map[amount:500 note:n3 tags:[t3]]",           // stranded: on_hold is gone
		"-00005": "1 paid 2 map[amount:500 note:n5 tags:[t1]]",              // final: untouched
		"-00006": "1 received 0 map[amount:lots note: tags:[]]",             // context_invalid
		"-00007": "1 triage 1 map[amount:1.5 note: tags:[]]",                // context_invalid
		"-00012": "1 received 0 map[amount:7 note: tags:[] zzz:true]",       // context_invalid
	} {
		in := a[id]
		if got := fmt.Sprint(in.Version, " ", in.State, " ", in.Revision, " ", in.Context); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
		if got, want := fmt.Sprint(in.Timers), map[string]string{
			"-00000": "[screen@72h0m0s r1]", // an expression's timer, armed in Go
			"-00001": "[stale@48h0m0s r2]",  // the v1 timer replaced, in SQL
			"-00007": "[nudge@1h0m0s r1]",   // stranded: its v1 timer stays
			"-00014": "[]", "-00008": "[]",  // review states have none
		}[id]; want != "" && got != want {
			t.Errorf("%s: timers %s, want %s", id, got, want)
		}
		if moved := in.Version == 2; moved != (len(in.History) == 1) {
			t.Errorf("%s: history %q", id, in.History)
		}
	}
	strandedA := map[string]int64{}
	for _, st := range planA.Stranded {
		strandedA[st.FromState+" "+st.Reason] = st.Count
	}
	if strandedA["received context_invalid"] != 2 || strandedA["triage context_invalid"] != 1 {
		t.Errorf("the plan's stranded: %+v", planA.Stranded)
	}
	if got, want := a["-00001"].History[0], `2 migration migrate triage->screening v1->v2 {"amount":500,"note":"n1","tags":["t1"]} {"amount":500,"priority":3,"tags":["t1"]} request m at 2026-11-21T12:00:00Z`; got != want {
		t.Errorf("audit row:\n got %s\nwant %s", got, want)
	}
}

// planString is a plan with the definition's name taken out of the sample ids.
func planString(p migration.Plan, name string) string {
	p.Definition = ""
	for i := range p.Stranded {
		for j, id := range p.Stranded[i].Sample {
			p.Stranded[i].Sample[j] = strings.TrimPrefix(id, name)
		}
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// TestRunResumes: a migration stopped between batches (its context canceled) stays running; run
// again, it moves the rest, and none twice. The plan and the result agree.
func TestRunResumes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		c := newClaims(t, db, "c")
		c.seed(t, 60)
		m := c.migrator(4)
		plan, err := m.Plan(context.Background(), "c", migration.Request{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Start(context.Background(), "m", "c", migration.Request{}); err != nil {
			t.Fatal(err)
		}
		// Cancel once a few batches have committed.
		ctx, cancel := context.WithCancel(context.Background())
		batches := 0
		stop := *m
		stop.Now = func() time.Time {
			if batches++; batches == 4 {
				cancel()
			}
			return c.now
		}
		if _, err := stop.Run(ctx, "m"); !errors.Is(err, context.Canceled) {
			t.Fatalf("the stopped run: %v, want context.Canceled", err)
		}
		st, err := m.Get(context.Background(), "m")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "running" || st.Migrated == 0 || st.Migrated >= 40 {
			t.Fatalf("after the stop: %+v, want running with some but not all migrated", st)
		}
		st, err = m.Run(context.Background(), "m")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "done" || st.Migrated != 40 || st.Stranded != 10 || st.Total != 50 {
			t.Fatalf("after the resume: %+v, want done, 40 migrated, 10 stranded", st)
		}
		if got, want := planString(*st.Result, "c"), planString(plan, "c"); got != want {
			t.Errorf("result:\n got %s\nwant %s (the plan)", got, want)
		}
		for id, in := range c.instances(t) {
			migrations := 0
			for _, h := range in.History {
				if strings.Contains(h, " migration ") {
					migrations++
				}
			}
			if want := map[bool]int{true: 1, false: 0}[in.Version == 2]; migrations != want {
				t.Errorf("%s: %d migration rows, want %d: %q", id, migrations, want, in.History)
			}
		}
	})
}

// TestStartRefusesSecond: one migration of a definition runs at a time; the second is refused with
// the first's id, and can start once the first is done.
func TestStartRefusesSecond(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		c := newClaims(t, db, "d")
		c.seed(t, 12)
		m := c.migrator(0)
		ctx := context.Background()
		if _, err := m.Start(ctx, "first", "d", migration.Request{}); err != nil {
			t.Fatal(err)
		}
		_, err := m.Start(ctx, "second", "d", migration.Request{FromState: "review"})
		var running *migration.RunningError
		if !errors.As(err, &running) || running.ID != "first" || running.Code() != "migration_running" ||
			!strings.Contains(err.Error(), "first") {
			t.Fatalf("the second start: %v, want a RunningError naming first", err)
		}
		if _, err := m.Get(ctx, "second"); err == nil {
			t.Error("the refused migration was recorded")
		}
		if _, err := m.Run(ctx, "first"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Start(ctx, "third", "d", migration.Request{}); err != nil {
			t.Fatalf("after the first is done: %v", err)
		}
	})
}

// TestStartTotal: the total of a migration counts what its filter selects.
func TestStartTotal(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		c := newClaims(t, db, "e")
		c.seed(t, 30) // 5 in each state
		st, err := c.migrator(0).Start(context.Background(), "m", "e", migration.Request{FromState: "review"})
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 5 {
			t.Fatalf("total %d, want 5 (the instances in review)", st.Total)
		}
	})
}

// TestRunElsewhere: a migration has one runner. While another process holds it (here: its lock),
// Run returns ErrRunElsewhere at once and moves nothing; once released, Run finishes it.
func TestRunElsewhere(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	c := newClaims(t, db, "f")
	c.seed(t, 12)
	m := c.migrator(0)
	ctx := context.Background()
	if _, err := m.Start(ctx, "m", "f", migration.Request{}); err != nil {
		t.Fatal(err)
	}
	release, ok, err := db.TryLock(ctx, "migration m")
	if err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	if _, err := m.Run(ctx, "m"); !errors.Is(err, migration.ErrRunElsewhere) {
		t.Fatalf("Run while the lock is held: %v, want ErrRunElsewhere", err)
	}
	if st, _ := m.Get(ctx, "m"); st.Status != "running" || st.Migrated != 0 {
		t.Fatalf("after the refused run: %+v", st)
	}
	release()
	st, err := m.Run(ctx, "m")
	if err != nil || st.Status != "done" || st.Migrated != 8 {
		t.Fatalf("after the release: %+v, %v", st, err)
	}
}
