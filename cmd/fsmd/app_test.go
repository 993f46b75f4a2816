package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenService: every command opens the service through openService. The folder is checked
// before the database is touched; an empty folder refuses migrate but only warns serve; stats
// registers nothing and sees what was stored.
func TestOpenService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := "sqlite:" + filepath.Join(t.TempDir(), "fsmd.db")
	defs, empty := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(defs, "ticket.yaml"), []byte("name: ticket\ninitial: open\nstates:\n  open: {on: {resolve: resolved}}\n  resolved: {final: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		c     appConfig
		err   string // a substring of the error; "" for none
		diags string // a substring of what is printed on Diagnostics
		defs  int    // the definitions loaded from the folder
	}{
		{name: "a broken folder before a bad database", c: appConfig{DatabaseURL: "bogus://x", Definitions: empty, Folder: registerFolder},
			err: "1 errors in the definitions in " + empty, diags: "no definition files"},
		{name: "a bad database", c: appConfig{DatabaseURL: "bogus://x", Definitions: defs, Folder: registerFolder}, err: "database bogus://x: "},
		{name: "migrate registers the folder", c: appConfig{DatabaseURL: url, Definitions: defs, Folder: registerFolder}, defs: 1},
		{name: "serve starts on an empty folder", c: appConfig{DatabaseURL: url, Definitions: empty, Folder: serveFolder}},
		{name: "stats reads no folder", c: appConfig{DatabaseURL: url, Definitions: filepath.Join(empty, "missing"), Folder: storedOnly}},
	}
	for _, tt := range tests { // in order: each may use what the one before stored
		var diags strings.Builder
		tt.c.Diagnostics = &diags
		a, err := openService(ctx, tt.c)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(diags.String(), tt.diags) {
				t.Errorf("%s: %v, printed %q; want %q and %q printed", tt.name, err, diags.String(), tt.err, tt.diags)
			}
			if err == nil {
				a.Close()
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(a.set.ByName) != tt.defs {
			t.Errorf("%s: %d definitions loaded, want %d", tt.name, len(a.set.ByName), tt.defs)
		}
		if _, err := a.svc.GetDefinition(ctx, "ticket"); err != nil { // stored by the first to open url
			t.Errorf("%s: the stored definition: %v", tt.name, err)
		}
		a.Close()
	}
}
