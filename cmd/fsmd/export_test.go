package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// TestRunExport: fsmd export writes each selected instance as a line followed by its history
// rows, filtered by --state and --since, a count on stderr; bad usage exits 2 naming what is wrong,
// an unknown definition exits 1.
func TestRunExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := "sqlite:" + filepath.Join(t.TempDir(), "fsmd.db")
	db, err := persistence.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	def, diags := machine.Parse("ticket.yaml", []byte("name: ticket\ninitial: open\nstates:\n  open: {on: {note: open, resolve: resolved}}\n  resolved: {final: true}\n"))
	if diags.Errors() > 0 {
		t.Fatal("the definition does not parse")
	}
	svc := service.New(db, service.Options{})
	if err := svc.Register(ctx, &machine.Set{ByName: map[string]*machine.Definition{"ticket": def}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"t1", "t2", "t3"} {
		if _, _, err := svc.CreateInstance(ctx, service.CreateInstance{Definition: "ticket", ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ev := range [][2]string{{"t1", "note"}, {"t1", "resolve"}, {"t3", "note"}} {
		if _, _, err := svc.SendEvent(ctx, service.SendEvent{InstanceID: ev[0], Event: ev[1], RequestID: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	svc.Close()
	db.Close()

	for _, c := range []struct {
		args  []string
		lines []string // each line's beginning
	}{
		{nil, []string{`{"instance":{"id":"t1"`, `{"instance_id":"t1","history":{"seq":1,"event":"note"`,
			`{"instance_id":"t1","history":{"seq":2,"event":"resolve"`, `{"instance":{"id":"t2"`, `{"instance":{"id":"t3"`,
			`{"instance_id":"t3","history":{"seq":1,"event":"note"`}},
		{[]string{"--state", "resolved"}, []string{`{"instance":{"id":"t1"`, `{"instance_id":"t1","history":{"seq":1,`,
			`{"instance_id":"t1","history":{"seq":2,`}},
		{[]string{"--since", "2999-01-01T00:00:00Z"}, nil},
	} {
		var stdout, stderr strings.Builder
		args := append([]string{"export", "--definition", "ticket", "--database-url", url}, c.args...)
		if code := run(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
		}
		got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		if stdout.Len() == 0 {
			got = nil
		}
		ok := len(got) == len(c.lines)
		for i := 0; ok && i < len(got); i++ {
			ok = strings.HasPrefix(got[i], c.lines[i])
		}
		if !ok {
			t.Errorf("%q:\n%s\nwant lines beginning\n%s", c.args, stdout.String(), strings.Join(c.lines, "\n"))
		}
		if !strings.HasPrefix(stderr.String(), "fsmd export ticket: ") {
			t.Errorf("%q: stderr %q", c.args, stderr.String())
		}
	}

	for _, c := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"export", "--database-url", url}, exitUsage, "usage: fsmd export --definition NAME"},
		{[]string{"export", "--definition", "ticket", "extra", "--database-url", url}, exitUsage, "usage"},
		{[]string{"export", "--definition", "ticket", "--database-url", url, "--since", "yesterday"}, exitUsage, "--since must be a time in RFC 3339"},
		{[]string{"export", "--definition", "ticket", "--database-url", url, "--state", "closed"}, exitUsage, `no version of definition "ticket" has a state "closed"`},
		{[]string{"export", "--definition", "nope", "--database-url", url}, exitFailed, `no definition "nope"`},
	} {
		var stdout, stderr strings.Builder
		if code := run(c.args, &stdout, &stderr); code != c.code || stdout.Len() > 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q: exit %d, want %d: %s (want %q)", c.args, code, c.code, stderr.String(), c.want)
		}
	}
}
