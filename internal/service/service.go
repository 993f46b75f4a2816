package service

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmd-io/fsmd/internal/code"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// Service serves instances and definitions over a database.
type Service struct {
	db    *persistence.DB
	reg   *registry
	cache *cache     // of instance rows, for the PostgreSQL event path (empty on SQLite)
	turns turns      // the events of an instance take turns (SendEvent)
	group *committer // the events' group commit (group.go); nil when off
	mig   migrations
	now   func() time.Time
	log   *slog.Logger
	ready atomic.Bool

	reloading sync.Mutex // one Reload at a time

	limits machine.Limits // bound the evaluation of an event's expressions: their time budget

	outboxWake  atomic.Pointer[func()]         // SetOutboxWake's
	messageWake wake                           // RunMessages waits on it as well as on its poll (messages.go)
	bulkWake    wake                           // RunBulks too: a bulk was started (bulk.go)
	metrics     atomic.Pointer[serviceMetrics] // RegisterMetrics's; nil before

	stats statsBuffer // transitions and refusals counted, not yet in the database (stats.go)
}

// SetOutboxWake has f called after each commit that wrote outbox rows (the local dispatcher's Wake,
// so that it delivers them without waiting for its poll).
func (s *Service) SetOutboxWake(f func()) { s.outboxWake.Store(&f) }

func (s *Service) wakeOutbox() {
	if f := s.outboxWake.Load(); f != nil {
		(*f)()
	}
}

// Options configure a Service.
type Options struct {
	Now    func() time.Time // the clock; time.Now by default
	Logger *slog.Logger
	// CacheBytes bounds the instance cache of the event path: 0 is DefaultCacheBytes, a
	// negative value turns it off.
	CacheBytes int
	// MigrationBatch is how many instances a migration moves per transaction: 1000 when 0.
	MigrationBatch int
	// MigrationWorkers is how many groups (a version and state) a migration moves at once on
	// PostgreSQL, each batch on a connection of its own: 2 when 0. SQLite takes one writer at a time:
	// 1 there.
	MigrationWorkers int
	// ExprBudget is the time the expressions of one event (guards, set, timer at) may take
	// together: guards.DefaultBudget (100 ms) when 0.
	ExprBudget time.Duration
	// GroupCommit is how many events written at the same time for different instances may share
	// one commit (group.go); 1 or less turns group commit off (each event is its own commit). 0 is
	// the database's default: DefaultGroupCommit on SQLite, off on PostgreSQL, where it measured
	// slower (bench/README.md, "Group commit").
	GroupCommit int
}

// New makes a service over db. Register loads the definitions before it serves.
func New(db *persistence.DB, o Options) *Service {
	s := &Service{db: db, reg: newRegistry(), now: o.Now, log: o.Logger, limits: machine.Limits{Budget: o.ExprBudget}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	// The cache saves an event's read (on PostgreSQL one round trip of two).
	cacheBytes := o.CacheBytes
	if cacheBytes == 0 {
		cacheBytes = DefaultCacheBytes
	}
	s.cache = newCache(cacheBytes)
	clock := s.now
	// One `now` per transaction, in UTC and to the microsecond that PostgreSQL keeps, so that what is
	// returned is what is stored.
	s.now = func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	s.mig.batch, s.mig.workers = o.MigrationBatch, o.MigrationWorkers
	if n := cmp.Or(o.GroupCommit, defaultGroupCommit(db.Dialect)); n > 1 {
		s.group = newCommitter(db, n, groupWriters(db.Dialect))
	}
	s.mig.ctx, s.mig.cancel = context.WithCancel(context.Background())
	return s
}

// Ready reports whether the service can serve: the database answers and definitions are loaded.
func (s *Service) Ready(ctx context.Context) error {
	if !s.ready.Load() {
		return &UnavailableError{Err: errors.New("definitions are not loaded yet")}
	}
	if err := s.db.Ping(ctx); err != nil {
		return &UnavailableError{Err: err}
	}
	return nil
}

// UnavailableError: the database cannot be reached (503); the request changed nothing.
type UnavailableError struct {
	Err error
}

func (e *UnavailableError) Error() string { return "the database is unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Code is fsmd's own error code for it.
func (e *UnavailableError) Code() string { return code.Unavailable }

// dbError turns a database error the caller did not expect into what the API says: a database that
// cannot be reached is 503 (the client may retry; with an Idempotency-Key safely), text it cannot
// store is the client's, anything else is fsmd's own fault.
func (s *Service) dbError(err error) error {
	var coded interface{ Code() string }
	switch {
	case err == nil || errors.As(err, &coded) || errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, persistence.ErrInvalidText):
		return &BadRequestError{"a value holds text the database cannot store (a NUL character or invalid UTF-8)"}
	case errors.Is(err, persistence.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &UnavailableError{Err: err}
	}
	return err // unexpected: the server logs it and answers 500
}
