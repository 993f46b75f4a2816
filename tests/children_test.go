package tests

// End-to-end tests of child instances (a state's `children`): the real `fsmd serve` process, on
// PostgreSQL and on SQLite, spoken to over HTTP. A fan-out joined exactly once by many children
// finished at once; the trip saga (definitions/trip.yaml and booking.yaml) compensating a failed
// leg; on_exit; bad input refused with nothing written; and a kill -9 while the children's on_final
// messages are delivered.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// childrenFan starts ctx.n tasks on entering `waiting` and counts their on_final messages in
// ctx.seen. The join (children.g.running == 0) goes to `done` when ctx.leave, else stays and counts
// itself in ctx.joins: such a parent keeps its group's counts, which GET shows.
const childrenFan = `name: fan
initial: idle
context:
  n: int
  leave: bool
  joins: int
  seen: int
states:
  idle:
    on:
      go: waiting
  waiting:
    children:
      g:
        definition: task
        count: ctx.n
        context: {nr: index}
        on_final: task_done
    on:
      task_done:
        - to: done
          guard: ctx.leave && children.g.running == 0
          set: {seen: ctx.seen + 1, joins: ctx.joins + 1}
        - guard: children.g.running == 0
          set: {seen: ctx.seen + 1, joins: ctx.joins + 1}
        - set: {seen: ctx.seen + 1}
  done: {final: true}
`

// childrenTask is a child: finished or aborted (final), held on the way (not final).
const childrenTask = `name: task
initial: working
context:
  nr: int
states:
  working:
    on:
      finish: finished
      hold: held
      abort: aborted
  held:
    on:
      finish: finished
      abort: aborted
  finished: {final: true}
  aborted: {final: true}
`

// childrenPicky starts its tasks on creation (at revision 0) and refuses the on_final of an odd
// one, unless it is the last: a refused on_final is dropped, and counts in children.g all the same.
const childrenPicky = `name: picky
initial: waiting
context:
  n: int
states:
  waiting:
    children:
      g:
        definition: task
        count: ctx.n
        context: {nr: index}
        on_final: task_done
    on:
      task_done:
        - to: done
          guard: children.g.running == 0
        - guard: event.index % 2 == 0
          guard_message: odd tasks are refused
  done: {final: true}
`

// childrenBoss starts 4 tasks on entering `running`, and sends the running ones `abort` when it
// leaves it.
const childrenBoss = `name: boss
initial: idle
states:
  idle:
    on:
      go: running
  running:
    children:
      w:
        definition: task
        count: 4
        context: {nr: index}
        on_exit: abort
    on:
      stop: stopped
  stopped:
    on:
      go: running
`

// childrenInstance is an instance with what children add to it: its parent and its groups.
type childrenInstance struct {
	apiInstance
	Parent   *childrenParent           `json:"parent"`
	Children map[string]childrenCounts `json:"children"`
}

// childrenParent is a child's parent: its id, the group and the child's index in it.
type childrenParent struct {
	ID    string `json:"id"`
	Group string `json:"group"`
	Index int    `json:"index"`
}

type childrenCounts struct {
	Total   int `json:"total"`
	Running int `json:"running"`
	Final   int `json:"final"`
}

// childrenDialects are the databases the tests run on, by name.
var childrenDialects = dbtest.Databases

// childrenTransport is the client's transport: keeps enough idle connections for the goroutines
// that send events at once.
var childrenTransport = sync.OnceValue(func() *http.Transport {
	return &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConns: 128, MaxIdleConnsPerHost: 64,
		IdleConnTimeout: 90 * time.Second}
})

// childrenServe starts fsmd serve on dbURL with the definitions in files (name: source) and returns
// it with a client checked against the API document.
func childrenServe(t *testing.T, dbURL string, files map[string]string) (*fsmdChild, *apiEnv) {
	t.Helper()
	child := startFsmd(t, dbURL, childrenDefs(t, files), "--timer-poll", "50ms")
	return child, childrenClient(t, child)
}

// childrenDefs writes a definitions folder of files (name: source).
func childrenDefs(t *testing.T, files map[string]string) string {
	t.Helper()
	defs := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(defs, name+".yaml"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return defs
}

// childrenClient speaks to child, checking every exchange against the API document.
func childrenClient(t *testing.T, child *fsmdChild) *apiEnv {
	return &apiEnv{srv: &httptest.Server{URL: child.base}, client: &http.Client{Transport: apiConformTransport(t, childrenTransport())}}
}

// get reads an instance with its parent and children.
func childrenGet(t testing.TB, env *apiEnv, id string) childrenInstance {
	t.Helper()
	return apiWant[childrenInstance](t, env.do(t, "GET", apiPath("/v1/instances/%s", id), nil), http.StatusOK)
}

// childrenHistory reads an instance's whole history, dropped rows included, page by page.
func childrenHistory(t testing.TB, env *apiEnv, id string) []apiHistoryEntry {
	t.Helper()
	var all []apiHistoryEntry
	after := ""
	for {
		path := apiPath("/v1/instances/%s/history", id) + "?limit=1000"
		if after != "" {
			path += "&after=" + after
		}
		page := apiWant[apiPage[apiHistoryEntry]](t, env.do(t, "GET", path, nil), http.StatusOK)
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		after = page.Next
	}
}

// childrenPages walks every page of a list of instances (path with its query, without limit and
// after), limit per page, checking that the pages follow in id order.
func childrenPages(t testing.TB, env *apiEnv, path string, limit int) []childrenInstance {
	t.Helper()
	var all []childrenInstance
	after := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("%s: the pages do not end", path)
		}
		q := fmt.Sprintf("limit=%d", limit)
		if after != "" {
			q += "&after=" + url.QueryEscape(after)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		r := env.do(t, "GET", path+sep+q, nil)
		page := apiWant[apiPage[childrenInstance]](t, r, http.StatusOK)
		if len(page.Items) > limit {
			t.Fatalf("%s: %d items, limit %d", r, len(page.Items), limit)
		}
		for i, inst := range page.Items {
			if (i > 0 && inst.ID <= page.Items[i-1].ID) || (after != "" && inst.ID <= after) {
				t.Fatalf("%s: not in id order after %q", r, after)
			}
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		after = page.Next
	}
}

// childrenIDs are the ids of a group's children started by the transition to rev, by index.
func childrenIDs(parent, group string, rev, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s.%s.%d.%d", parent, group, rev, i)
	}
	return ids
}

// childrenFinals checks a parent's history against its n children of group g (started at rev 1):
// after `go`, exactly one on_final row (task_done, source message, not dropped) per child, each with
// its own message id and the payload of that child; it returns the rows of task_done in order.
func childrenFinals(t *testing.T, id string, h []apiHistoryEntry, n int) []apiHistoryEntry {
	t.Helper()
	var finals []apiHistoryEntry
	requests := map[string]bool{}
	seen := map[string]bool{}
	for _, e := range h {
		if e.Event != "task_done" {
			continue
		}
		finals = append(finals, e)
		child, _ := e.Payload["child"].(string)
		idx, _ := e.Payload["index"].(float64)
		ctx, _ := e.Payload["context"].(map[string]any)
		want := fmt.Sprintf("%s.g.1.%d", id, int(idx))
		switch {
		case e.Source != "message" || e.Dropped != "" || e.RequestID == "":
			t.Errorf("%s seq %d: task_done with source %q, dropped %q, request id %q", id, e.Seq, e.Source, e.Dropped, e.RequestID)
		case requests[e.RequestID]:
			t.Errorf("%s seq %d: message %s delivered twice", id, e.Seq, e.RequestID)
		case seen[child]:
			t.Errorf("%s seq %d: the on_final of %s delivered twice", id, e.Seq, child)
		case child != want || e.Payload["group"] != "g" || e.Payload["state"] != "finished" || ctx["nr"] != idx:
			t.Errorf("%s seq %d: payload %v, want the child %s, group g, state finished, context nr %v", id, e.Seq, e.Payload, want, idx)
		}
		requests[e.RequestID], seen[child] = true, true
	}
	if len(finals) != n || len(seen) != n {
		t.Errorf("%s: %d task_done rows from %d children, want exactly %d", id, len(finals), len(seen), n)
	}
	return finals
}

// TestChildrenFanOutJoinOnce: two parents start 200 children each (count) with on_final; all 400
// are finished at once from 16 goroutines through the API. Each parent receives exactly one on_final
// message per child (source message, one row per message id and per child), counts each in
// `children.g` exactly once, so the join (running == 0) is taken exactly once, by the last of them:
// fan-a goes to `done` (one transition to done, the last row), fan-b stays and counts its join
// (joins 1), its GET showing {total 200, running 0, final 200}. A third parent (picky-1, its 200
// children started on creation, finished with the others) refuses the on_final of the odd ones: each
// refused one is a dropped row and counts all the same, so it too joins exactly once, at the last.
func TestChildrenFanOutJoinOnce(t *testing.T) {
	t.Parallel()
	const n = 200
	for name, dbURL := range childrenDialects {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			child, env := childrenServe(t, dbURL(t), map[string]string{"fan": childrenFan, "task": childrenTask, "picky": childrenPicky})
			parents := map[string]bool{"fan-a": true, "fan-b": false} // leave on the join
			env.create(t, "picky", "picky-1", map[string]any{"n": n})
			if got := childrenGet(t, env, "picky-1"); got.Children["g"] != (childrenCounts{Total: n, Running: n}) || got.Revision != 0 {
				t.Fatalf("picky-1 created: revision %d, children %v", got.Revision, got.Children)
			}
			for id, leave := range parents {
				env.create(t, "fan", id, map[string]any{"n": n, "leave": leave})
				if got := childrenGet(t, env, id); got.Children != nil || got.Parent != nil {
					t.Fatalf("%s before go: children %v, parent %v; want none", id, got.Children, got.Parent)
				}
				if r := env.mustFire(t, id, "go", nil); r.Instance.State != "waiting" || r.Instance.Revision != 1 {
					t.Fatalf("%s go: %+v", id, r.Instance)
				}
				got := childrenGet(t, env, id)
				if want := (childrenCounts{Total: n, Running: n}); got.Children["g"] != want || len(got.Children) != 1 {
					t.Fatalf("%s after go: children %v, want g %+v", id, got.Children, want)
				}
				// The children, by both lists: ids <parent>.g.1.<index>, each knowing its parent.
				want := childrenIDs(id, "g", 1, n)
				slices.Sort(want) // id order
				for _, path := range []string{"/v1/instances?parent=" + id, apiPath("/v1/instances/%s/children", id) + "?group=g"} {
					list := childrenPages(t, env, path, 64)
					ids := make([]string, len(list))
					for i, c := range list {
						ids[i] = c.ID
						if c.Definition != "task" || c.State != "working" || c.Parent == nil || c.Parent.ID != id || c.Parent.Group != "g" ||
							c.ID != fmt.Sprintf("%s.g.1.%d", id, c.Parent.Index) || c.Context["nr"] != float64(c.Parent.Index) {
							t.Fatalf("%s: child %+v (parent %+v)", path, c.apiInstance, c.Parent)
						}
					}
					if !slices.Equal(ids, want) {
						t.Fatalf("%s: %d children %v..., want the %d of %s", path, len(ids), ids[:min(3, len(ids))], n, id)
					}
				}
				if l := childrenPages(t, env, apiPath("/v1/instances/%s/children", id)+"?group=other", 10); len(l) != 0 {
					t.Fatalf("%s: %d children of a group it does not have", id, len(l))
				}
			}

			// Every child finished at once.
			work := make(chan string, 3*n)
			for i := range n {
				for id := range parents {
					work <- fmt.Sprintf("%s.g.1.%d", id, i)
				}
				work <- fmt.Sprintf("picky-1.g.0.%d", i)
			}
			close(work)
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for c := range work {
						r, err := env.try("POST", apiPath("/v1/instances/%s/events", c), map[string]any{"event": "finish"})
						if err != nil || r.status != http.StatusOK {
							t.Errorf("finish %s: %v %v", c, err, r)
							return
						}
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			// Delivered, accepted or dropped, each a revision of its parent: wait for as many as
			// there are children, then a little longer for any duplicate.
			waitFor(t, child, "every on_final delivered", func() bool {
				return childrenGet(t, env, "fan-a").Revision >= n+1 && childrenGet(t, env, "fan-b").Revision >= n+1 &&
					childrenGet(t, env, "picky-1").Revision >= n
			})
			time.Sleep(300 * time.Millisecond)

			// fan-a: one on_final row per child, the last of them its one transition to done.
			a := childrenGet(t, env, "fan-a")
			h := childrenHistory(t, env, "fan-a")
			finals := childrenFinals(t, "fan-a", h, n)
			var toDone []int64
			for _, e := range h {
				if e.To == "done" && e.From != "done" {
					toDone = append(toDone, e.Seq)
				}
			}
			if len(toDone) != 1 || len(finals) == 0 || toDone[0] != finals[len(finals)-1].Seq || toDone[0] != int64(len(h)) {
				t.Errorf("fan-a: transitions to done at %v of %d rows, want one: the last on_final, seq %d", toDone, len(h), n+1)
			}
			if a.State != "done" || !a.Final || a.Revision != n+1 || a.Context["joins"] != float64(1) || len(h) != n+1 {
				t.Errorf("fan-a: state %s, final %v, revision %d, context %v, %d history rows; want done, revision and rows %d, joins 1",
					a.State, a.Final, a.Revision, a.Context, len(h), n+1)
			}
			// Its groups are those of its current entry: done has none.
			if a.Children != nil {
				t.Errorf("fan-a in done: children %v, want none (done starts no group)", a.Children)
			}

			// fan-b: joined once, by the last on_final, and keeps its group's exact counts.
			b := childrenGet(t, env, "fan-b")
			h = childrenHistory(t, env, "fan-b")
			finals = childrenFinals(t, "fan-b", h, n)
			var joins []int64
			for _, e := range h {
				if e.ContextAfter["joins"] != e.ContextBefore["joins"] {
					joins = append(joins, e.Seq)
				}
			}
			if len(joins) != 1 || len(finals) == 0 || joins[0] != finals[len(finals)-1].Seq {
				t.Errorf("fan-b: joined at %v, want once, at the last on_final (seq %d)", joins, n+1)
			}
			if want := (childrenCounts{Total: n, Running: 0, Final: n}); b.Children["g"] != want || len(b.Children) != 1 {
				t.Errorf("fan-b: children %v, want g %+v", b.Children, want)
			}
			if b.State != "waiting" || b.Revision != n+1 || b.Context["joins"] != float64(1) {
				t.Errorf("fan-b: state %s, revision %d, context %v; want waiting, %d, joins 1", b.State, b.Revision, b.Context, n+1)
			}

			// picky-1: one row per on_final, the odd ones dropped but for the last, its join to done.
			p := childrenGet(t, env, "picky-1")
			h = childrenHistory(t, env, "picky-1")
			requests, seen := map[string]bool{}, map[string]bool{}
			for i, e := range h {
				idx, _ := e.Payload["index"].(float64)
				child, _ := e.Payload["child"].(string)
				last := i == len(h)-1
				dropped := !last && int(idx)%2 == 1
				if e.Event != "task_done" || e.Source != "message" || requests[e.RequestID] || seen[child] ||
					child != fmt.Sprintf("picky-1.g.0.%d", int(idx)) || (e.Dropped != "") != dropped ||
					(dropped && !strings.HasPrefix(e.Dropped, "guard_rejected")) || (e.To == "done") != last {
					t.Errorf("picky-1 row %d of %d: %s from %s, to %s, child %v, dropped %q (message %s seen before: %v)",
						e.Seq, len(h), e.Event, e.Source, e.To, e.Payload["child"], e.Dropped, e.RequestID, requests[e.RequestID])
				}
				requests[e.RequestID], seen[child] = true, true
			}
			if len(h) != n || len(seen) != n || p.State != "done" || p.Revision != n {
				t.Errorf("picky-1: %d rows from %d children, state %s, revision %d; want %d rows and children, done, revision %d",
					len(h), len(seen), p.State, p.Revision, n, n)
			}

			// Every child finished by its one API event.
			for _, id := range []string{"fan-a", "fan-b", "picky-1"} {
				for _, c := range childrenPages(t, env, "/v1/instances?parent="+id, 1000) {
					if c.State != "finished" || !c.Final || c.Revision != 1 {
						t.Errorf("%s: state %s, final %v, revision %d", c.ID, c.State, c.Final, c.Revision)
					}
				}
			}
			if d := apiWant[apiPage[apiDeadMessage]](t, env.do(t, "GET", "/v1/messages/dead", nil), http.StatusOK); len(d.Items) != 0 {
				t.Errorf("dead messages: %+v", d.Items)
			}
		})
	}
}

// TestChildrenTripSaga: the trip example (definitions/trip.yaml, booking.yaml). A 3-leg trip whose
// flight is confirmed and whose hotel then fails: the flight (confirmed) and the car (requested) get
// `cancel` by messages and end cancelled, and the trip, once its last leg has ended, is cancelled
// with the reason "leg hotel failed". A 2-leg trip whose legs both confirm is booked.
func TestChildrenTripSaga(t *testing.T) {
	t.Parallel()
	files := map[string]string{}
	for _, name := range []string{"trip", "booking"} {
		files[name] = string(apiReadFile(t, filepath.Join("..", "definitions", name+".yaml")))
	}
	for name, dbURL := range childrenDialects {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			child, env := childrenServe(t, dbURL(t), files)
			legs := []any{
				map[string]any{"kind": "flight", "price": 12000},
				map[string]any{"kind": "hotel", "price": 30000},
				map[string]any{"kind": "car", "price": 8000},
			}
			env.create(t, "trip", "trip-1", map[string]any{"legs": legs})
			env.mustFire(t, "trip-1", "book", nil)
			flight, hotel, car := "trip-1.legs.1.0", "trip-1.legs.1.1", "trip-1.legs.1.2"
			if got := childrenGet(t, env, "trip-1"); got.State != "booking" || got.Children["legs"] != (childrenCounts{Total: 3, Running: 3}) {
				t.Fatalf("trip-1 booking: state %s, children %v", got.State, got.Children)
			}
			for i, id := range []string{flight, hotel, car} {
				leg := childrenGet(t, env, id)
				want := legs[i].(map[string]any)
				if leg.Definition != "booking" || leg.State != "requested" || leg.Context["kind"] != want["kind"] ||
					leg.Context["price"] != float64(want["price"].(int)) || leg.Parent == nil || *leg.Parent != (childrenParent{"trip-1", "legs", i}) {
					t.Fatalf("%s: %+v, parent %+v", id, leg.apiInstance, leg.Parent)
				}
			}

			env.mustFire(t, flight, "confirm", map[string]any{"reference": "F-1"})
			waitFor(t, child, "the flight's leg_confirmed delivered", func() bool {
				return childrenGet(t, env, "trip-1").Context["confirmed"] == float64(1)
			})
			env.mustFire(t, hotel, "fail", nil)
			waitFor(t, child, "the trip cancelled", func() bool { return childrenGet(t, env, "trip-1").Final })

			trip := childrenGet(t, env, "trip-1")
			if trip.State != "cancelled" || trip.Context["reason"] != "leg hotel failed" || trip.Context["failing"] != true ||
				trip.Context["confirmed"] != float64(1) {
				t.Errorf("trip-1: state %s, context %v; want cancelled, reason \"leg hotel failed\"", trip.State, trip.Context)
			}
			// Its history: book, the flight's confirmation, then the three legs' ends (the failed
			// hotel's first, which sent the cancels; the last one cancels the trip).
			h := childrenHistory(t, env, "trip-1")
			var got []string
			for _, e := range h {
				got = append(got, fmt.Sprintf("%s:%s>%s:%s:%v", e.Event, e.From, e.To, e.Source, e.Payload["child"]))
				if e.Dropped != "" {
					t.Errorf("trip-1 seq %d dropped: %s", e.Seq, e.Dropped)
				}
			}
			want := []string{
				"book:planning>booking:api:<nil>",
				"leg_confirmed:booking>booking:message:<nil>",
				"leg_done:booking>booking:message:" + hotel,
			}
			if len(got) != 5 || !slices.Equal(got[:3], want) || !strings.HasPrefix(got[4], "leg_done:booking>cancelled:message:") ||
				!slices.Equal(slices.Sorted(slices.Values([]string{got[3][strings.LastIndex(got[3], ":")+1:], got[4][strings.LastIndex(got[4], ":")+1:]})), []string{flight, car}) {
				t.Errorf("trip-1's history:\n%s\nwant %s, then the flight's and the car's leg_done (cancelled), the last to cancelled", strings.Join(got, "\n"), want)
			}
			// The legs: the failed one failed; the others cancelled by the trip's messages.
			for _, c := range []struct {
				id, state string
				events    []string // event:source
				after     bool     // cancelled_after_confirm
			}{
				{flight, "cancelled", []string{"confirm:api", "cancel:message"}, true},
				{hotel, "failed", []string{"fail:api"}, false},
				{car, "cancelled", []string{"cancel:message"}, false},
			} {
				leg := childrenGet(t, env, c.id)
				var evs []string
				for _, e := range childrenHistory(t, env, c.id) {
					evs = append(evs, e.Event+":"+e.Source)
					if e.Dropped != "" {
						t.Errorf("%s seq %d dropped: %s", c.id, e.Seq, e.Dropped)
					}
				}
				if leg.State != c.state || !leg.Final || (leg.Context["cancelled_after_confirm"] == true) != c.after || !slices.Equal(evs, c.events) {
					t.Errorf("%s: state %s, context %v, history %v; want %s, history %v, cancelled_after_confirm %v",
						c.id, leg.State, leg.Context, evs, c.state, c.events, c.after)
				}
			}

			// Both legs confirmed: booked.
			env.create(t, "trip", "trip-2", map[string]any{"legs": legs[:2]})
			env.mustFire(t, "trip-2", "book", nil)
			env.mustFire(t, "trip-2.legs.1.0", "confirm", map[string]any{"reference": "F-2"})
			env.mustFire(t, "trip-2.legs.1.1", "confirm", map[string]any{"reference": "H-2"})
			waitFor(t, child, "trip-2 booked", func() bool { return childrenGet(t, env, "trip-2").Final })
			trip = childrenGet(t, env, "trip-2")
			h = childrenHistory(t, env, "trip-2")
			if trip.State != "booked" || trip.Context["confirmed"] != float64(2) || trip.Context["failing"] == true || len(h) != 3 ||
				h[2].Event != "leg_confirmed" || h[2].To != "booked" || h[2].Source != "message" || h[1].To != "booking" {
				t.Errorf("trip-2: state %s, context %v, history %+v; want booked after two leg_confirmed messages", trip.State, trip.Context, h)
			}
			for _, id := range []string{"trip-2.legs.1.0", "trip-2.legs.1.1"} {
				if leg := childrenGet(t, env, id); leg.State != "confirmed" || leg.Final {
					t.Errorf("%s: state %s, final %v; want confirmed", id, leg.State, leg.Final)
				}
			}
			if d := apiWant[apiPage[apiDeadMessage]](t, env.do(t, "GET", "/v1/messages/dead", nil), http.StatusOK); len(d.Items) != 0 {
				t.Errorf("dead messages: %+v", d.Items)
			}
		})
	}
}

// TestChildrenOnExit: a parent leaving a state whose group has `on_exit: abort` sends abort to
// the group's running children (working or held), by messages, and to none of the finished ones.
// Entering the state again starts a new entry, whose children the next exit aborts, not the old ones.
func TestChildrenOnExit(t *testing.T) {
	t.Parallel()
	for name, dbURL := range childrenDialects {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			child, env := childrenServe(t, dbURL(t), map[string]string{"boss": childrenBoss, "task": childrenTask})
			env.create(t, "boss", "boss-1", nil)
			env.mustFire(t, "boss-1", "go", nil)
			w := childrenIDs("boss-1", "w", 1, 4)
			env.mustFire(t, w[0], "finish", nil)
			env.mustFire(t, w[1], "finish", nil)
			env.mustFire(t, w[2], "hold", nil)
			if got := childrenGet(t, env, "boss-1"); got.Children["w"] != (childrenCounts{Total: 4, Running: 2, Final: 2}) {
				t.Fatalf("boss-1: children %v, want w {4 2 2} (no on_final: by the children's states)", got.Children)
			}
			if r := env.mustFire(t, "boss-1", "stop", nil); r.Instance.State != "stopped" {
				t.Fatalf("boss-1 stop: %+v", r.Instance)
			}
			waitFor(t, child, "the running workers aborted", func() bool {
				return childrenGet(t, env, w[2]).State == "aborted" && childrenGet(t, env, w[3]).State == "aborted"
			})
			// Entered again: four new workers; leaving again aborts them, and only them.
			env.mustFire(t, "boss-1", "go", nil)
			w2 := childrenIDs("boss-1", "w", 3, 4)
			env.mustFire(t, w2[0], "finish", nil)
			env.mustFire(t, "boss-1", "stop", nil)
			waitFor(t, child, "the second entry's workers aborted", func() bool {
				return childrenGet(t, env, w2[1]).State == "aborted" && childrenGet(t, env, w2[2]).State == "aborted" &&
					childrenGet(t, env, w2[3]).State == "aborted"
			})
			// An abort sent to a finished child would be a dropped row in its history: give any such
			// message the time to arrive.
			time.Sleep(300 * time.Millisecond)
			for _, c := range []struct {
				id, state string
				events    []string
			}{
				{w[0], "finished", []string{"finish:api"}},
				{w[1], "finished", []string{"finish:api"}},
				{w[2], "aborted", []string{"hold:api", "abort:message"}},
				{w[3], "aborted", []string{"abort:message"}},
				{w2[0], "finished", []string{"finish:api"}},
				{w2[1], "aborted", []string{"abort:message"}},
				{w2[2], "aborted", []string{"abort:message"}},
				{w2[3], "aborted", []string{"abort:message"}},
			} {
				got := childrenGet(t, env, c.id)
				var evs []string
				for _, e := range childrenHistory(t, env, c.id) {
					evs = append(evs, e.Event+":"+e.Source)
					if e.Dropped != "" {
						t.Errorf("%s seq %d dropped: %s", c.id, e.Seq, e.Dropped)
					}
				}
				if got.State != c.state || !got.Final || !slices.Equal(evs, c.events) {
					t.Errorf("%s: state %s, history %v; want %s, history %v", c.id, got.State, evs, c.state, c.events)
				}
			}
			h := childrenHistory(t, env, "boss-1")
			if len(h) != 4 || h[1].Event != "stop" || h[3].Event != "stop" || h[3].To != "stopped" {
				t.Errorf("boss-1's history: %+v", h)
			}
			if got := childrenGet(t, env, "boss-1"); got.Children != nil || got.Revision != 4 {
				t.Errorf("boss-1 stopped: revision %d, children %v; want 4, none", got.Revision, got.Children)
			}
			if all := childrenPages(t, env, "/v1/instances?parent=boss-1", 100); len(all) != 8 {
				t.Errorf("boss-1 has %d children, want 8 (two entries of 4)", len(all))
			}
		})
	}
}

// childrenMany fans out one task per element of ctx.items on `go`.
const childrenMany = `name: many
initial: idle
context:
  items: [int]
states:
  idle:
    on:
      go: fanned
  fanned:
    children:
      g:
        definition: task
        for_each: ctx.items
        context: {nr: item}
    on:
      back: idle
`

// childrenLoose starts its children with its own context, whose elements are of any type: one that
// is not the task's int is found when the children start.
const childrenLoose = `name: loose
initial: started
context:
  items: [any]
states:
  started:
    children:
      g:
        definition: task
        for_each: ctx.items
        context: {nr: item}
    on:
      stop: stopped
  stopped: {final: true}
`

// childrenOrphan's group names a definition that is not registered (line 7, column 21).
const childrenOrphan = `name: orphan
initial: waiting
states:
  waiting:
    children:
      g:
        definition: nosuchchild
        count: 1
    on:
      stop: stopped
  stopped: {final: true}
`

// childrenNode starts a child of its own definition while the level below it is under ctx.max, and
// at ctx.max a task: a chain of ctx.max levels below the first, the last a task.
const childrenNode = `name: node
initial: growing
context:
  level: int
  max: int
states:
  growing:
    children:
      c:
        definition: node
        count: "ctx.level + 1 < ctx.max ? 1 : 0"
        context: {level: ctx.level + 1, max: ctx.max}
      leaf:
        definition: task
        count: "ctx.level + 1 == ctx.max ? 1 : 0"
        context: {nr: ctx.level + 1}
    on:
      stop: stopped
  stopped: {final: true}
`

// TestChildrenBadInput: over the API, input that children cannot take is refused and writes nothing.
//   - A for_each of 10,001 elements: 422 expression_failed, the parent unchanged (revision 0, idle,
//     no history), no child (GET ?parent= and the children list empty); 10,000 start.
//   - A definition whose group names a definition not registered: PUT answers 422
//     invalid_definition at the line and column of the name; nothing is registered.
//   - A parent whose child's context does not fit the child (found when they start, at creation):
//     422, no parent and no child written; the same when a child's id would be too long, or the
//     children would nest more than 8 levels deep.
func TestChildrenBadInput(t *testing.T) {
	t.Parallel()
	for name, dbURL := range childrenDialects {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, env := childrenServe(t, dbURL(t), map[string]string{"node": childrenNode, "task": childrenTask}) // node names itself: from a folder
			put := func(name, src string) apiResponse {
				return env.do(t, "PUT", "/v1/definitions/"+name, src, "Content-Type", "application/yaml")
			}
			for _, d := range []struct{ name, src string }{{"task", childrenTask}, {"many", childrenMany}, {"loose", childrenLoose}} {
				if r := put(d.name, d.src); r.status != http.StatusCreated && r.status != http.StatusOK {
					t.Fatalf("PUT %s: %s", d.name, r)
				}
			}

			// 10,001 children: refused, nothing written.
			items := make([]int, 10001)
			for i := range items {
				items[i] = i
			}
			env.create(t, "many", "many-1", map[string]any{"items": items})
			p := apiProblemOf(t, env.fire(t, "many-1", "go", nil), http.StatusUnprocessableEntity, "expression_failed")
			if !strings.Contains(p.Detail, "10000") && !strings.Contains(p.Detail, "10,000") {
				t.Errorf("detail %q does not name the limit", p.Detail)
			}
			if got := childrenGet(t, env, "many-1"); got.Revision != 0 || got.State != "idle" || got.Children != nil {
				t.Errorf("many-1 after the refusal: revision %d, state %s, children %v; want 0, idle, none", got.Revision, got.State, got.Children)
			}
			if h := childrenHistory(t, env, "many-1"); len(h) != 0 {
				t.Errorf("many-1's history after the refusal: %+v", h)
			}
			if l := childrenPages(t, env, "/v1/instances?parent=many-1", 10); len(l) != 0 {
				t.Errorf("GET ?parent=many-1: %d instances, want none", len(l))
			}
			if l := childrenPages(t, env, "/v1/instances/many-1/children", 10); len(l) != 0 {
				t.Errorf("GET many-1/children: %d instances, want none", len(l))
			}
			// 10,000: the limit itself starts.
			env.create(t, "many", "many-2", map[string]any{"items": items[:10000]})
			env.mustFire(t, "many-2", "go", nil)
			if got := childrenGet(t, env, "many-2"); got.Children["g"] != (childrenCounts{Total: 10000, Running: 10000}) {
				t.Errorf("many-2: children %v, want g {10000 10000 0}", got.Children)
			}
			if got := childrenGet(t, env, "many-2.g.1.9999"); got.Context["nr"] != float64(9999) || got.State != "working" {
				t.Errorf("many-2.g.1.9999: %+v", got.apiInstance)
			}

			// A child definition that is not registered.
			p = apiProblemOf(t, put("orphan", childrenOrphan), http.StatusUnprocessableEntity, "invalid_definition")
			found := false
			for _, e := range p.Errors {
				if e.Severity == "error" && strings.Contains(e.Message, "nosuchchild") {
					found = true
					if e.Line != 7 || e.Column != 21 {
						t.Errorf("the error %q is at %d:%d, want 7:21 (the name of the definition)", e.Message, e.Line, e.Column)
					}
				}
			}
			if !found {
				t.Errorf("PUT orphan: errors %+v, none names nosuchchild", p.Errors)
			}
			apiProblemOf(t, env.do(t, "GET", "/v1/definitions/orphan", nil), http.StatusNotFound, "not_found")

			// A child context that does not fit the child: refused when the parent is created.
			r := env.do(t, "POST", "/v1/instances", map[string]any{"definition": "loose", "id": "loose-1",
				"context": map[string]any{"items": []any{1, "two", 3}}})
			p = apiProblemOf(t, r, http.StatusUnprocessableEntity, "expression_failed")
			if !strings.Contains(p.Detail, "child 1") || !strings.Contains(p.Detail, "nr") {
				t.Errorf("detail %q does not name the child (1) and its field (nr)", p.Detail)
			}
			apiProblemOf(t, env.do(t, "GET", "/v1/instances/loose-1", nil), http.StatusNotFound, "not_found")
			if l := childrenPages(t, env, "/v1/instances?parent=loose-1", 10); len(l) != 0 {
				t.Errorf("GET ?parent=loose-1: %d instances, want none", len(l))
			}
			if r := apiProblemOf(t, env.do(t, "GET", "/v1/instances/loose-1.g.0.0", nil), http.StatusNotFound, "not_found"); r.Code != "not_found" {
				t.Error(r)
			}
			// The same parent with fitting elements starts them, at its revision 0.
			env.create(t, "loose", "loose-2", map[string]any{"items": []any{1, 2, 3}})
			if l := childrenPages(t, env, "/v1/instances?parent=loose-2", 10); len(l) != 3 || l[2].ID != "loose-2.g.0.2" || l[2].Context["nr"] != float64(3) {
				t.Errorf("loose-2's children: %+v", l)
			}
			// A child id longer than an id may be (the parent's id leaves too little room): 422,
			// nothing written; one character less fits.
			long := strings.Repeat("x", 200-len(".g.0.0"))
			p = apiProblemOf(t, env.do(t, "POST", "/v1/instances", map[string]any{"definition": "loose", "id": long + "y",
				"context": map[string]any{"items": []any{1}}}), http.StatusUnprocessableEntity, "expression_failed")
			apiProblemOf(t, env.do(t, "GET", apiPath("/v1/instances/%s", long+"y"), nil), http.StatusNotFound, "not_found")
			env.create(t, "loose", long, map[string]any{"items": []any{1}})
			if got := childrenGet(t, env, long+".g.0.0"); got.Parent == nil || got.Parent.ID != long {
				t.Errorf("the child of the 194-character id: parent %+v", got.Parent)
			}

			// Children nest at most 8 levels below an instance created through the API: a chain of 8
			// starts with its root, one of 9 is refused with nothing written.
			env.create(t, "node", "n8", map[string]any{"max": 8})
			above := "n8" + strings.Repeat(".c.0.0", 7)
			deepest := above + ".leaf.0.0"
			if got := childrenGet(t, env, deepest); got.Context["nr"] != float64(8) || got.Parent == nil || got.Parent.ID != above {
				t.Errorf("%s: context %v, parent %+v", deepest, got.Context, got.Parent)
			}
			if got := childrenGet(t, env, above); got.Children["leaf"] != (childrenCounts{Total: 1, Running: 1}) ||
				got.Children["c"] != (childrenCounts{}) || got.Context["level"] != float64(7) {
				t.Errorf("%s: context %v, children %v", above, got.Context, got.Children)
			}
			p = apiProblemOf(t, env.do(t, "POST", "/v1/instances", map[string]any{"definition": "node", "id": "n9",
				"context": map[string]any{"max": 9}}), http.StatusUnprocessableEntity, "expression_failed")
			if !strings.Contains(p.Detail, "8 levels") {
				t.Errorf("detail %q does not name the limit", p.Detail)
			}
			for _, id := range []string{"n9", "n9.c.0.0"} {
				apiProblemOf(t, env.do(t, "GET", apiPath("/v1/instances/%s", id), nil), http.StatusNotFound, "not_found")
			}
			apiProblemOf(t, env.do(t, "GET", "/v1/instances/n9/children", nil), http.StatusNotFound, "not_found")
		})
	}
}

// The load of TestChildrenCrash: two parents of childrenN children each (one joins to done, the
// other stays), finished by childrenWorkers goroutines through two processes; both are killed once
// childrenKillAt finishes are acknowledged and on_final messages are being delivered.
const (
	childrenN       = 1000
	childrenWorkers = 8
	childrenKillAt  = 2 * childrenN * 2 / 5
)

// TestChildrenCrash: two fsmd serve processes on one PostgreSQL database (each delivering on_final
// messages to the same parents) are killed (SIGKILL) while 2,000 children are being finished through
// them and their on_final messages delivered to their two parents, then restarted; the finishes not
// answered are sent again (an `instance_final` answer to one sent again means it was stored before
// the kill). Once settled, each parent has exactly one on_final row per
// child (source message, each its own message id), none dropped, its counts exact (fan-b: total,
// final 1,000, running 0, in GET and in its row), and it joined exactly once; every child finished
// once.
//
// On PostgreSQL and on Citus, one after the other.
func TestChildrenCrash(t *testing.T) {
	// Not parallel: two fsmd processes and the test hold up to 48 PostgreSQL connections, and
	// the server allows 100 in all.
	for _, d := range []string{"postgres", "citus"} {
		t.Run(d, func(t *testing.T) { testChildrenCrash(t, dbtest.Databases[d](t)) })
	}
}

func testChildrenCrash(t *testing.T, dbURL string) {
	ctx := context.Background()
	defs := childrenDefs(t, map[string]string{"fan": childrenFan, "task": childrenTask})
	start := func() *fsmdChild { return startFsmd(t, dbURL, defs, "--timer-poll", "50ms") }
	procs := []*fsmdChild{start(), start()} // the first has migrated the database by the time it serves
	env := childrenClient(t, procs[0])
	logs := func() string { return procs[0].log.tail() + "\n" + procs[1].log.tail() }
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	parents := map[string]bool{"fan-a": true, "fan-b": false}
	var work []string
	for id, leave := range parents {
		env.create(t, "fan", id, map[string]any{"n": childrenN, "leave": leave})
		env.mustFire(t, id, "go", nil)
		work = append(work, childrenIDs(id, "g", 1, childrenN)...)
	}
	// Interleave the two parents' children.
	slices.SortFunc(work, func(a, b string) int {
		return strings.Compare(a[strings.LastIndex(a, "."):]+a, b[strings.LastIndex(b, "."):]+b)
	})

	var bases [2]atomic.Pointer[string]
	for i, p := range procs {
		bases[i].Store(&p.base)
	}
	var acked atomic.Int64
	var killed atomic.Bool
	client := &http.Client{Transport: childrenTransport(), Timeout: 10 * time.Second}
	finish := func(proc int, id string) (int, string, error) {
		req, err := http.NewRequest("POST", *bases[proc].Load()+apiPath("/v1/instances/%s/events", id), bytes.NewReader([]byte(`{"event": "finish"}`)))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	queue := make(chan string, len(work))
	for _, id := range work {
		queue <- id
	}
	close(queue)
	var lostAnswers atomic.Int64 // requests that failed (the server gone), each sent again
	var wg sync.WaitGroup
	deadline := time.Now().Add(90 * time.Second)
	for w := range childrenWorkers {
		wg.Go(func() {
			i := w
			for id := range queue {
				failed := false
				for {
					i++ // through each process in turn
					status, body, err := finish(i%2, id)
					switch {
					case err == nil && status == http.StatusOK:
					case err == nil && failed && status == http.StatusConflict && strings.Contains(body, `"instance_final"`):
						// stored before the kill, its answer lost
					case err == nil && failed && status == http.StatusServiceUnavailable:
						time.Sleep(20 * time.Millisecond)
						continue
					case err != nil || status == 0:
						if !killed.Load() {
							t.Errorf("finish %s: no answer while the server runs: %v", id, err)
							return
						}
						if time.Now().After(deadline) {
							t.Errorf("finish %s: no answer by the deadline: %v", id, err)
							return
						}
						failed = true
						lostAnswers.Add(1)
						time.Sleep(20 * time.Millisecond)
						continue
					default:
						t.Errorf("finish %s (sent again: %v): %d %s", id, failed, status, body)
						return
					}
					acked.Add(1)
					break
				}
			}
		})
	}

	// The kill: once enough finishes are answered and on_final messages are being delivered.
	delivered := func() int64 {
		return countClaims(t, db, `SELECT count(*) FROM transitions WHERE instance_id IN ('fan-a', 'fan-b') AND source = 'message'`)
	}
	for acked.Load() < childrenKillAt || delivered() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d finishes answered and %d on_final delivered by the deadline; logs:\n%s", acked.Load(), delivered(), logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	killed.Store(true)
	procs[0].kill()
	procs[1].kill()
	atKill := acked.Load()
	waitForOrphans(t, db)
	deliveredAtKill := delivered() // what the killed processes committed
	for i := range procs {
		procs[i] = start()
		bases[i].Store(&procs[i].base)
	}
	env = childrenClient(t, procs[0])
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("killed with %d of %d finishes answered and %d of %d on_final delivered; %d requests failed and sent again",
		atKill, 2*childrenN, deliveredAtKill, 2*childrenN, lostAnswers.Load())
	if deliveredAtKill >= 2*childrenN {
		t.Fatalf("every on_final was delivered before the kill: the test tested nothing")
	}

	// Settled: no message left, both parents have seen every child.
	for {
		left := countClaims(t, db, `SELECT count(*) FROM messages WHERE status = 'pending'`)
		seen := countClaims(t, db, fmt.Sprintf(`SELECT count(*) FROM instances WHERE id IN ('fan-a', 'fan-b')
			AND (context->>'seen')::int = %d`, childrenN))
		if left == 0 && seen == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages left, %d of 2 parents have seen every child, by the deadline; logs:\n%s", left, seen, logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := countClaims(t, db, `SELECT count(*) FROM messages`); n != 0 {
		t.Errorf("%d dead messages", n) // none pending: any left is dead
	}

	// Each parent: one on_final row per child, in the database and through the API.
	for id := range parents {
		var rows []struct {
			RequestID string  `db:"request_id"`
			Child     string  `db:"child"`
			Dropped   *string `db:"dropped"`
		}
		if err := db.X.SelectContext(ctx, &rows, `SELECT request_id, payload->>'child' AS child, dropped FROM transitions
			WHERE instance_id = $1 AND source = 'message' ORDER BY seq`, id); err != nil {
			t.Fatal(err)
		}
		ids, children := map[string]bool{}, map[string]bool{}
		for _, r := range rows {
			if r.Dropped != nil {
				t.Errorf("%s: the on_final of %s dropped: %s", id, r.Child, *r.Dropped)
			}
			ids[r.RequestID], children[r.Child] = true, true
		}
		if len(rows) != childrenN || len(ids) != childrenN || len(children) != childrenN {
			t.Errorf("%s: %d rows from messages, %d message ids, %d children; want %d of each", id, len(rows), len(ids), len(children), childrenN)
		}
		childrenFinals(t, id, childrenHistory(t, env, id), childrenN)
	}
	a, b := childrenGet(t, env, "fan-a"), childrenGet(t, env, "fan-b")
	if n := countClaims(t, db, `SELECT count(*) FROM transitions WHERE instance_id = 'fan-a' AND to_state = 'done'`); n != 1 ||
		a.State != "done" || a.Revision != childrenN+1 || a.Context["joins"] != float64(1) {
		t.Errorf("fan-a: %d transitions to done, state %s, revision %d, context %v; want 1, done, %d, joins 1",
			n, a.State, a.Revision, a.Context, childrenN+1)
	}
	if last := countClaims(t, db, `SELECT seq FROM transitions WHERE instance_id = 'fan-a' AND to_state = 'done'`); last != childrenN+1 {
		t.Errorf("fan-a joined at seq %d, want %d: the last on_final", last, childrenN+1)
	}
	if want := (childrenCounts{Total: childrenN, Final: childrenN}); b.Children["g"] != want || b.State != "waiting" ||
		b.Revision != childrenN+1 || b.Context["joins"] != float64(1) {
		t.Errorf("fan-b: children %v, state %s, revision %d, context %v; want g %+v, waiting, %d, joins 1",
			b.Children, b.State, b.Revision, b.Context, want, childrenN+1)
	}
	var stored string
	if err := db.X.GetContext(ctx, &stored, `SELECT children::text FROM instances WHERE id = 'fan-b'`); err != nil {
		t.Fatal(err)
	}
	var groups map[string]map[string]int
	if err := json.Unmarshal([]byte(stored), &groups); err != nil || groups["g"]["total"] != childrenN || groups["g"]["final"] != childrenN {
		t.Errorf("fan-b's row keeps children %s (%v), want g total and final %d", stored, err, childrenN)
	}
	if n := countClaims(t, db, `SELECT count(*) FROM transitions WHERE instance_id = 'fan-b'
		AND (context_after->>'joins') IS DISTINCT FROM (context_before->>'joins')`); n != 1 {
		t.Errorf("fan-b joined %d times, want once", n)
	}
	// Every child finished, by one event.
	if n := countClaims(t, db, `SELECT count(*) FROM instances WHERE parent_id IN ('fan-a', 'fan-b') AND state = 'finished'
		AND final AND revision = 1`); n != 2*childrenN {
		t.Errorf("%d children finished at revision 1, want %d", n, 2*childrenN)
	}
	if n := countClaims(t, db, `SELECT count(*) FROM transitions t JOIN instances i ON i.id = t.instance_id
		WHERE i.parent_id IN ('fan-a', 'fan-b')`); n != 2*childrenN {
		t.Errorf("the children's histories have %d rows, want %d", n, 2*childrenN)
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs())
	}
}
