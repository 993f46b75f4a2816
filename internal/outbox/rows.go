package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/schema"
)

// RowsParams is what Rows needs to know of an accepted transition.
type RowsParams struct {
	Definition *machine.Definition // the version the transition was decided on
	Version    int                 // its number
	InstanceID string
	Seq        int64               // the transition's seq: the instance's revision after it
	Source     string              // api, timer or migration (audit.SourceAPI...)
	Transition *machine.Transition // what machine.Fire returned
	Now        time.Time           // the transaction's now: when the rows are created, and first due
	// The JSON of the transition's payload and contexts when the caller has it already (the audit
	// row's): used as they are instead of encoding the maps again. Each nil is encoded.
	PayloadJSON, ContextBeforeJSON, ContextAfterJSON []byte
}

// Body is the JSON body of a delivery: the request a webhook receives.
type Body struct {
	DeliveryID string         `json:"delivery_id"` // as the Fsmd-Delivery-Id header; signed with the body
	Webhook    string         `json:"webhook"`     // the webhook's name in the definition's notify section
	Definition string         `json:"definition"`
	Version    int            `json:"version"` // of the definition the transition was decided on
	Instance   BodyInstance   `json:"instance"`
	Transition BodyTransition `json:"transition"`
}

// BodyInstance is the instance after the transition.
type BodyInstance struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Final    bool   `json:"final"`
	Revision int64  `json:"revision"` // equals transition.seq
}

// BodyTransition is the transition as the instance's history shows it.
type BodyTransition struct {
	Seq           int64           `json:"seq"`
	Event         string          `json:"event"`
	From          string          `json:"from"`
	To            string          `json:"to"`
	Payload       json.RawMessage `json:"payload"`        // a JSON object
	ContextBefore json.RawMessage `json:"context_before"` // a JSON object
	ContextAfter  json.RawMessage `json:"context_after"`  // a JSON object
	Source        string          `json:"source"`
	At            time.Time       `json:"at"`
}

// Rows returns the outbox rows of an accepted transition: one per webhook of the definition that
// the transition notifies (machine.Definition.Notified), in the order of its notify section, each
// pending and due at p.Now. None (nil) when the definition has no webhook for it. Insert them with
// persistence.OutboxInsert in the transaction that records the transition.
func Rows(p RowsParams) ([]persistence.OutboxRow, error) {
	if p.Definition == nil || p.Transition == nil {
		return nil, errors.New("outbox: Rows needs a definition and a transition")
	}
	hooks := p.Definition.Notified(p.Transition)
	if len(hooks) == 0 {
		return nil, nil
	}
	t := p.Transition
	now := p.Now.UTC()
	body := Body{Definition: p.Definition.Name, Version: p.Version,
		Instance:   BodyInstance{ID: p.InstanceID, State: t.To, Final: t.Final, Revision: p.Seq},
		Transition: BodyTransition{Seq: p.Seq, Event: t.Event, From: t.From, To: t.To, Source: p.Source, At: t.At.UTC()}}
	for _, f := range []struct {
		dst *json.RawMessage
		raw []byte
		m   map[string]any
	}{{&body.Transition.Payload, p.PayloadJSON, t.Payload}, {&body.Transition.ContextBefore, p.ContextBeforeJSON, t.ContextBefore},
		{&body.Transition.ContextAfter, p.ContextAfterJSON, t.ContextAfter}} {
		if *f.dst = f.raw; f.raw == nil {
			b, err := json.Marshal(encodeMap(f.m))
			if err != nil {
				return nil, fmt.Errorf("outbox: the body: %w", err)
			}
			*f.dst = b
		}
	}
	rows := make([]persistence.OutboxRow, 0, len(hooks))
	for _, w := range hooks {
		dest, err := Destination(w.URL)
		if err != nil {
			return nil, fmt.Errorf("outbox: webhook %q of %s: %w", w.Name, p.Definition.Name, err)
		}
		body.DeliveryID, body.Webhook = ident.New(now), w.Name
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("outbox: the body of webhook %q: %w", w.Name, err)
		}
		rows = append(rows, persistence.OutboxRow{ID: body.DeliveryID, InstanceID: p.InstanceID, Seq: p.Seq,
			Definition: p.Definition.Name, Version: p.Version, Webhook: w.Name, URL: w.URL, Destination: dest,
			Body: data, Status: persistence.OutboxPending, NextTryAt: now, CreatedAt: now})
	}
	return rows, nil
}

// Append builds the rows of an accepted transition (Rows) and inserts them with the caller's
// transaction, the one that records the transition (persistence.OutboxInsert). It returns how many
// it inserted: 0, without a query, when the definition has no webhook for the transition. After
// the commit, Dispatcher.Wake makes the local dispatcher deliver them without waiting for its poll.
func Append(ctx context.Context, tx *persistence.Tx, p RowsParams) (int, error) {
	rows, err := Rows(p)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	if err := persistence.OutboxInsert(ctx, tx, rows); err != nil {
		return 0, err
	}
	return len(rows), nil
}

func encodeMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return schema.Encode(m).(map[string]any)
}

// Destination is what a URL's circuit breaker is named by: scheme://host:port, the host in lower
// case, the port explicit.
func Destination(rawURL string) (string, error) {
	if err := machine.CheckWebhookURL(rawURL); err != nil {
		return "", err
	}
	u, _ := url.Parse(rawURL)
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return u.Scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), nil
}
