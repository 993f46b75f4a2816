package service_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// examples loads the trip and booking examples of definitions/ together.
func examples(t *testing.T, names ...string) *machine.Set {
	t.Helper()
	var files []string
	for _, n := range names {
		files = append(files, "../../definitions/"+n+".yaml")
	}
	set, diags, err := machine.Load(files...)
	if err != nil || diags.Errors() > 0 {
		t.Fatalf("loading %v: %v %v", names, err, diags)
	}
	return set
}

func tripContext(kinds ...string) map[string]any {
	legs := make([]any, len(kinds))
	for i, k := range kinds {
		legs[i] = map[string]any{"kind": k, "price": 100 * (i + 1)}
	}
	return map[string]any{"legs": legs}
}

// TestChildrenTrip: a trip starts its legs with itself; it is booked once every leg is confirmed,
// exactly then; when a leg fails the others are cancelled by messages and the trip ends once the
// last has ended, with its counts exact.
func TestChildrenTrip(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := service.New(db, service.Options{})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, examples(t, "booking", "trip")); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"t-ok", "t-fail"} {
			if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "trip", ID: id, Context: tripContext("flight", "hotel", "car")}); err != nil {
				t.Fatal(err)
			}
			sendOK(t, svc, id, "book", nil)
		}
		page, err := svc.ListChildren(ctx, "t-ok", service.InstanceFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 3 {
			t.Fatalf("children: %d, want 3", len(page.Items))
		}
		for i, c := range page.Items {
			want := fmt.Sprintf("t-ok.legs.1.%d", i)
			if c.ID != want || c.Parent == nil || c.Parent.ID != "t-ok" || c.Parent.Index != i || c.State != "requested" {
				t.Errorf("child %d: %+v %+v, want id %s", i, c, c.Parent, want)
			}
		}
		for i := range 3 {
			_, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: fmt.Sprintf("t-ok.legs.1.%d", i), Event: "confirm",
				Payload: map[string]any{"reference": fmt.Sprint("R", i)}})
			if err != nil {
				t.Fatal(err)
			}
			deliverAll(t, svc)
			inst, err := svc.GetInstance(ctx, "t-ok")
			if err != nil {
				t.Fatal(err)
			}
			if wantState := map[bool]string{true: "booked", false: "booking"}[i == 2]; inst.State != wantState {
				t.Fatalf("after %d confirmations: trip %s, want %s", i+1, inst.State, wantState)
			}
		}

		// t-fail: the hotel fails; flight (confirmed) and car (requested) are cancelled.
		sendOK(t, svc, "t-fail.legs.1.0", "confirm", map[string]any{"reference": "F"})
		sendOK(t, svc, "t-fail.legs.1.1", "fail", nil)
		deliverAll(t, svc)
		inst, err := svc.GetInstance(ctx, "t-fail")
		if err != nil {
			t.Fatal(err)
		}
		if inst.State != "cancelled" || inst.Context["reason"] != "leg hotel failed" {
			t.Fatalf("t-fail: %s %v, want cancelled with the hotel's failure", inst.State, inst.Context)
		}
		for i, want := range []string{"cancelled", "failed", "cancelled"} {
			c, err := svc.GetInstance(ctx, fmt.Sprintf("t-fail.legs.1.%d", i))
			if err != nil || c.State != want {
				t.Fatalf("leg %d: %v %v, want %s", i, c.State, err, want)
			}
		}
		// The cancel came from the trip: a message, whose actor is its sender.
		h, err := svc.History(ctx, "t-fail.legs.1.0", 0, 10)
		if last := h.Items[len(h.Items)-1]; err != nil || last.Event != "cancel" || last.ActorKind != "message" || last.Actor != "t-fail" {
			t.Fatalf("the flight's cancellation: %+v %v, want a message from t-fail", last, err)
		}
	})
}

func sendOK(t *testing.T, svc *service.Service, id, event string, payload map[string]any) {
	t.Helper()
	if _, _, err := svc.SendEvent(context.Background(), service.SendEvent{InstanceID: id, Event: event, Payload: payload}); err != nil {
		t.Fatalf("%s %s: %v", id, event, err)
	}
}

// fakerDef sends a parent the on_final event of its children, with a well-formed payload.
const fakerDef = `name: faker
initial: on
context:
  target: string
states:
  on:
    on:
      go:
        to: on
        send:
          - to: ctx.target
            event: task_done
            payload: {child: instance.id, group: '"tasks"', index: 0, state: '"closed"', context: '{"n": 0}'}
`

// TestChildrenCountOnlyChildren: an instance named like a child of the group, sending the group's
// on_final by `send`, is not counted: only a child's own message on reaching a final state is.
// A definition may name itself as its children's (PUT).
func TestChildrenCountOnlyChildren(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := service.New(db, service.Options{})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, append(fanDefs(2), fakerDef)...)); err != nil {
			t.Fatal(err)
		}
		create(t, svc, "fan", "f-1")
		sendOK(t, svc, "f-1", "go", nil)
		if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "faker", ID: "f-1.tasks.1.7",
			Context: map[string]any{"target": "f-1"}}); err != nil {
			t.Fatal(err)
		}
		sendOK(t, svc, "f-1.tasks.1.7", "go", nil)
		sendOK(t, svc, "f-1.tasks.1.0", "done", nil)
		deliverAll(t, svc)
		inst, err := svc.GetInstance(ctx, "f-1")
		if err != nil {
			t.Fatal(err)
		}
		if c := inst.Children["tasks"]; inst.State != "waiting" || c.Total != 2 || c.Final != 1 || c.Running != 1 {
			t.Fatalf("f-1: %s %+v, want waiting with 1 of 2 tasks final (the faker's message not counted)", inst.State, c)
		}

		tree := `name: tree
initial: grow
context:
  level: int
states:
  grow:
    children:
      kids:
        definition: tree
        count: "ctx.level < 2 ? 2 : 0"
        context: {level: ctx.level + 1}
    on:
      stop: done
  done: {final: true}
`
		if _, err := svc.PutDefinition(ctx, "tree", []byte(tree)); err != nil {
			t.Fatalf("a definition naming itself: %v", err)
		}
		create(t, svc, "tree", "t-0")
		page, err := svc.ListInstances(ctx, service.InstanceFilter{Definition: "tree"})
		if err != nil || len(page.Items) != 7 { // 1 + 2 + 4: the leaves start none
			t.Fatalf("the tree: %d instances, %v, want 7", len(page.Items), err)
		}
	})
}

// TestChildrenMigrate: a parent and its children migrate independently. The parent moves to a
// version whose state (renamed) declares the same group: the children's on_final messages still
// count there, and it joins once all have ended; a child moved to a version whose state no longer
// handles the parent's on_exit event drops it, as any message.
func TestChildrenMigrate(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := service.New(db, service.Options{})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, fanDefs(3)...)); err != nil {
			t.Fatal(err)
		}
		create(t, svc, "fan", "m-1")
		sendOK(t, svc, "m-1", "go", nil)
		sendOK(t, svc, "m-1.tasks.1.0", "done", nil)
		deliverAll(t, svc)

		v2 := strings.NewReplacer("  waiting:", "  gathering:", "go: waiting", "go: gathering", "name: fan\n", "name: fan\nmigrate:\n  states: {waiting: gathering}\n").Replace(fanDefs(3)[1])
		if _, err := svc.PutDefinition(ctx, "fan", []byte(v2)); err != nil {
			t.Fatal(err)
		}
		migrated := func(id string, version int) { // the migration runs in the background
			t.Helper()
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if inst, err := svc.GetInstance(ctx, id); err == nil && inst.Version == version {
					return
				}
			}
			t.Fatalf("%s did not move to version %d", id, version)
		}
		migrated("m-1", 2)
		inst, err := svc.GetInstance(ctx, "m-1")
		if err != nil || inst.Version != 2 || inst.State != "gathering" || inst.Children["tasks"].Final != 1 {
			t.Fatalf("m-1 after the migration: v%d %s %+v %v, want v2 gathering with 1 of 3 tasks final", inst.Version, inst.State, inst.Children, err)
		}
		task2 := strings.Replace(fanDefs(3)[0], "initial: open", "initial: open\nmigrate:\n  states: {open: open}", 1)
		if _, err := svc.PutDefinition(ctx, "task", []byte(task2)); err != nil {
			t.Fatal(err)
		}
		migrated("m-1.tasks.1.2", 2)
		sendOK(t, svc, "m-1.tasks.1.1", "done", nil)
		deliverAll(t, svc)
		if inst, _ := svc.GetInstance(ctx, "m-1"); inst.State != "gathering" || inst.Children["tasks"].Running != 1 {
			t.Fatalf("m-1 with one task left: %s %+v", inst.State, inst.Children)
		}
		sendOK(t, svc, "m-1.tasks.1.2", "done", nil)
		deliverAll(t, svc)
		if inst, _ := svc.GetInstance(ctx, "m-1"); inst.State != "joined" {
			t.Fatalf("m-1 after every task ended: %s, want joined", inst.State)
		}
		child, err := svc.GetInstance(ctx, "m-1.tasks.1.2")
		if err != nil || child.Version != 2 || child.Parent == nil || child.Parent.ID != "m-1" {
			t.Fatalf("the last task: %+v %v, want version 2 with its parent", child, err)
		}
	})
}
