package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// When the conditional write of an event does not say plainly whether it applied, the event path
// finds out before it answers (event.go), so that 503 unavailable always means "nothing was
// written":
//
//   - the database went away during the write (the one statement on PostgreSQL is its own commit:
//     the server may have committed it before the connection broke), or
//   - the write found the instance moved on, and the move may be this event's own write (database/sql
//     sends a statement again on a new connection when the first one broke).
//
// The transition the event would have written is at seq = the revision decided on + 1, with the
// request's id in its audit row: that row says whether the event applied. After a broken connection
// the instance is first locked (SELECT ... FOR UPDATE, in a transaction of its own on a new
// connection): a statement still running on the old connection holds that lock until it commits or
// rolls back, so what the lock then shows is final.

// OutcomeUnknownError: the write of an event (or a creation, an operator's change, a definition's
// version, the start of a bulk or a migration) may or may not have applied, and fsmd could not find
// out in time (503 outcome_unknown). An event sent again with the same Idempotency-Key (a creation:
// the same id; a definition: the same content) is safe; a bulk or a migration is read back before
// it is started again.
type OutcomeUnknownError struct {
	What       string // "instance" (or ""), "definition", "bulk", "migration", "dead letter(s)", "dead message"
	InstanceID string // the instance's id, or the definition's name, the bulk's id, the migration's
	Err        error
}

func (e *OutcomeUnknownError) Error() string {
	what, advice := e.What, "send it again with the same Idempotency-Key to be sure"
	switch what {
	case "", "instance":
		what = "instance"
	case "definition":
		advice = "put it again: the same content is stored once"
	case "dead letter", "dead letters", "dead message":
		advice = "list the dead ones: one no longer listed was re-driven (re-driving again is safe)"
	default:
		advice = "look for it (GET) before starting it again"
	}
	return fmt.Sprintf("the write of %s %s may or may not have applied (the database connection broke during it, "+
		"and the outcome could not be read back: %v); %s", what, e.InstanceID, e.Err, advice)
}
func (e *OutcomeUnknownError) Unwrap() error { return e.Err }

// Code is the error code.
func (e *OutcomeUnknownError) Code() string { return code.OutcomeUnknown }

// resolveWindow bounds how long an event's write is resolved after a broken connection.
const resolveWindow = 5 * time.Second

// outcome is what became of a write whose answer was lost: applied (the audit row, ours), or not.
type outcome struct {
	applied bool
	row     persistence.TransitionRow
}

// ownTransition reports whether the transition seq of the instance is the one req wrote, by the
// request id in its audit row (an event without one cannot be told from another's: never own).
func (s *Service) ownTransition(ctx context.Context, ex persistence.Executor, req SendEvent, seq int64) (outcome, error) {
	if req.RequestID == "" {
		return outcome{}, nil
	}
	row, err := persistence.TransitionGet(ctx, ex, req.InstanceID, seq)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return outcome{}, nil
	case err != nil:
		return outcome{}, err
	}
	return outcome{applied: row.RequestID == req.RequestID && row.Event == req.Event, row: row}, nil
}

// resolve finds out, after a broken connection, whether req's write of transition seq applied:
// under the instance's lock, so that the answer cannot change afterwards. It tries again while
// the database is out of reach, up to resolveWindow; then OutcomeUnknownError.
func (s *Service) resolve(ctx context.Context, req SendEvent, seq int64, cause error) (outcome, error) {
	var out outcome
	err := s.retryUncertain(ctx, "instance", req.InstanceID, cause, func(rctx context.Context) error {
		return s.db.WithTx(rctx, func(tx *persistence.Tx) error {
			if _, err := persistence.InstanceGetForUpdate(rctx, tx, req.InstanceID); err != nil {
				return err
			}
			var err error
			out, err = s.ownTransition(rctx, tx, req, seq)
			return err
		})
	})
	var unknown *OutcomeUnknownError
	if err != nil && !errors.As(err, &unknown) { // any other failure leaves the outcome unknown too
		err = &OutcomeUnknownError{InstanceID: req.InstanceID, Err: errors.Join(cause, err)}
	}
	return out, err
}

// settleChange is the outcome of an operator's change of an instance (a suspend, an assignment...),
// written in a transaction with its audit row at seq (0: the transaction failed before writing it)
// under the event name and the request id, whose transaction ended with err. When the connection
// broke once the change was sent, its COMMIT may have applied without the answer coming back: the
// audit row says (resolve). Applied, nil: it is answered as written. Not, err: nothing was
// written. Unreadable, OutcomeUnknownError.
func (s *Service) settleChange(ctx context.Context, id, event, requestID string, seq int64, err error) error {
	if seq == 0 || !errors.Is(err, persistence.ErrUnavailable) || persistence.NeverSent(err) {
		return err
	}
	out, rerr := s.resolve(ctx, SendEvent{InstanceID: id, Event: event, RequestID: requestID}, seq, err)
	switch {
	case rerr != nil:
		return rerr
	case out.applied:
		return nil
	}
	return err
}

// unknownIfSent is err, the failure of a write that is safe to send again but whose outcome is not
// read back (a re-drive), as OutcomeUnknownError when the connection broke once it may have been
// sent: it may have applied, and 503 unavailable would say that nothing was written.
func unknownIfSent(what, id string, err error) error {
	if errors.Is(err, persistence.ErrUnavailable) && !persistence.NeverSent(err) {
		return &OutcomeUnknownError{What: what, InstanceID: id, Err: err}
	}
	return err
}

// settled runs write, and when its connection broke once it may have been sent (its COMMIT may have
// applied without the answer coming back), runs it again on a new connection (retryUncertain),
// which settles it: write must be safe to repeat.
func (s *Service) settled(ctx context.Context, what, id string, write func(context.Context) error) error {
	err := write(ctx)
	if errors.Is(err, persistence.ErrUnavailable) && !persistence.NeverSent(err) {
		err = s.retryUncertain(ctx, what, id, err, write)
	}
	return err
}

// eventOutcome finds out whether the write of req at seq applied after it failed with err, which
// says neither: a conflict (the instance moved on, maybe by this write sent again on a new
// connection: ownTransition) or a connection broken once it was sent (resolve). Other errors are
// returned as they are.
func (s *Service) eventOutcome(ctx context.Context, req SendEvent, seq int64, err error) (outcome, error) {
	var out outcome
	if errors.Is(err, persistence.ErrConflict) {
		out, err = s.ownTransition(ctx, s.db, req, seq)
	}
	if errors.Is(err, persistence.ErrUnavailable) && !persistence.NeverSent(err) {
		out, err = s.resolve(ctx, req, seq, err)
	}
	return out, err
}

// retryUncertain runs write (again) after a connection broke in an uncertain way, while the
// database stays out of reach, up to resolveWindow; then OutcomeUnknownError. write must be safe to
// repeat: a read, or a write keyed so that a repeat of an applied one is a conflict (ErrConflict).
func (s *Service) retryUncertain(ctx context.Context, what, id string, cause error, write func(context.Context) error) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resolveWindow)
	defer cancel()
	for try := 1; ; try++ {
		err := write(rctx)
		if !errors.Is(err, persistence.ErrUnavailable) {
			return err
		}
		if rctx.Err() != nil {
			return &OutcomeUnknownError{What: what, InstanceID: id, Err: errors.Join(cause, err)}
		}
		if err := pause(rctx, try); err != nil {
			return &OutcomeUnknownError{What: what, InstanceID: id, Err: errors.Join(cause, err)}
		}
	}
}
