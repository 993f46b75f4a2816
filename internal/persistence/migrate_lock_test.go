package persistence_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestMigrationLockPerSchema: the schema public migrates under the lock it always had; another
// schema of the same database under one of its own, so that neither waits for the other.
func TestMigrationLockPerSchema(t *testing.T) {
	t.Parallel()
	base := dbtest.PostgresDatabaseURL(t)
	locks := map[string]int64{}
	for _, schema := range []string{"", "tenant_a", "tenant_b"} {
		u := base
		if schema != "" {
			admin, err := persistence.Open(context.Background(), base)
			if err != nil {
				t.Fatal(err)
			}
			admin.X.MustExec("CREATE SCHEMA " + schema)
			admin.Close()
			pu, _ := url.Parse(base)
			q := pu.Query()
			q.Set("search_path", schema)
			pu.RawQuery = q.Encode()
			u = pu.String()
		}
		db, err := persistence.Open(context.Background(), u) // migrates the schema under its lock
		if err != nil {
			t.Fatalf("open with schema %q: %v", schema, err)
		}
		id, err := persistence.MigrationLock(db)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		locks[schema] = id
	}
	if locks[""] != persistence.MigrationLockID {
		t.Errorf("public's lock %x, want %x", locks[""], persistence.MigrationLockID)
	}
	if locks["tenant_a"] == locks[""] || locks["tenant_b"] == locks[""] || locks["tenant_a"] == locks["tenant_b"] {
		t.Errorf("locks %x: want one per schema", locks)
	}
}
