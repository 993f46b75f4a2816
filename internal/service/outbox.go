package service

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// The dead letters of the outbox: webhook deliveries given up on (package outbox delivers them).

// DeadLetter is a webhook delivery given up on, as GET /v1/outbox/dead shows it.
type DeadLetter struct {
	ID         string     `json:"id" example:"06gztt7dq6c6js8q438gca5qj0" validate:"required"` // the delivery id, sent as Fsmd-Delivery-Id
	Instance   string     `json:"instance" example:"order-1001" validate:"required"`
	Seq        int64      `json:"seq" example:"3" validate:"required"` // of the transition announced, in the instance's history
	Definition string     `json:"definition" example:"order" validate:"required"`
	Version    int        `json:"version" example:"1" validate:"required"`
	Webhook    string     `json:"webhook" example:"billing" validate:"required"` // its name in the definition's notify section
	URL        string     `json:"url" example:"https://billing.example.com/hooks/fsmd" validate:"required"`
	Attempts   int        `json:"attempts" example:"16" validate:"required"`
	LastError  string     `json:"last_error" example:"HTTP 503: upstream unavailable (attempt 16 of 16: dead)" validate:"required"`
	LastTryAt  *time.Time `json:"last_try_at,omitempty" format:"date-time"`          // the last attempt
	CreatedAt  time.Time  `json:"created_at" validate:"required" format:"date-time"` // when the transition was accepted
	// Body is the request body every attempt sent (docs/api.md, "Outbox").
	Body json.RawMessage `json:"body" swaggertype:"object" validate:"required"`
}

// DeadLetterFilter selects dead letters: a page of them (After, Limit), or those to re-drive.
type DeadLetterFilter struct {
	Definition string // "" for any
	Webhook    string // "" for any
	After      string // the last id of the previous page
	Limit      int
}

// RedriveResult is the answer of the re-drive endpoints.
type RedriveResult struct {
	Redriven int64 `json:"redriven" example:"1" validate:"required"` // how many dead letters are pending (or waiting) again
}

// ListDeadLetters returns a page of the dead letters, in id order (the order they were created).
func (s *Service) ListDeadLetters(ctx context.Context, f DeadLetterFilter) (Page[DeadLetter], error) {
	page, err := readPage(pageSpec[persistence.OutboxRow, DeadLetter]{
		limit: f.Limit,
		fetch: func(last *persistence.OutboxRow, n, maxBytes int) ([]persistence.OutboxRow, error) {
			after := f.After
			if last != nil {
				after = last.ID
			}
			return persistence.OutboxListDead(ctx, s.db, persistence.OutboxListParams{Definition: f.Definition,
				Webhook: f.Webhook, After: after, Limit: n, MaxBytes: maxBytes})
		},
		size: persistence.OutboxRow.Bytes,
		item: func(r persistence.OutboxRow) (DeadLetter, error) { return toDeadLetter(r), nil },
		key:  func(d DeadLetter) string { return d.ID },
	})
	return page, s.dbError(err)
}

func toDeadLetter(r persistence.OutboxRow) DeadLetter {
	d := DeadLetter{ID: r.ID, Instance: r.InstanceID, Seq: r.Seq, Definition: r.Definition, Version: r.Version,
		Webhook: r.Webhook, URL: r.URL, Attempts: r.Attempts, LastError: r.LastError, CreatedAt: r.CreatedAt,
		Body: json.RawMessage(r.Body)}
	if !r.LastTryAt.IsZero() {
		at := r.LastTryAt
		d.LastTryAt = &at
	}
	if !json.Valid(d.Body) { // written by fsmd, so never; but an answer must stay JSON
		d.Body, _ = json.Marshal(string(r.Body))
	}
	return d
}

// RedriveDeadLetter gives a dead letter another round of attempts, due now. NotFoundError when no
// dead letter has that id (it was delivered, re-driven already, or never was).
func (s *Service) RedriveDeadLetter(ctx context.Context, id string) (RedriveResult, error) {
	redrive := func(ctx context.Context) error {
		return s.db.WithTx(ctx, func(tx *persistence.Tx) error { return persistence.OutboxRedrive(ctx, tx, id, s.now()) })
	}
	err := redrive(ctx)
	if errors.Is(err, persistence.ErrUnavailable) && !persistence.NeverSent(err) {
		// The COMMIT may have applied without its answer (outcome.go): re-driving again on a new
		// connection settles it, and a dead letter no longer dead then was re-driven.
		if err = s.retryUncertain(ctx, "dead letter", id, err, redrive); errors.Is(err, persistence.ErrNotFound) {
			err = nil
		}
	}
	if errors.Is(err, persistence.ErrNotFound) {
		return RedriveResult{}, &NotFoundError{What: "dead letter", Key: id}
	}
	if err != nil {
		return RedriveResult{}, s.dbError(err)
	}
	return RedriveResult{Redriven: 1}, nil
}

// RedriveDeadLetters re-drives every dead letter of the filter's definition and webhook ("" for
// any; After and Limit are not used).
func (s *Service) RedriveDeadLetters(ctx context.Context, f DeadLetterFilter) (RedriveResult, error) {
	var n int64
	err := s.db.WithTx(ctx, func(tx *persistence.Tx) (err error) {
		n, err = persistence.OutboxRedriveAll(ctx, tx, persistence.OutboxRedriveParams{Definition: f.Definition,
			Webhook: f.Webhook, Now: s.now()})
		return err
	})
	if err != nil {
		// Its count is not read back: after a broken connection it may or may not have applied
		// (re-driving again is safe).
		return RedriveResult{}, s.dbError(unknownIfSent("dead letters", "of the filter", err)) // outcome.go
	}
	return RedriveResult{Redriven: n}, nil
}
