package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
	"github.com/fsmd-io/fsmd/internal/source"
)

// doorV2Migrate is doorV2 with migrate rules: opened becomes ajar, and a rule for a state no version
// has (a typo, line 10).
const doorV2Migrate = `name: door
description: Version 2 opens ajar.
initial: closed
context:
  opened: int
migrate:
  policy: POLICY
  states:
    opened: ajar
    opend: ajar
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

// writeFile writes a file of the definitions folder dir.
func writeFile(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reloaded formats a reload's definitions as "name@version" with a + for a new version.
func reloaded(res service.ReloadResult) string {
	var out []string
	for _, d := range res.Definitions {
		s := fmt.Sprintf("%s@%d", d.Name, d.Version)
		if d.Created {
			s += "+"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// waitVersion waits until the instance runs on version.
func waitVersion(t *testing.T, svc *service.Service, id string, version int) service.Instance {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		inst, err := svc.GetInstance(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if inst.Version == version {
			return inst
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still on version %d, want %d: %+v", id, inst.Version, version, inst)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReload: an unchanged folder is a no-op; a new version with policy auto is registered and
// migrates the running instances; a folder with an invalid file registers nothing and reports every
// problem; a file removed leaves its definition registered.
func TestReload(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		writeFile(t, dir, "door.yaml", doorV1)
		writeFile(t, dir, "ticket.yaml", ticket)
		svc := start(t, db, doorV1, ticket) // the same content, registered from elsewhere
		t.Cleanup(svc.Close)

		res, err := svc.Reload(ctx, dir)
		if err != nil || reloaded(res) != "door@1 ticket@1" || len(res.Warnings) != 0 || res.Warnings == nil {
			t.Fatalf("unchanged folder: %s %+v, %v", reloaded(res), res.Warnings, err)
		}

		create(t, svc, "door", "closed-1")
		create(t, svc, "door", "opened-1")
		send(t, svc, "opened-1", "open")
		create(t, svc, "door", "broken-1")
		send(t, svc, "broken-1", "smash")

		writeFile(t, dir, "door.yaml", strings.Replace(doorV2Migrate, "POLICY", "auto", 1))
		res, err = svc.Reload(ctx, dir)
		if err != nil || reloaded(res) != "door@2+ ticket@1" {
			t.Fatalf("door version 2: %s, %v", reloaded(res), err)
		}
		want := filepath.Join(dir, "door.yaml") + `:10:5: warning: migrate rule for state "opend": no older version of "door" has a state "opend"`
		if len(res.Warnings) != 1 || res.Warnings[0].String() != want {
			t.Errorf("warnings %+v, want %s", res.Warnings, want)
		}
		if inst := waitVersion(t, svc, "opened-1", 2); inst.State != "ajar" {
			t.Errorf("opened-1 migrated to %q, want ajar", inst.State)
		}
		if inst := waitVersion(t, svc, "closed-1", 2); inst.State != "closed" {
			t.Errorf("closed-1 migrated to %q, want closed", inst.State)
		}
		if inst, err := svc.GetInstance(ctx, "broken-1"); err != nil || inst.Version != 1 {
			t.Errorf("the final broken-1: %+v, %v: want it left on version 1", inst, err)
		}
		// Again: a no-op, with the same warnings.
		again, err := svc.Reload(ctx, dir)
		if err != nil || reloaded(again) != "door@2 ticket@1" || len(again.Warnings) != 1 || again.Warnings[0] != res.Warnings[0] {
			t.Errorf("reloading again: %s %+v, %v", reloaded(again), again.Warnings, err)
		}

		// New content for ticket, but two files with errors: nothing is registered.
		writeFile(t, dir, "ticket.yaml", strings.Replace(ticket, "initial: open", "description: two\ninitial: open", 1))
		writeFile(t, dir, "bad.yaml", "name: bad\ninitial: nowhere\nstates:\n  a: {on: {go: b}}\n")
		writeFile(t, dir, "syntax.yaml", "name: [\n")
		_, err = svc.Reload(ctx, dir)
		var inv *machine.InvalidDefinitionError
		if !errors.As(err, &inv) || code.Of(err) != code.InvalidDefinition {
			t.Fatalf("a folder with errors: %v, want an InvalidDefinitionError", err)
		}
		files := map[string]int{}
		for _, d := range inv.Diagnostics {
			if d.Severity == source.SevError {
				files[filepath.Base(d.File)]++
			}
		}
		if files["bad.yaml"] != 2 || files["syntax.yaml"] != 1 || len(files) != 2 {
			t.Errorf("errors by file %v, want 2 in bad.yaml and 1 in syntax.yaml:\n%v", files, err)
		}
		if def, err := svc.GetDefinition(ctx, "ticket"); err != nil || def.Version != 1 {
			t.Errorf("ticket after the failed reload: version %d, %v; want 1", def.Version, err)
		}
		if _, err := svc.GetDefinition(ctx, "bad"); code.Of(err) != code.NotFound {
			t.Errorf("bad after the failed reload: %v, want not_found", err)
		}

		// The broken files fixed by removing them, door's file too: ticket gets version 2, door stays.
		for _, name := range []string{"bad.yaml", "syntax.yaml", "door.yaml"} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		res, err = svc.Reload(ctx, dir)
		if err != nil || reloaded(res) != "ticket@2+" {
			t.Fatalf("after the fix: %s, %v", reloaded(res), err)
		}
		if def, err := svc.GetDefinition(ctx, "door"); err != nil || def.Version != 2 {
			t.Errorf("door, removed from the folder: version %d, %v; want 2, still registered", def.Version, err)
		}

		// A folder that does not exist is invalid; an empty one registers nothing and warns.
		if _, err := svc.Reload(ctx, filepath.Join(dir, "missing")); !errors.As(err, &inv) || !strings.Contains(err.Error(), "missing") {
			t.Errorf("a missing folder: %v", err)
		}
		res, err = svc.Reload(ctx, t.TempDir())
		if err != nil || len(res.Definitions) != 0 || res.Definitions == nil || len(res.Warnings) != 1 ||
			!strings.Contains(res.Warnings[0].Message, "no definition files") {
			t.Errorf("an empty folder: %+v, %v", res, err)
		}
	})
}

// TestReloadManual: a new version with policy manual is registered, and its instances only plan.
func TestReloadManual(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		svc := start(t, db, doorV1)
		t.Cleanup(svc.Close)
		create(t, svc, "door", "opened-1")
		send(t, svc, "opened-1", "open")

		writeFile(t, dir, "door.yaml", strings.Replace(doorV2Migrate, "POLICY", "manual", 1))
		res, err := svc.Reload(ctx, dir)
		if err != nil || reloaded(res) != "door@2+" {
			t.Fatalf("%s, %v", reloaded(res), err)
		}
		running, err := persistence.MigrationListRunning(ctx, db)
		if err != nil || len(running) != 0 {
			t.Errorf("migrations running after a manual version: %+v, %v", running, err)
		}
		plan, err := svc.PlanMigration(ctx, "door", service.MigrationRequest{})
		if err != nil || planString(plan) != "to 2 total 1 moves [1 opened->ajar 1] stranded []" {
			t.Errorf("plan: %s, %v", planString(plan), err)
		}
		time.Sleep(100 * time.Millisecond)
		if inst, err := svc.GetInstance(ctx, "opened-1"); err != nil || inst.Version != 1 || inst.State != "opened" {
			t.Errorf("opened-1: %+v, %v: want it left on version 1", inst, err)
		}
	})
}

// TestRegistrationWarnings: PUT answers the warnings of the version it registers (the same again
// for the same content), and a start logs those of the folder's versions.
func TestRegistrationWarnings(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		svc := start(t, db, doorV1)
		t.Cleanup(svc.Close)
		v2 := strings.Replace(doorV2Migrate, "POLICY", "auto", 1)
		want := `door.yaml:10:5: warning: migrate rule for state "opend": no older version of "door" has a state "opend"`
		for i, wantCreated := range []bool{true, false} {
			res, err := svc.PutDefinition(ctx, "door", []byte(v2))
			if err != nil || res.Created != wantCreated || len(res.Warnings) != 1 || res.Warnings[0].String() != want {
				t.Fatalf("put %d: created %v, warnings %+v, %v; want %s", i+1, res.Created, res.Warnings, err, want)
			}
		}
		// Version 1 again: no migrate section; the graph's warnings come along.
		res, err := svc.PutDefinition(ctx, "door", []byte(doorV1))
		if err != nil || res.Created || res.Definition.Version != 1 || res.Warnings == nil || len(res.Warnings) != 0 {
			t.Errorf("version 1 again: %+v, %v", res, err)
		}
		res, err = svc.PutDefinition(ctx, "ticket", []byte(ticket+"  limbo: {on: {resolve: resolved}}\n"))
		if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Message, "unreachable") {
			t.Errorf("a state nothing leads to: %+v, %v", res.Warnings, err)
		}

		// A start on the same database logs the warning of version 2.
		var logs lockedLog
		restarted := service.New(db, service.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		t.Cleanup(restarted.Close)
		if err := restarted.Register(ctx, set(t, v2)); err != nil {
			t.Fatal(err)
		}
		if got := logs.String(); !strings.Contains(got, "definition warning") || !strings.Contains(got, `no older version of \"door\" has a state \"opend\"`) {
			t.Errorf("the log of a start:\n%s", got)
		}
	})
}

// lockedLog is a log sink the race detector accepts.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
