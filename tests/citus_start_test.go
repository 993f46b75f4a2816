package tests

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// TestCitusStartLog: fsmd started on Citus says in its log that its events go straight to the
// workers, naming each worker that holds instances, and warns of none it cannot reach.
func TestCitusStartLog(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.CitusDatabaseURL(t)
	defs, err := filepath.Abs("testdata/timers")
	if err != nil {
		t.Fatal(err)
	}
	child := startFsmd(t, dbURL, defs)
	log := child.log.tail()
	db, err := persistence.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var workers []string
	if err := db.X.Select(&workers, `SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid <> 0 AND isactive
		AND noderole = 'primary' AND shouldhaveshards ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "events go straight to the workers") {
			line = l
		}
	}
	if line == "" || len(workers) == 0 {
		t.Fatalf("no line about the workers (%d in pg_dist_node) in the log:\n%s", len(workers), log)
	}
	for _, w := range workers {
		if !strings.Contains(line, w) {
			t.Errorf("the log's line does not name worker %s: %s", w, line)
		}
	}
	if strings.Contains(log, "does not answer from here") || strings.Contains(log, "every event goes through the coordinator") {
		t.Errorf("a warning about the workers, which all answer:\n%s", log)
	}
}
