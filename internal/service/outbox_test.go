package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// deadLetters stores n dead letters of definition def and webhook w, one per instance.
func deadLetters(t *testing.T, db *persistence.DB, def, w string, n int) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var rows []persistence.OutboxRow
	for i := range n {
		id := fmt.Sprintf("%s-%s-%02d", def, w, i)
		rows = append(rows, persistence.OutboxRow{ID: id, InstanceID: "i-" + id, Seq: 1, Definition: def, Version: 1,
			Webhook: w, URL: "https://" + w + ".example/", Destination: "https://" + w + ".example:443",
			Body: []byte(`{"delivery_id": "` + id + `"}`), NextTryAt: at, CreatedAt: at})
	}
	err := db.WithTx(ctx, func(tx *persistence.Tx) error {
		if err := persistence.OutboxInsert(ctx, tx, rows); err != nil {
			return err
		}
		claimed, err := persistence.OutboxClaim(ctx, tx, persistence.OutboxClaimParams{Now: at, LeaseUntil: at.Add(time.Hour), Claim: "c", Limit: n})
		if err != nil {
			return err
		}
		for _, r := range claimed {
			if err := persistence.OutboxFail(ctx, tx, persistence.OutboxFailParams{ID: r.ID, Claim: "c", At: at.Add(time.Minute),
				Error: "HTTP 500: (no body)", Dead: true}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
		svc := service.New(db, service.Options{Now: func() time.Time { return now }})
		deadLetters(t, db, "order", "billing", 3)
		deadLetters(t, db, "order", "crm", 2)
		deadLetters(t, db, "loan", "billing", 1)

		page, err := svc.ListDeadLetters(ctx, service.DeadLetterFilter{Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 4 || page.Next != "order-billing-02" || page.Items[0].ID != "loan-billing-00" {
			t.Fatalf("first page = %+v", page)
		}
		d := page.Items[1]
		if d.Instance != "i-order-billing-00" || d.Seq != 1 || d.Definition != "order" || d.Version != 1 || d.Webhook != "billing" ||
			d.URL != "https://billing.example/" || d.Attempts != 1 || d.LastError != "HTTP 500: (no body)" ||
			d.LastTryAt == nil || !d.LastTryAt.Equal(time.Date(2026, 5, 1, 12, 1, 0, 0, time.UTC)) {
			t.Errorf("dead letter = %+v", d)
		}
		var body map[string]any
		if err := json.Unmarshal(d.Body, &body); err != nil || body["delivery_id"] != d.ID {
			t.Errorf("body %s: %v", d.Body, err)
		}
		page, err = svc.ListDeadLetters(ctx, service.DeadLetterFilter{After: page.Next, Limit: 4})
		if err != nil || len(page.Items) != 2 || page.Next != "" {
			t.Fatalf("last page = %+v, %v", page, err)
		}
		page, err = svc.ListDeadLetters(ctx, service.DeadLetterFilter{Definition: "order", Webhook: "billing"})
		if err != nil || len(page.Items) != 3 {
			t.Fatalf("order's billing = %+v, %v", page, err)
		}

		res, err := svc.RedriveDeadLetter(ctx, "order-crm-01")
		if err != nil || res.Redriven != 1 {
			t.Fatalf("RedriveDeadLetter = %+v, %v", res, err)
		}
		r, err := persistence.OutboxGet(ctx, db, "order-crm-01")
		if err != nil || r.Status != persistence.OutboxPending || r.Attempts != 0 || !r.NextTryAt.Equal(now) {
			t.Errorf("re-driven = %+v, %v", r, err)
		}
		var nf *service.NotFoundError
		if _, err := svc.RedriveDeadLetter(ctx, "order-crm-01"); !errors.As(err, &nf) {
			t.Errorf("RedriveDeadLetter again = %v, want NotFoundError", err)
		}
		res, err = svc.RedriveDeadLetters(ctx, service.DeadLetterFilter{Webhook: "billing"})
		if err != nil || res.Redriven != 4 {
			t.Errorf("RedriveDeadLetters(billing) = %+v, %v", res, err)
		}
		res, err = svc.RedriveDeadLetters(ctx, service.DeadLetterFilter{})
		if err != nil || res.Redriven != 1 {
			t.Errorf("RedriveDeadLetters() = %+v, %v", res, err)
		}
		page, err = svc.ListDeadLetters(ctx, service.DeadLetterFilter{})
		if err != nil || len(page.Items) != 0 || page.Items == nil {
			t.Errorf("after re-driving all = %+v, %v", page, err)
		}
	})
}
