package service_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/service"
)

// TestDefinitionPayloads: a definition's answer gives each event's payload as JSON Schema: the
// declared fields with their types, required and defaults; an empty object for an event without
// a payload; a child group's on_final payload, derived from the child definition.
func TestDefinitionPayloads(t *testing.T) {
	t.Parallel()
	svc := service.New(dbtest.SQLite(t), service.Options{})
	t.Cleanup(svc.Close)
	ctx := context.Background()
	if err := svc.Register(ctx, examples(t, "order", "trip", "booking")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ definition, event, want string }{
		{"booking", "confirm", `{"additionalProperties":false,"properties":{"reference":{"type":"string"}},"required":["reference"],"type":"object"}`},
		{"booking", "fail", `{"additionalProperties":false,"properties":{},"type":"object"}`},
		{"trip", "leg_done", `"state":{"type":"string"}`},
		{"trip", "leg_done", `"context":{"additionalProperties":false,"properties":{"cancelled_after_confirm":{"type":"boolean"},"kind":{"type":"string"}`},
	} {
		d, err := svc.GetDefinition(ctx, tt.definition)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(d.Payloads[tt.event])
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("%s %s: %s, want %s", tt.definition, tt.event, b, tt.want)
		}
	}
	d, _ := svc.GetDefinition(ctx, "order")
	if len(d.Payloads) < len(d.Events) {
		t.Errorf("order: payloads for %d events of %d", len(d.Payloads), len(d.Events))
	}
}
