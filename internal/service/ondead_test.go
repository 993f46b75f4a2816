package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/outbox"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// onDeadOrder pays an order, which tells the billing webhook; a dead delivery to billing sends the
// order billing_failed, which its guard reads, moving it to compensating.
const onDeadOrder = `name: order
initial: created
context:
  failure: string
states:
  created:
    on:
      pay: paid
  paid:
    on:
      billing_failed:
        to: compensating
        guard: event.webhook == "billing" && event.attempts >= 1
        set: {failure: event.last_error}
  compensating: {final: true}
notify:
  - {name: billing, url: %q, events: [pay], on_dead: billing_failed}
`

// TestOnDead: a webhook's dead delivery, recorded by the outbox's dispatcher with the service's
// definitions, sends its on_dead event to the instance, which the message dispatcher delivers
// through the event path (source message), waking it.
func TestOnDead(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *persistence.DB) {
		ctx := context.Background()
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
		}))
		t.Cleanup(recv.Close)
		svc := service.New(db, service.Options{})
		t.Cleanup(svc.Close)
		if err := svc.Register(ctx, set(t, fmt.Sprintf(onDeadOrder, recv.URL+"/billing"))); err != nil {
			t.Fatal(err)
		}
		d, err := outbox.New(db, outbox.Config{Secret: []byte("s"), PollInterval: 10 * time.Millisecond, MaxAttempts: 2,
			BackoffBase: time.Millisecond, BackoffCap: 2 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Definition: svc.Definition, OnDeadSent: svc.WakeMessages})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		go func() { _ = d.Run(runCtx) }()
		go svc.RunMessages(runCtx, service.MessageOptions{Poll: time.Hour}) // only the wake makes it look

		create(t, svc, "order", "o-1")
		send(t, svc, "o-1", "pay")
		deadline := time.Now().Add(10 * time.Second)
		for {
			inst, err := svc.GetInstance(ctx, "o-1")
			if err != nil {
				t.Fatal(err)
			}
			if inst.State == "compensating" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("o-1 is %s after 10 s", inst.State)
			}
			time.Sleep(10 * time.Millisecond)
		}
		h, err := svc.History(ctx, "o-1", 0, 10)
		if err != nil || len(h.Items) != 2 {
			t.Fatalf("history %+v, %v", h.Items, err)
		}
		e := h.Items[1]
		const lastError = "HTTP 500: (no body) (attempt 2 of 2: dead)"
		if e.Event != "billing_failed" || e.Source != "message" || e.From != "paid" || e.To != "compensating" ||
			fmt.Sprint(e.Payload) != "map[attempts:2 last_error:"+lastError+" webhook:billing]" || e.ContextAfter["failure"] != lastError {
			t.Errorf("history row %+v", e)
		}
		dead, err := svc.ListDeadLetters(ctx, service.DeadLetterFilter{})
		if err != nil || len(dead.Items) != 1 || dead.Items[0].LastError != lastError || dead.Items[0].Attempts != 2 {
			t.Errorf("dead letters %+v, %v", dead.Items, err)
		}
	})
}

// TestDefinitionLoadsStored: Definition finds a version another process registered since this one
// loaded its definitions.
func TestDefinitionLoadsStored(t *testing.T) {
	t.Parallel()
	db := dbtest.SQLite(t)
	ctx := context.Background()
	one := service.New(db, service.Options{})
	t.Cleanup(one.Close)
	if err := one.Register(ctx, set(t, fmt.Sprintf(onDeadOrder, "https://billing.example/"))); err != nil {
		t.Fatal(err)
	}
	other := service.New(db, service.Options{})
	t.Cleanup(other.Close)
	if err := other.Register(ctx, set(t, fmt.Sprintf(onDeadOrder, "https://billing2.example/"))); err != nil {
		t.Fatal(err)
	}
	def, err := one.Definition(ctx, "order", 2)
	if err != nil || def.Notify[0].URL != "https://billing2.example/" || def.Notify[0].OnDead != "billing_failed" {
		t.Fatalf("Definition(order, 2) = %v, %v", def, err)
	}
	var nf *service.NotFoundError
	if _, err := one.Definition(ctx, "order", 3); !errors.As(err, &nf) {
		t.Errorf("Definition(order, 3) = %v, want NotFoundError", err)
	}
}
