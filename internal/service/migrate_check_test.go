package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/machine"
)

// TestPutChecksMigrateRules: a new version's migrate rules are compiled against the older versions
// when it is put: one that can move no instance (a context expression of the wrong type) is refused
// with its line, one that fails for only some older versions is a warning.
func TestPutChecksMigrateRules(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	svc := start(t, db, docV1)
	t.Cleanup(svc.Close)
	ctx := context.Background()
	v2 := func(expr string) []byte {
		return []byte(strings.Replace(strings.Replace(docV2, "POLICY", "manual", 1), `currency: '"EUR"'`, "currency: '"+expr+"'", 1))
	}

	_, err := svc.PutDefinition(ctx, "doc", v2("42"))
	var invalid *machine.InvalidDefinitionError
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "doc.yaml:14:5: error: ") ||
		!strings.Contains(err.Error(), "migrate context currency (42) does not compile against the context of any older version (1)") {
		t.Fatalf("a string field set to an int: %v", err)
	}
	if versions, _ := svc.DefinitionVersions(ctx, "doc", 0, 0); len(versions.Items) != 1 {
		t.Fatalf("%d versions after the refused put, want 1", len(versions.Items))
	}

	// Version 2 drops note; version 3 reads it: it compiles against version 1 only.
	if _, err := svc.PutDefinition(ctx, "doc", v2(`"EUR"`)); err != nil {
		t.Fatal(err)
	}
	res, err := svc.PutDefinition(ctx, "doc", []byte(strings.Replace(string(v2("ctx.note")), "name: doc", "name: doc\ndescription: three", 1)))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range res.Warnings {
		found = found || strings.Contains(w.Message, "does not compile against the context of version 2, whose instances it would strand")
	}
	if !res.Created || res.Definition.Version != 3 || !found {
		t.Fatalf("version 3 reading a field version 2 lacks: created %v, version %d, warnings %v", res.Created, res.Definition.Version, res.Warnings)
	}
}
