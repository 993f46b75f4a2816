package service_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// What the HTTP tests (tests/api_test.go) cannot reach easily: the event path as one transaction
// when it fails half-way, and how Register stores and loads versions across restarts.

// doorV1 and doorV2 are two versions of a definition: version 2 opens the door ajar.
const (
	doorV1 = `name: door
initial: closed
context:
  opened: int
states:
  closed:
    on:
      open: {to: opened, set: {opened: ctx.opened + 1}}
      smash: broken
  opened:
    on:
      close: closed
  broken: {final: true}
`
	doorV2 = `name: door
description: Version 2 opens ajar.
initial: closed
context:
  opened: int
states:
  closed:
    on:
      open: {to: ajar, set: {opened: ctx.opened + 1}}
      smash: broken
  ajar:
    on:
      close: closed
  broken: {final: true}
`
	ticket = `name: ticket
initial: open
states:
  open: {on: {resolve: resolved}}
  resolved: {final: true}
`
)

// set parses definitions into a set, as machine.Load would read them from files.
func set(t testing.TB, sources ...string) *machine.Set {
	t.Helper()
	s := &machine.Set{ByName: map[string]*machine.Definition{}}
	first := map[string]*machine.Definition{} // what child groups name
	for _, src := range sources {
		if def, _ := machine.Parse("def.yaml", []byte(src)); def != nil {
			first[def.Name] = def
		}
	}
	for _, src := range sources {
		def, diags := machine.ParseWith("def.yaml", []byte(src), func(name string) *machine.Definition { return first[name] })
		if diags.Errors() > 0 {
			t.Fatalf("%v", (&machine.InvalidDefinitionError{Diagnostics: diags}).Error())
		}
		s.ByName[def.Name] = def
	}
	return s
}

// start makes a service over db and registers the definitions, as `fsmd serve` does at start.
func start(t *testing.T, db *persistence.DB, sources ...string) *service.Service {
	t.Helper()
	svc := service.New(db, service.Options{})
	if err := svc.Register(context.Background(), set(t, sources...)); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return svc
}

func create(t *testing.T, svc *service.Service, definition, id string) service.Instance {
	t.Helper()
	inst, created, err := svc.CreateInstance(context.Background(), service.CreateInstance{Definition: definition, ID: id})
	if err != nil || !created {
		t.Fatalf("CreateInstance %s: %v (created %v)", id, err, created)
	}
	return inst
}

func send(t *testing.T, svc *service.Service, id, event string) service.EventResult {
	t.Helper()
	res, _, err := svc.SendEvent(context.Background(), service.SendEvent{InstanceID: id, Event: event, RequestID: "r"})
	if err != nil {
		t.Fatalf("SendEvent %s %s: %v", id, event, err)
	}
	return res
}

// untouched checks that an instance is as it was created: revision 0 in its initial state, with no
// history, and that its row is not locked (the transaction that failed released it).
func untouched(t *testing.T, svc *service.Service, db *persistence.DB, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	inst, err := svc.GetInstance(ctx, id)
	if err != nil || inst.Revision != 0 || inst.State != "closed" || fmt.Sprint(inst.Context["opened"]) != "0" {
		t.Errorf("%s after the failed event: %+v, %v", id, inst, err)
	}
	h, err := svc.History(ctx, id, 0, 0)
	if err != nil || len(h.Items) != 0 {
		t.Errorf("%s: history %+v, %v: want none", id, h.Items, err)
	}
	err = db.WithTx(ctx, func(tx *persistence.Tx) error {
		_, err := persistence.InstanceGetForUpdate(ctx, tx, id)
		return err
	})
	if err != nil {
		t.Errorf("%s: locking it after the failed event: %v", id, err)
	}
}

// cancelHooks maps an instance id to what the SQLite function fsmd_test_hook does for it.
var cancelHooks sync.Map // string -> context.CancelFunc

func init() {
	// Called by an SQLite trigger in the middle of the event path: the request's context is
	// canceled there, after the instance is updated and while its audit row is written. Registered
	// before any connection opens: SQLite connections get the functions registered when they open.
	sqlite.MustRegisterScalarFunction("fsmd_test_hook", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if id, ok := args[0].(string); ok {
			if cancel, ok := cancelHooks.Load(id); ok {
				cancel.(context.CancelFunc)()
			}
		}
		return nil, nil
	})
}

// install adds triggers on the audit log, so that writing the audit row of instance "fail" fails,
// and writing that of an instance "cancel..." takes until its request is canceled.
func install(t *testing.T, db *persistence.DB) {
	t.Helper()
	var stmts []string
	switch db.Dialect {
	case persistence.Postgres:
		stmts = []string{
			`CREATE FUNCTION fsmd_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'forced failure'; END $$`,
			`CREATE TRIGGER fsmd_test_fail BEFORE INSERT ON transitions FOR EACH ROW
				WHEN (NEW.instance_id = 'fail') EXECUTE FUNCTION fsmd_test_fail()`,
			`CREATE FUNCTION fsmd_test_slow() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$`,
			`CREATE TRIGGER fsmd_test_slow BEFORE INSERT ON transitions FOR EACH ROW
				WHEN (NEW.instance_id LIKE 'cancel%') EXECUTE FUNCTION fsmd_test_slow()`,
		}
	case persistence.SQLite:
		stmts = []string{
			`CREATE TRIGGER fsmd_test_fail BEFORE INSERT ON transitions
				WHEN NEW.instance_id = 'fail' BEGIN SELECT RAISE(ABORT, 'forced failure'); END`,
			`CREATE TRIGGER fsmd_test_cancel BEFORE INSERT ON transitions
				WHEN NEW.instance_id LIKE 'cancel%' BEGIN SELECT fsmd_test_hook(NEW.instance_id); END`,
		}
	}
	if db.Citus { // a trigger on a distributed table runs on its shards, which Citus allows when told
		stmts = append([]string{`SET citus.enable_unsafe_triggers TO on`}, stmts...)
	}
	conn, err := db.X.Conn(context.Background()) // one session, for the SET
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// cancelMidway cancels ctx once the event path of instance id is in the middle of its transaction:
// the instance updated, the audit row being written. reached tells whether it got there.
func cancelMidway(t *testing.T, db *persistence.DB, id string) (ctx context.Context, reached func() bool, cleanup func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var midway atomic.Bool
	reached = midway.Load
	switch db.Dialect {
	case persistence.SQLite:
		cancelHooks.Store(id, context.CancelFunc(func() { midway.Store(true); cancel() }))
		return ctx, reached, func() { cancelHooks.Delete(id); cancel() }
	}
	// PostgreSQL: the trigger sleeps; cancel once the server says the transaction sleeps there.
	// On Citus the trigger runs on a worker: citus_stat_activity is every node's pg_stat_activity.
	activity := "pg_stat_activity"
	if db.Citus {
		activity = "citus_stat_activity"
	}
	done := make(chan struct{})
	go func() {
		defer cancel()
		for {
			var n int
			err := db.X.QueryRow(`SELECT COUNT(*) FROM ` + activity + `
				WHERE datname = current_database() AND wait_event = 'PgSleep'`).Scan(&n)
			if err != nil {
				t.Errorf("pg_stat_activity: %v", err)
				return
			}
			if n > 0 {
				midway.Store(true)
				return
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return ctx, reached, func() { close(done); cancel() }
}

// TestSendEventOneTransaction: the instance update and its audit row commit together or not at
// all. When the audit row fails, or the request is canceled while it is being written (after the
// instance row was updated in the transaction), nothing is written and the row is not left locked.
func TestSendEventOneTransaction(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		svc := start(t, db, doorV1)
		install(t, db)

		t.Run("the audit row fails", func(t *testing.T) {
			create(t, svc, "door", "fail")
			_, _, err := svc.SendEvent(context.Background(), service.SendEvent{InstanceID: "fail", Event: "open"})
			if err == nil || !strings.Contains(err.Error(), "forced failure") {
				t.Fatalf("SendEvent: %v, want the forced failure", err)
			}
			untouched(t, svc, db, "fail")
		})

		t.Run("canceled midway", func(t *testing.T) {
			create(t, svc, "door", "cancel-1")
			ctx, reached, cleanup := cancelMidway(t, db, "cancel-1")
			defer cleanup()
			start := time.Now()
			_, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: "cancel-1", Event: "open"})
			if !errors.Is(err, context.Canceled) || !reached() {
				t.Fatalf("SendEvent: %v (midway: %v), want context.Canceled midway", err, reached())
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the canceled request took %v", d)
			}
			untouched(t, svc, db, "cancel-1")
		})

		t.Run("canceled before", func(t *testing.T) {
			create(t, svc, "door", "before")
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: "before", Event: "open"}); !errors.Is(err, context.Canceled) {
				t.Fatalf("SendEvent: %v, want context.Canceled", err)
			}
			untouched(t, svc, db, "before")
		})

		// The other instances go on as ever: the next event is seq 1.
		create(t, svc, "door", "ok")
		if res := send(t, svc, "ok", "open"); res.Transition.Seq != 1 || res.Instance.Revision != 1 || res.Instance.State != "opened" {
			t.Errorf("after the failures: %+v", res)
		}
	})
}

// versions lists the stored versions of a definition.
func versions(t *testing.T, svc *service.Service, name string) []int {
	t.Helper()
	vs, err := svc.DefinitionVersions(context.Background(), name, 0, service.MaxPageLimit)
	if err != nil {
		t.Fatalf("DefinitionVersions %s: %v", name, err)
	}
	var out []int
	for _, v := range vs.Items {
		out = append(out, v.Version)
	}
	return out
}

// rows counts the stored definition rows.
func rows(t *testing.T, db *persistence.DB) int {
	t.Helper()
	all, err := persistence.DefinitionListAll(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// TestRegister: each start registers the content it is given as the next version when it is new
// and dedups it by content hash when it is not; every stored version is loaded, so the instances of
// old versions run on their own version's rules.
func TestRegister(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := start(t, db, doorV1, ticket)
		if got := versions(t, svc, "door"); !slices.Equal(got, []int{1}) {
			t.Fatalf("door versions %v", got)
		}
		old := create(t, svc, "door", "old")

		// A restart with the same content: nothing new.
		svc = start(t, db, doorV1, ticket)
		if got := versions(t, svc, "door"); !slices.Equal(got, []int{1}) || rows(t, db) != 2 {
			t.Errorf("after a restart with the same content: door versions %v, %d rows", got, rows(t, db))
		}

		// A restart with new content for door: version 2, and version 1 still serves its instance.
		svc = start(t, db, doorV2, ticket)
		if got := versions(t, svc, "door"); !slices.Equal(got, []int{1, 2}) || rows(t, db) != 3 {
			t.Errorf("after new content: door versions %v, %d rows", got, rows(t, db))
		}
		latest, err := svc.GetDefinition(ctx, "door")
		if err != nil || latest.Version != 2 || latest.Source != doorV2 {
			t.Errorf("latest door: %+v, %v", latest, err)
		}
		v1, err := svc.DefinitionVersion(ctx, "door", 1)
		if err != nil || v1.Source != doorV1 || v1.Hash == latest.Hash {
			t.Errorf("door version 1: %+v, %v", v1, err)
		}
		if inst, err := svc.GetInstance(ctx, "old"); err != nil || inst.Version != 1 || !inst.CreatedAt.Equal(old.CreatedAt) {
			t.Errorf("the old instance: %+v, %v", inst, err)
		}
		if res := send(t, svc, "old", "open"); res.Instance.State != "opened" || res.Instance.Version != 1 {
			t.Errorf("version 1's open: %+v", res.Instance)
		}
		create(t, svc, "door", "new")
		if res := send(t, svc, "new", "open"); res.Instance.State != "ajar" || res.Instance.Version != 2 {
			t.Errorf("version 2's open: %+v", res.Instance)
		}
		h, err := svc.History(ctx, "old", 0, 0)
		if err != nil || len(h.Items) != 1 || h.Items[0].DefinitionVersion != 1 {
			t.Errorf("the old instance's history: %+v, %v", h.Items, err)
		}

		// A restart with version 1's content again: it is version 1, not a new one, and the latest
		// stays 2.
		svc = start(t, db, doorV1, ticket)
		if got := versions(t, svc, "door"); !slices.Equal(got, []int{1, 2}) || rows(t, db) != 3 {
			t.Errorf("after old content: door versions %v, %d rows", got, rows(t, db))
		}
		if latest, err := svc.GetDefinition(ctx, "door"); err != nil || latest.Version != 2 {
			t.Errorf("latest door after old content: %+v, %v", latest, err)
		}
		if res := send(t, svc, "new", "close"); res.Instance.Version != 2 || res.Instance.State != "closed" {
			t.Errorf("version 2's instance after a restart: %+v", res.Instance)
		}

		// Several processes start at once with the same new content: one version 3. With two
		// different contents: versions 4 and 5, one each.
		v3 := strings.Replace(doorV2, "Version 2", "Version 3", 1)
		v4a := strings.Replace(doorV2, "Version 2", "Version 4a", 1)
		v4b := strings.Replace(doorV2, "Version 2", "Version 4b", 1)
		for _, round := range [][]string{{v3, v3, v3, v3}, {v4a, v4b, v4a, v4b}} {
			var wg sync.WaitGroup
			errs := make([]error, len(round))
			for i, src := range round {
				defs := set(t, src)
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = service.New(db, service.Options{}).Register(ctx, defs)
				}()
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("concurrent Register: %v", err)
			}
		}
		svc = start(t, db, ticket)
		if got := versions(t, svc, "door"); !slices.Equal(got, []int{1, 2, 3, 4, 5}) || rows(t, db) != 6 {
			t.Errorf("after concurrent starts: door versions %v, %d rows", got, rows(t, db))
		}
		descs := map[string]int{}
		for v := 3; v <= 5; v++ {
			d, err := svc.DefinitionVersion(ctx, "door", v)
			if err != nil {
				t.Fatal(err)
			}
			descs[d.Description]++
		}
		if descs["Version 3 opens ajar."] != 1 || descs["Version 4a opens ajar."] != 1 || descs["Version 4b opens ajar."] != 1 {
			t.Errorf("versions 3 to 5: %v", descs)
		}
	})
}

// TestPutDefinition: PutDefinition is Register for one definition through the API: new content is
// the next version, the same content its version, an invalid one every problem and no version.
func TestPutDefinition(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := start(t, db, doorV1)
		res, err := svc.PutDefinition(ctx, "door", []byte(doorV2))
		if err != nil || !res.Created || res.Definition.Version != 2 {
			t.Fatalf("PutDefinition v2: %+v, %v", res, err)
		}
		res, err = svc.PutDefinition(ctx, "door", []byte(doorV1))
		if err != nil || res.Created || res.Definition.Version != 1 {
			t.Errorf("PutDefinition v1 again: %+v, %v", res, err)
		}
		_, err = svc.PutDefinition(ctx, "door", []byte("name: door\ninitial: nowhere\nstates:\n  a: {on: {go: b}}\n"))
		var inv *machine.InvalidDefinitionError
		if !errors.As(err, &inv) || inv.Diagnostics.Errors() < 2 {
			t.Errorf("an invalid definition: %v", err)
		}
		if _, err := svc.PutDefinition(ctx, "ticket", []byte(doorV1)); !errors.As(err, &inv) {
			t.Errorf("door put as ticket: %v", err)
		}
		// A new process loads what was put.
		svc = start(t, db)
		if got := versions(t, svc, "door"); !slices.Equal(got, []int{1, 2}) {
			t.Errorf("door versions after a restart: %v", got)
		}
		if _, err := svc.GetDefinition(ctx, "ticket"); code.Of(err) != code.NotFound {
			t.Errorf("ticket: %v, want not_found", err)
		}
	})
}
