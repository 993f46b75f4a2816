package service

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// RetentionOptions configure RunRetention.
type RetentionOptions struct {
	Every time.Duration // the pause between passes: DefaultRetentionEvery when 0
	Batch int           // instances deleted per transaction: DefaultRetentionBatch when 0
}

// The defaults of RetentionOptions. A batch of 1,000 instances (with, say, ten audit rows each)
// commits in tens of milliseconds: the locks it takes are on final instances, which no event
// changes, and are held that long at most.
const (
	DefaultRetentionEvery = time.Minute
	DefaultRetentionBatch = 1000
)

func (o RetentionOptions) withDefaults() RetentionOptions {
	if o.Every <= 0 {
		o.Every = DefaultRetentionEvery
	}
	if o.Batch <= 0 {
		o.Batch = DefaultRetentionBatch
	}
	return o
}

// RunRetention applies the definitions' retention every period until ctx ends, the first time at
// once: every process runs it (on PostgreSQL they share the batches; a batch skips the instances
// another holds). A failed pass is logged; the next one starts over.
func (s *Service) RunRetention(ctx context.Context, o RetentionOptions) {
	o = o.withDefaults()
	for {
		if _, err := s.ApplyRetention(ctx, o); err != nil && ctx.Err() == nil {
			s.log.Error("applying the retention of final instances", slog.Any("error", err), slog.Duration("retry_in", o.Every))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.Every):
		}
	}
}

// ApplyRetention is one pass of RunRetention: for each definition whose latest version declares
// `retention`, it deletes the final instances that became final more than final_after ago (with
// their history, timers, webhook deliveries and messages: persistence.InstanceDeleteFinal), a
// batch per transaction, until none is left. A child waits for its parent to be deleted first. It
// returns how many instances it deleted, by definition (those it deleted none of are absent), and
// logs each definition's count.
//
// The retention of the latest version decides for every version's instances: a version that
// changes it changes it for the definition, as an operator reading the latest file expects.
func (s *Service) ApplyRetention(ctx context.Context, o RetentionOptions) (map[string]int, error) {
	o = o.withDefaults()
	deleted := map[string]int{}
	for _, name := range s.reg.names() {
		def := s.reg.latest(name)
		if def == nil || def.Retention == nil {
			continue
		}
		start := time.Now()
		n, err := s.retain(ctx, name, s.now().Add(-def.Retention.FinalAfter), o.Batch)
		if n > 0 {
			deleted[name] = n
			s.log.Info("retention deleted final instances", slog.String("definition", name), slog.Int("deleted", n),
				slog.String("final_after", def.Retention.FinalAfter.String()), slog.Duration("took", time.Since(start)))
		}
		if err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// retain deletes the final instances of one definition that became final before before: it reads
// them a page of batch ids at a time (in the order they became final, locking nothing), and
// retentionWorkers transactions at a time delete a page each, counted once committed.
func (s *Service) retain(ctx context.Context, name string, before time.Time, batch int) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		total   atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	fail := func(err error) { errOnce.Do(func() { first = err; cancel() }) }
	pages := make(chan []string)
	workers := 1 // SQLite has one writer
	if s.db.Dialect == persistence.Postgres {
		workers = retentionWorkers
	}
	for range workers {
		wg.Go(func() {
			for ids := range pages {
				var deleted []string
				err := s.db.WithTx(ctx, func(tx *persistence.Tx) error {
					var err error
					deleted, err = persistence.InstanceDeleteFinal(ctx, tx, name, before, ids)
					return err
				})
				if err != nil {
					fail(err)
					continue // drain the pages
				}
				for _, id := range deleted {
					s.cache.drop(id)
				}
				total.Add(int64(len(deleted)))
				s.retentionDeleted(name, len(deleted))
			}
		})
	}
	p := persistence.RetentionPage{Definition: name, Before: before, Limit: batch}
	for ctx.Err() == nil {
		rows, err := persistence.InstanceListFinalDue(ctx, s.db, p)
		if err != nil {
			fail(err)
			break
		}
		if len(rows) == 0 {
			break
		}
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = r.ID
		}
		select {
		case pages <- ids:
		case <-ctx.Done():
		}
		if len(rows) < batch {
			break
		}
		last := rows[len(rows)-1]
		p.AfterAt, p.AfterID = last.At(), last.ID
	}
	close(pages)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return int(total.Load()), first
}

// retentionWorkers is how many batches are deleted at once on PostgreSQL: most of a batch's time is
// the server's (the foreign keys' checks of each deleted instance), so two overlap well.
const retentionWorkers = 2

// retentionDeleted counts n instances of definition deleted by the retention
// (fsmd_retention_deleted_total).
func (s *Service) retentionDeleted(definition string, n int) {
	if m := s.metrics.Load(); m != nil && n > 0 {
		m.retentionDeleted.WithLabelValues(definition).Add(float64(n))
	}
}
