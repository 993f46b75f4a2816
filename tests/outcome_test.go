package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestAPIAmbiguousWrite: the connection to PostgreSQL breaks during an event's write (a proxy
// between fsmd and the server cuts it on a marker in the request's id). Broken after the write was
// forwarded, the server committed what fsmd never heard back: fsmd finds out from the audit row and
// answers 200 with the transition, never unavailable, and the event is in the history once. Broken
// before it was forwarded, nothing was written: fsmd decides again on a new connection and answers
// 200 too, written once. A client that then sends the same event again without a key gets a second
// transition only because it sent it twice: nothing is ever applied twice by fsmd itself.
func TestAPIAmbiguousWrite(t *testing.T) {
	t.Parallel()
	env, p := apiProxied(t)
	env.door(t, "amb-1")

	for i, c := range []struct {
		name string
		when dbtest.When
	}{
		{"after forwarding: committed, the answer lost", dbtest.AfterForwarding},
		{"before forwarding: nothing written", dbtest.BeforeForwarding},
	} {
		marker := "ambiguous-write-" + c.name[:5]
		fired := p.DropAt(c.when, marker)
		r := env.do(t, "POST", "/v1/instances/amb-1/events", map[string]any{"event": "knock", "payload": map[string]any{"note": c.name}},
			"X-Request-ID", marker)
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the proxy never saw the write", c.name)
		}
		res := apiWant[apiEventResult](t, r, http.StatusOK)
		if res.Transition.Seq != int64(i+1) || res.Instance.Revision != int64(i+1) || res.Instance.Context["note"] != c.name {
			t.Errorf("%s: the answer %+v", c.name, res)
		}
		hist := env.history(t, "amb-1", 0)
		if len(hist) != i+1 || hist[i].RequestID != marker || hist[i].Payload["note"] != c.name {
			t.Fatalf("%s: the history %+v, want one row per event", c.name, hist)
		}
	}
	// Each transition counts once in the stats, the one whose commit was read back too.
	r := env.do(t, "GET", "/v1/definitions/door/stats", nil)
	stats := apiWant[struct {
		Transitions []struct {
			Event string
			Count int64
		}
	}](t, r, http.StatusOK)
	knocks := int64(0)
	for _, tr := range stats.Transitions {
		if tr.Event == "knock" {
			knocks += tr.Count
		}
	}
	if knocks != 2 {
		t.Errorf("the stats count %d knocks, want 2: %s", knocks, r.body)
	}
}

// TestAPIAmbiguousCreate: the connection breaks during a creation's transaction: after its COMMIT
// was forwarded (the server created it; the answer is lost), after its INSERT (never committed),
// or before the INSERT. Each time the client gets 201 with the instance, which exists once.
func TestAPIAmbiguousCreate(t *testing.T) {
	t.Parallel()
	env, p := apiProxied(t)

	for _, c := range []struct {
		id      string
		when    dbtest.When
		markers []string
	}{
		{"made-committed", dbtest.AfterForwarding, []string{"made-committed", "COMMIT"}},
		{"made-inserted", dbtest.AfterForwarding, []string{"made-inserted"}},
		{"made-never", dbtest.BeforeForwarding, []string{"made-never"}},
	} {
		fired := p.DropAt(c.when, c.markers...)
		r := env.do(t, "POST", "/v1/instances", map[string]any{"definition": "door", "id": c.id, "context": map[string]any{"code": "7"}})
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the proxy never broke the connection", c.id)
		}
		if inst := apiWant[apiInstance](t, r, http.StatusCreated); inst.ID != c.id || inst.Revision != 0 {
			t.Errorf("%s: %+v", c.id, inst)
		}
		list := env.list(t, url.Values{"definition": {"door"}}, 0)
		n := 0
		for _, inst := range list {
			if inst.ID == c.id {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d instances of that id", c.id, n)
		}
	}
}

// apiProxied serves a PostgreSQL database of its own through a proxy the test can cut or make
// drop a connection (dbtest.Proxy).
func apiProxied(t *testing.T) (*apiEnv, *dbtest.Proxy) {
	t.Helper()
	db, p := proxiedPostgres(t)
	return apiServe(t, db), p
}

// proxiedPostgres opens a PostgreSQL database of its own through a proxy the test can cut or make
// drop a connection (dbtest.PostgresProxied), its pool bounded by apiPostgresPool.
func proxiedPostgres(t *testing.T) (*persistence.DB, *dbtest.Proxy) {
	t.Helper()
	db, proxy := dbtest.PostgresProxied(t)
	return apiPostgresPool(t, db), proxy
}

// TestAPIAmbiguousAdmin: the connection breaks during an operator's change of an instance:
// suspend, resume, terminate and assign (a transaction: broken after its COMMIT was forwarded, or
// before) and repair (one statement, its own commit: broken after it was forwarded, or before). Committed,
// fsmd finds out from the audit row and answers 200 with the instance as changed, never
// unavailable; not, it answers 200 too once it has written the change on a new connection
// (repair), or 503 unavailable with nothing written (the others). The history has the change once,
// or not at all after a 503.
func TestAPIAmbiguousAdmin(t *testing.T) {
	t.Parallel()
	env, p := apiProxied(t)
	for i, c := range []struct {
		action  string
		body    map[string]any
		when    dbtest.When
		commit  bool // the markers end with COMMIT: the change is a transaction
		changed func(inst map[string]any) bool
	}{
		{"suspend", map[string]any{"reason": "r"}, dbtest.AfterForwarding, true, func(m map[string]any) bool { return m["suspended"] == true }},
		{"suspend", map[string]any{"reason": "r"}, dbtest.BeforeForwarding, true, func(m map[string]any) bool { return m["suspended"] == true }},
		{"resume", map[string]any{}, dbtest.AfterForwarding, true, func(m map[string]any) bool { return m["suspended"] != true }},
		{"terminate", map[string]any{"reason": "r"}, dbtest.AfterForwarding, true, func(m map[string]any) bool { return m["final"] == true }},
		{"assign", map[string]any{"to": []string{"ops-user"}}, dbtest.AfterForwarding, true,
			func(m map[string]any) bool { return strings.Contains(fmt.Sprint(m), "ops-user") }},
		{"assign", map[string]any{"to": []string{"ops-user"}}, dbtest.BeforeForwarding, true,
			func(m map[string]any) bool { return strings.Contains(fmt.Sprint(m), "ops-user") }},
		{"repair", map[string]any{"state": "opened", "reason": "r"}, dbtest.AfterForwarding, false,
			func(m map[string]any) bool { return m["instance"].(map[string]any)["state"] == "opened" }},
		{"repair", map[string]any{"state": "opened", "reason": "r"}, dbtest.BeforeForwarding, false,
			func(m map[string]any) bool { return m["instance"].(map[string]any)["state"] == "opened" }},
	} {
		id := fmt.Sprintf("adm-%d", i)
		env.door(t, id)
		if c.action == "resume" {
			env.do(t, "POST", apiPath("/v1/instances/%s/suspend", id), map[string]any{"reason": "first"})
		}
		marker := fmt.Sprintf("ambiguous-%s-%d", c.action, i)
		markers := []string{marker}
		if c.commit {
			markers = append(markers, "COMMIT")
		}
		fired := p.DropAt(c.when, markers...)
		r := env.do(t, "POST", apiPath("/v1/instances/%s/%s", id, c.action), c.body, "X-Request-ID", marker)
		awaitFired(t, fired, c.action+"'s write")
		// Read in SQL: the API's schema of a history entry does not list the sources admin and repair.
		rows := countOf(t, env.db, `SELECT COUNT(*) FROM transitions WHERE instance_id = $1 AND request_id = $2`, id, marker)
		switch {
		case r.status == http.StatusOK:
			if !c.changed(apiRaw(t, r)) || rows != 1 {
				t.Errorf("%s (%d): %s; %d rows of it, want the change once", c.action, c.when, r, rows)
			}
		case r.status == http.StatusServiceUnavailable && c.when == dbtest.BeforeForwarding:
			if code := apiRaw(t, r)["code"]; code != "unavailable" || rows != 0 {
				t.Errorf("%s (%d): %s; %d rows of it, want none", c.action, c.when, r, rows)
			}
		default:
			t.Errorf("%s (%d): %s", c.action, c.when, r)
		}
	}
}

// TestAPIAmbiguousStart: the connection breaks while a bulk or a migration is recorded: after
// the record was forwarded (a statement of its own for a bulk, its transaction's COMMIT for a
// migration: recorded, the answer lost), or before. The client gets 202 with the one bulk or
// migration there is, never unavailable for one recorded; or, before forwarding, 503 unavailable
// with none recorded. A migration answered 202 runs to its end.
func TestAPIAmbiguousStart(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		when    dbtest.When
		markers []string
	}{
		{"bulk, after forwarding", dbtest.AfterForwarding, []string{"INSERT INTO bulks"}},
		{"bulk, before forwarding", dbtest.BeforeForwarding, []string{"INSERT INTO bulks"}},
		{"migration, after forwarding", dbtest.AfterForwarding, []string{"INSERT INTO migrations", "COMMIT"}},
		{"migration, before forwarding", dbtest.BeforeForwarding, []string{"INSERT INTO migrations", "COMMIT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env, p := apiProxied(t)
			bulk := c.markers[0] == "INSERT INTO bulks"
			path, list := "/v1/definitions/door/bulk", "/v1/definitions/door/bulk"
			var body any = map[string]any{"filter": map[string]any{}, "event": "knock"}
			if bulk {
				env.door(t, "start-1")
			} else {
				env.seedClaims(t)
				env.putClaim(t, apiClaimV2(t, "  policy: manual\n"), 2)
				path, list, body = "/v1/definitions/claim/migrations", "/v1/definitions/claim/migrations", nil
			}
			fired := p.DropAt(c.when, c.markers...)
			r := env.do(t, "POST", path, body)
			awaitFired(t, fired, "the record")
			recorded := len(apiWant[apiPage[map[string]any]](t, env.do(t, "GET", list, nil), http.StatusOK).Items)
			switch {
			case r.status == http.StatusAccepted && recorded == 1:
				if !bulk {
					if m := env.settledMigration(t, "claim"); m.Status != "done" || m.Migrated != 4 {
						t.Errorf("the migration %+v", m)
					}
				}
			case r.status == http.StatusServiceUnavailable && c.when == dbtest.BeforeForwarding && recorded == 0:
				if code := apiRaw(t, r)["code"]; code != "unavailable" {
					t.Errorf("%s", r)
				}
			default:
				t.Errorf("%s; %d recorded", r, recorded)
			}
		})
	}
}

// TestAPIAmbiguousPut: the connection breaks while a new version of a definition is stored, after
// its COMMIT was forwarded (stored; the answer lost) or before. The client gets 201 with the one
// version there is, and the version's migration (policy auto) runs as after any put: the
// instances are on it; or, before forwarding, 503 unavailable with nothing stored.
func TestAPIAmbiguousPut(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		when dbtest.When
	}{{"after forwarding", dbtest.AfterForwarding}, {"before forwarding", dbtest.BeforeForwarding}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env, p := apiProxied(t)
			env.seedClaims(t)
			fired := p.DropAt(c.when, "INSERT INTO definitions", "COMMIT")
			r := env.do(t, "PUT", "/v1/definitions/claim", apiClaimV2(t, ""), "Content-Type", "application/yaml")
			awaitFired(t, fired, "the version's commit")
			versions := countOf(t, env.db, `SELECT COUNT(*) FROM definitions WHERE name = 'claim'`)
			switch {
			case r.status == http.StatusCreated && versions == 2:
				if m := env.settledMigration(t, "claim"); m.Status != "done" || m.Migrated != 4 {
					t.Errorf("the migration %+v", m)
				}
			case r.status == http.StatusServiceUnavailable && c.when == dbtest.BeforeForwarding && versions == 1:
			default:
				t.Errorf("%s; %d versions stored", r, versions)
			}
		})
	}
}

// TestAPIAmbiguousMaintenance: the connection breaks while a bulk is cancelled (one statement, its
// own commit) or a dead message is re-driven (a transaction: at its COMMIT, or after its statement),
// after the write was forwarded or before. Each is answered as done (the bulk cancelled, the message pending), never
// unavailable for a write that applied, and never 404 for a re-drive of its own; a write that did
// not reach the server is done on a new connection, or 503 unavailable with nothing written.
func TestAPIAmbiguousMaintenance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		when    dbtest.When
		markers []string
	}{
		{"cancel, after forwarding", dbtest.AfterForwarding, []string{"UPDATE bulks SET status"}},
		{"cancel, before forwarding", dbtest.BeforeForwarding, []string{"UPDATE bulks SET status"}},
		{"re-drive, after forwarding", dbtest.AfterForwarding, []string{"UPDATE messages SET status = 'pending'", "COMMIT"}},
		{"re-drive, its statement after forwarding", dbtest.AfterForwarding, []string{"UPDATE messages SET status = 'pending'"}},
		{"re-drive, before forwarding", dbtest.BeforeForwarding, []string{"UPDATE messages SET status = 'pending'", "COMMIT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env, p := apiProxied(t)
			cancel := c.markers[0] == "UPDATE bulks SET status"
			var path, status string
			var done func() string // the bulk's status, or the message's
			if cancel {
				env.door(t, "m-1")
				b := apiRaw(t, env.do(t, "POST", "/v1/definitions/door/bulk", map[string]any{"filter": map[string]any{}, "event": "knock"}))
				id, _ := b["id"].(string)
				path, status = apiPath("/v1/bulk/%s/cancel", id), "cancelled"
				done = func() string {
					var s string
					if err := env.db.X.QueryRow(`SELECT status FROM bulks WHERE id = $1`, id).Scan(&s); err != nil {
						t.Fatal(err)
					}
					return s
				}
			} else {
				if _, err := env.db.X.Exec(`INSERT INTO messages (id, sender, sender_seq, target, seq, event, payload, status, reason, created_at, dead_at)
					VALUES ('msg-dead-1', 'someone', 1, 'nobody', 1, 'knock', '{}', 'dead', 'not_found: no instance has id "nobody"', now(), now())`); err != nil {
					t.Fatal(err)
				}
				path, status = "/v1/messages/dead/msg-dead-1/redrive", "pending"
				done = func() string {
					var s string
					if err := env.db.X.QueryRow(`SELECT status FROM messages WHERE id = 'msg-dead-1'`).Scan(&s); err != nil {
						t.Fatal(err)
					}
					return s
				}
			}
			fired := p.DropAt(c.when, c.markers...)
			r := env.do(t, "POST", path, nil)
			awaitFired(t, fired, "the write")
			switch got := done(); {
			case r.status == http.StatusOK && got == status:
			case r.status == http.StatusServiceUnavailable && c.when == dbtest.BeforeForwarding && got != status:
				if code := apiRaw(t, r)["code"]; code != "unavailable" {
					t.Errorf("%s", r)
				}
			default:
				t.Errorf("%s; then %s", r, got)
			}
		})
	}
}
