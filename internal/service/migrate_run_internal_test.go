package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
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

// claims is a database with both versions of a claim definition registered under name, and the
// registry of services over it.
type claims struct {
	db   *persistence.DB
	name string
	reg  *registry
	now  time.Time
}

func newClaims(t *testing.T, db *persistence.DB, name string) *claims {
	t.Helper()
	c := &claims{db: db, name: name, reg: newRegistry(), now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	for v, src := range []string{claimV1, claimV2} {
		src = strings.ReplaceAll(src, "NAME", name)
		def, diags := machine.Parse(name+".yaml", []byte(src))
		if diags.Errors() > 0 {
			t.Fatalf("%s version %d: %v", name, v+1, diags)
		}
		row := persistence.DefinitionRow{Name: name, Version: v + 1, Hash: fmt.Sprint(name, v), Source: src, CreatedAt: c.now}
		if err := db.WithTx(context.Background(), func(tx *persistence.Tx) error { return persistence.DefinitionInsert(context.Background(), tx, row) }); err != nil {
			t.Fatal(err)
		}
		c.reg.add(row, def)
	}
	return c
}

// service is a service over the claims that migrates batch instances per transaction, its clock
// now (c.now when nil).
func (c *claims) service(t *testing.T, batch int, now func() time.Time) *Service {
	t.Helper()
	if now == nil {
		now = func() time.Time { return c.now }
	}
	s := New(c.db, Options{Now: now, MigrationBatch: batch, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.reg = c.reg
	t.Cleanup(s.Close)
	return s
}

// perInstance makes s decide and write every instance in Go, even where SQL could move them.
func perInstance(s *Service) *Service {
	s.mig.perInstance = true
	return s
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
func (c *claims) run(t *testing.T, s *Service, id string) MigrationStatus {
	t.Helper()
	if _, err := s.startMigration(context.Background(), id, c.name, MigrationRequest{}); err != nil {
		t.Fatal(err)
	}
	st, err := s.runMigration(context.Background(), id)
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
		in := instance{Version: r.Version, State: r.State, Context: decodeObject(t, r.Context), Revision: r.Revision, Final: r.Final}
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
				tr.From, tr.To, tr.FromVersion, tr.DefinitionVersion, canonicalObject(t, tr.ContextBefore), canonicalObject(t, tr.ContextAfter),
				tr.RequestID, tr.At.Format(time.RFC3339)))
		}
		out[strings.TrimPrefix(r.ID, c.name)] = in
	}
	return out
}

func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

func canonicalObject(t *testing.T, b []byte) string {
	t.Helper()
	out, _ := json.Marshal(decodeObject(t, b))
	return string(out)
}

// TestMigrationRunInSQLMatchesPerInstance: on PostgreSQL the groups without a guard move in SQL; what they
// write (instances, contexts, audit rows) is what deciding and writing each instance in Go writes.
func TestMigrationRunInSQLMatchesPerInstance(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	inSQL, byInstance := newClaims(t, db, "insql"), newClaims(t, db, "ingo")
	const n = 240 // batches of 7: several per group, the last one short
	inSQL.seed(t, n)
	byInstance.seed(t, n)
	// Contexts written outside fsmd, in states SQL would move: SQL leaves them to Go, which decides
	// as it does for every instance.
	for _, c := range []*claims{inSQL, byInstance} {
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

	planA, err := inSQL.service(t, 7, nil).PlanMigration(context.Background(), "insql", MigrationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	planB, err := perInstance(byInstance.service(t, 7, nil)).PlanMigration(context.Background(), "ingo", MigrationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := planString(planA, "insql"), planString(planB, "ingo"); a != b {
		t.Fatalf("plans differ:\n in SQL       %s\n per instance %s", a, b)
	}
	stA := inSQL.run(t, inSQL.service(t, 7, nil), "m")
	stB := byInstance.run(t, perInstance(byInstance.service(t, 7, nil)), "m2")
	if stA.Migrated != stB.Migrated || stA.Stranded != stB.Stranded || stA.Migrated != 157 || stA.Stranded != 43 {
		t.Fatalf("in SQL: %d migrated %d stranded; per instance: %d and %d; want 157 and 43",
			stA.Migrated, stA.Stranded, stB.Migrated, stB.Stranded)
	}
	a, b := inSQL.instances(t), byInstance.instances(t)
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

// planString is a plan with the definition's name taken out of the sample ids, and out of the
// details (a context that does not fit names its instance and definition).
func planString(p MigrationPlan, name string) string {
	p.Definition = ""
	named := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`)
	for i := range p.Stranded {
		for j, id := range p.Stranded[i].Sample {
			p.Stranded[i].Sample[j] = strings.TrimPrefix(id, name)
		}
		p.Stranded[i].Detail = named.ReplaceAllString(p.Stranded[i].Detail, "NAME")
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// TestMigrationRunResumes: a migration stopped between batches (its context canceled) stays running; run
// again, it moves the rest, and none twice. The plan and the result agree.
func TestMigrationRunResumes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		c := newClaims(t, db, "c")
		c.seed(t, 60)
		m := c.service(t, 4, nil)
		plan, err := m.PlanMigration(context.Background(), "c", MigrationRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.startMigration(context.Background(), "m", "c", MigrationRequest{}); err != nil {
			t.Fatal(err)
		}
		// Cancel once a few batches have committed.
		ctx, cancel := context.WithCancel(context.Background())
		var batches atomic.Int32 // batches of two groups may run at once
		stop := c.service(t, 4, func() time.Time {
			if batches.Add(1) == 4 {
				cancel()
			}
			return c.now
		})
		if _, err := stop.runMigration(ctx, "m"); !errors.Is(err, context.Canceled) {
			t.Fatalf("the stopped run: %v, want context.Canceled", err)
		}
		st, err := m.GetMigration(context.Background(), "m")
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != "running" || st.Migrated == 0 || st.Migrated >= 40 {
			t.Fatalf("after the stop: %+v, want running with some but not all migrated", st)
		}
		st, err = m.runMigration(context.Background(), "m")
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

// TestMigrationStartRefusesSecond: one migration of a definition runs at a time; the second is refused with
// the first's id, and can start once the first is done.
func TestMigrationStartRefusesSecond(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		c := newClaims(t, db, "d")
		c.seed(t, 12)
		m := c.service(t, 0, nil)
		ctx := context.Background()
		if _, err := m.startMigration(ctx, "first", "d", MigrationRequest{}); err != nil {
			t.Fatal(err)
		}
		_, err := m.startMigration(ctx, "second", "d", MigrationRequest{Filter: &MigrationFilter{State: "review"}})
		var running *MigrationRunningError
		if !errors.As(err, &running) || running.ID != "first" || running.Code() != "migration_running" ||
			!strings.Contains(err.Error(), "first") {
			t.Fatalf("the second start: %v, want a RunningError naming first", err)
		}
		if _, err := m.GetMigration(ctx, "second"); err == nil {
			t.Error("the refused migration was recorded")
		}
		if _, err := m.runMigration(ctx, "first"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.startMigration(ctx, "third", "d", MigrationRequest{}); err != nil {
			t.Fatalf("after the first is done: %v", err)
		}
	})
}

// TestMigrationStartTotal: the total of a migration counts what its filter selects.
func TestMigrationStartTotal(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		c := newClaims(t, db, "e")
		c.seed(t, 30) // 5 in each state
		st, err := c.service(t, 0, nil).startMigration(context.Background(), "m", "e", MigrationRequest{Filter: &MigrationFilter{State: "review"}})
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 5 {
			t.Fatalf("total %d, want 5 (the instances in review)", st.Total)
		}
	})
}

// TestMigrationRunElsewhere: a migration has one runner. While another process holds it (here: its
// lock), runMigration returns errRunElsewhere at once and moves nothing; once released, runMigration
// finishes it.
func TestMigrationRunElsewhere(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	c := newClaims(t, db, "f")
	c.seed(t, 12)
	m := c.service(t, 0, nil)
	ctx := context.Background()
	if _, err := m.startMigration(ctx, "m", "f", MigrationRequest{}); err != nil {
		t.Fatal(err)
	}
	release, ok, err := db.TryLock(ctx, "migration m")
	if err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	if _, err := m.runMigration(ctx, "m"); !errors.Is(err, errRunElsewhere) {
		t.Fatalf("Run while the lock is held: %v, want errRunElsewhere", err)
	}
	if st, _ := m.GetMigration(ctx, "m"); st.Status != "running" || st.Migrated != 0 {
		t.Fatalf("after the refused run: %+v", st)
	}
	release()
	st, err := m.runMigration(ctx, "m")
	if err != nil || st.Status != "done" || st.Migrated != 8 {
		t.Fatalf("after the release: %+v, %v", st, err)
	}
}

// TestMigrationRunLateMisfit: a context of another shape far into the SQL pass (its first), in a
// state moved in SQL; SQL leaves it, and Go decides it from that batch on: stranded as
// context_invalid, as the plan said, and every other instance moved.
func TestMigrationRunLateMisfit(t *testing.T) {
	t.Parallel()
	db := dbtest.Postgres(t)
	c := newClaims(t, db, "late")
	c.seed(t, 240)
	if _, err := db.X.Exec(`UPDATE instances SET context = '{"amount": 2.5, "note": "", "tags": []}' WHERE id = 'late-00202'`); err != nil {
		t.Fatal(err)
	}
	plan, err := c.service(t, 7, nil).PlanMigration(context.Background(), "late", MigrationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	st := c.run(t, c.service(t, 7, nil), "m")
	if got, want := planString(*st.Result, "late"), planString(plan, "late"); got != want {
		t.Errorf("result:\n got %s\nwant %s (the plan)", got, want)
	}
	var misfits int64
	for _, s := range plan.Stranded { // planString took the name off its samples
		if s.Reason == "context_invalid" {
			misfits += s.Count
			if s.FromState != "approved" || !slices.Equal(s.Sample, []string{"-00202"}) {
				t.Errorf("stranded %+v, want late-00202 in approved", s)
			}
		}
	}
	if misfits != 1 {
		t.Errorf("%d context_invalid, want 1: %+v", misfits, plan.Stranded)
	}
	for id, in := range c.instances(t) {
		stays := id == "-00202" || in.State == "on_hold" || in.State == "paid"
		if onV1 := in.Version == 1; onV1 != stays {
			t.Errorf("%s: version %d in %s", id, in.Version, in.State)
		}
	}
}

// TestAutoMigrationNothingLeft: a migration fsmd starts for policy auto that finds, once its row is
// in, no running instance on an older version (a migration that ended meanwhile moved them: CI saw
// such an empty migration recorded after the others) is not recorded; one asked for is.
func TestAutoMigrationNothingLeft(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := New(db, Options{Logger: slog.New(slog.DiscardHandler)})
		t.Cleanup(svc.Close)
		const door = "name: door\ninitial: shut\nstates:\n  shut: {on: {open: open}}\n  open: {on: {shut: shut}}\n"
		for _, src := range []string{door, door + "# version 2\n"} {
			if _, err := svc.PutDefinition(ctx, "door", []byte(src)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := svc.CreateInstance(ctx, CreateInstance{Definition: "door", ID: "d-1"}); err != nil { // on version 2
			t.Fatal(err)
		}
		if _, err := svc.StartMigration(ctx, "door", MigrationRequest{ToVersion: 2, auto: true}); !errors.Is(err, errNothingToMove) {
			t.Fatalf("an automatic migration with nothing to move: %v, want errNothingToMove", err)
		}
		page, err := svc.ListMigrations(ctx, "door", "", 10)
		if err != nil || len(page.Items) != 0 {
			t.Fatalf("migrations recorded: %+v %v, want none", page.Items, err)
		}
		if err := svc.autoMigrate(ctx, "door"); err != nil {
			t.Fatalf("autoMigrate: %v", err)
		}
		st, err := svc.StartMigration(ctx, "door", MigrationRequest{ToVersion: 2}) // asked for: recorded, if empty
		if err != nil || st.Total != 0 {
			t.Fatalf("a migration asked for: %+v %v", st, err)
		}
	})
}
