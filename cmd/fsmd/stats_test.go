package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// TestRunStats: fsmd stats prints the stats of a definition stored in the database as JSON, and
// refuses a bad window as wrong usage.
func TestRunStats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := "sqlite:" + filepath.Join(t.TempDir(), "fsmd.db")
	db, err := persistence.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	def, diags := machine.Parse("ticket.yaml", []byte("name: ticket\ninitial: open\nstates:\n  open: {on: {resolve: resolved}}\n  resolved: {final: true}\n"))
	if diags.Errors() > 0 {
		t.Fatal("the definition does not parse")
	}
	svc := service.New(db, service.Options{})
	if err := svc.Register(ctx, &machine.Set{ByName: map[string]*machine.Definition{"ticket": def}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "ticket", ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: "t1", Event: "resolve"}); err != nil {
		t.Fatal(err)
	}
	svc.Close()
	db.Close()

	var stdout, stderr strings.Builder
	if code := run([]string{"stats", "ticket", "--database-url", url}, &stdout, &stderr); code != exitOK {
		t.Fatalf("fsmd stats: exit %d: %s", code, stderr.String())
	}
	var got service.Stats
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if len(got.Transitions) != 1 || got.Transitions[0].Count != 1 || len(got.States) != 2 || got.States[1].Entries != 1 {
		t.Errorf("fsmd stats: %s", stdout.String())
	}
	for _, c := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"stats", "ticket", "--database-url", url, "--since", "2000-01-01T00:00:00Z"}, "366 days"},
		{[]string{"stats", "ticket", "--database-url", url, "--since", "yesterday"}, "--since must be a time in RFC 3339"},
		{[]string{"stats", "ticket", "--database-url", url, "--since", "0001-01-01T00:00:00Z"}, "--since must be from 1970-01-01T00:00:00Z"},
		{[]string{"stats", "ticket", "--database-url", url, "--until", "0001-01-01T00:00:00Z"}, "--until must be from"},
		{[]string{"stats", "ticket", "--database-url", url, "--since", "9999-12-31T00:00:00Z", "--until", "9999-12-31T23:59:59Z"}, "--until must be from"},
		{[]string{"stats"}, "usage"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := run(c.args, &stdout, &stderr); code != exitUsage || stdout.Len() > 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q: exit %d, want %d: %s (want %q)", c.args, code, exitUsage, stderr.String(), c.want)
		}
	}
}
