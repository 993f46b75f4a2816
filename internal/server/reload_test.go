package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/service"
	"github.com/fsmd-io/fsmd/internal/source"
)

func TestReload(t *testing.T) {
	t.Parallel()
	t.Run("reloads the folder of the options", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{"", "{}"} {
			b := setup(t, Options{Definitions: "defs/"})
			b.svc.reload = service.ReloadResult{
				Definitions: []service.Reloaded{{Name: "order", Version: 2, Created: true}},
				Warnings:    []source.Diagnostic{{File: "defs/order.yaml", Line: 5, Col: 5, Severity: source.SevWarning, Message: "w"}},
			}
			rec := b.do(t, req{method: "POST", path: "/v1/reload", body: body})
			if rec.Code != 200 || b.svc.id != "defs/" {
				t.Fatalf("body %q: %d %s, folder %q", body, rec.Code, rec.Body, b.svc.id)
			}
			var got service.ReloadResult
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Definitions) != 1 || got.Definitions[0] != b.svc.reload.Definitions[0] ||
				len(got.Warnings) != 1 || got.Warnings[0] != b.svc.reload.Warnings[0] {
				t.Errorf("body %q: answer %s", body, rec.Body)
			}
		}
	})
	t.Run("an invalid folder is 422 with every problem", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{Definitions: "defs"})
		b.svc.err = &machine.InvalidDefinitionError{Diagnostics: source.Diagnostics{
			{File: "defs/a.yaml", Line: 1, Col: 2, Severity: source.SevError, Message: "first"},
			{File: "defs/b.yaml", Line: 3, Col: 4, Severity: source.SevError, Message: "second"},
		}}
		p := problem(t, b.do(t, req{method: "POST", path: "/v1/reload"}), 422, "invalid_definition")
		if len(p.Errors) != 2 || p.Errors[1].File != "defs/b.yaml" || !strings.Contains(p.Detail, "second") {
			t.Errorf("problem %+v", p)
		}
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Options{})
		if p := problem(t, b.do(t, req{method: "POST", path: "/v1/reload"}), 404, "not_found"); !strings.Contains(p.Detail, "no definitions folder") {
			t.Errorf("without a folder: %+v", p)
		}
		b = setup(t, Options{Definitions: "defs"})
		problem(t, b.do(t, req{method: "POST", path: "/v1/reload", body: `{"dir":"/etc"}`}), 400, "invalid_request")
		problem(t, b.do(t, req{method: "POST", path: "/v1/reload?dir=x"}), 400, "invalid_request")
		problem(t, b.do(t, req{method: "GET", path: "/v1/reload"}), 405, "method_not_allowed")
		if b.svc.id != "" {
			t.Errorf("a refused request reached the service: %q", b.svc.id)
		}
	})
}
