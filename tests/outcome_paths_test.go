package tests

import (
	"net/http"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
)

// The write paths besides an event's and a creation's (outcome_test.go), each with the connection
// to PostgreSQL broken by a proxy at the COMMIT of one of its transactions: after the COMMIT was
// forwarded (the server committed; the answer is lost) and before (nothing written). Whatever
// fsmd then does, nothing is applied twice and what it reports matches what was committed.

// TestAPIAmbiguousMigration: a migration's batch (its instances moved and its progress, in one
// transaction) whose COMMIT's answer is lost. Committed, the run finds out from the progress row
// and goes on: it ends done, counting every instance it moved once. Not committed, the run fails
// as it does when the database goes away, its progress what the committed batches moved. Either
// way each instance on the new version has one row of the migration, and the migration's migrated
// count is how many instances are on the new version.
func TestAPIAmbiguousMigration(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		when   dbtest.When
		status string
	}{
		{"after forwarding", dbtest.AfterForwarding, "done"},
		{"before forwarding", dbtest.BeforeForwarding, "failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env, p := apiProxied(t)
			env.seedClaims(t)
			// The first progress write is a batch's (the migration is inserted, not updated, when it
			// starts); its COMMIT follows on the same connection.
			fired := p.DropAt(c.when, "UPDATE migrations", "COMMIT")
			env.putClaim(t, apiClaimV2(t, ""), 2) // policy auto: the put starts the migration
			select {
			case <-fired:
			case <-time.After(10 * time.Second):
				t.Fatal("the proxy never saw a batch's commit")
			}
			m := env.settledMigration(t, "claim")
			if m.Status != c.status {
				t.Errorf("the migration %+v, want %s", m, c.status)
			}
			if c.status == "done" && (m.Migrated != 4 || m.Stranded != 3) {
				t.Errorf("the migration %+v, want 4 migrated and 3 stranded", m)
			}
			var onV2, rows, instances int64
			if err := env.db.X.QueryRow(`SELECT COUNT(*) FROM instances WHERE definition = 'claim' AND version = 2`).Scan(&onV2); err != nil {
				t.Fatal(err)
			}
			if err := env.db.X.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT instance_id) FROM transitions WHERE source = 'migration' AND request_id = $1`,
				m.ID).Scan(&rows, &instances); err != nil {
				t.Fatal(err)
			}
			if m.Migrated != onV2 || rows != onV2 || instances != onV2 {
				t.Errorf("migrated %d; %d instances on version 2; %d migration rows of %d instances: want all equal", m.Migrated, onV2, rows, instances)
			}
		})
	}
}

// settledMigration waits, up to 15 s, for the one migration of the definition to end, and returns it.
func (e *apiEnv) settledMigration(t testing.TB, name string) apiMigration {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		list := apiWant[apiPage[apiMigration]](t, e.do(t, "GET", apiPath("/v1/definitions/%s/migrations", name), nil), http.StatusOK)
		if len(list.Items) == 1 && list.Items[0].Status != "running" {
			return list.Items[0]
		}
		if len(list.Items) > 1 || time.Now().After(deadline) {
			t.Fatalf("the migrations of %s: %+v", name, list.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
