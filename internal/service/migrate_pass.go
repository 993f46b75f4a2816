package service

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/fsmd-io/fsmd/internal/audit"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// How a run's groups are moved: the groups of a version that move in SQL go together, in passes over
// the version's running instances in id order (a batch takes a stretch of the table whatever the
// states in it); the groups decided in Go go one by one. Up to migrationWorkers of these run at
// once, each batch a transaction on a connection of its own, the largest first.

// work is what one worker moves at a time: a pass over groups of one version that move in SQL, or
// one group decided in Go.
type work struct {
	groups []group
	n      int64
}

// moveGroups counts the stranded groups and moves the others. The first error stops the other
// workers (their batches in flight roll back) and is returned.
func (r *migrationRun) moveGroups(ctx context.Context, groups []group) error {
	workers := r.s.migrationWorkers()
	var items []work
	inSQL := map[int][]group{}
	for _, g := range groups {
		switch g.how {
		case stranded:
			if err := r.agg.addStranded(ctx, r.s.db, r.start.Definition, g); err != nil {
				return err
			}
		case evaluate:
			items = append(items, work{[]group{g}, g.n})
		default:
			inSQL[g.version] = append(inSQL[g.version], g)
		}
	}
	for _, v := range slices.Sorted(maps.Keys(inSQL)) {
		items = append(items, passes(inSQL[v], workers)...)
	}
	slices.SortStableFunc(items, func(a, b work) int { return cmp.Compare(b.n, a.n) })

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		queue = make(chan work)
	)
	for range min(workers, len(items)) {
		wg.Go(func() {
			for w := range queue {
				var err error
				if w.groups[0].how == evaluate {
					err = r.evaluate(wctx, w.groups[0], "")
				} else {
					err = r.inSQL(wctx, w.groups)
				}
				if err != nil {
					once.Do(func() { first = err })
					cancel()
				}
			}
		})
	}
feed:
	for _, w := range items {
		select {
		case queue <- w:
		case <-wctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if first == nil {
		first = ctx.Err() // stopped before a worker took it up
	}
	return first
}

// passes splits the groups of one version that move in SQL into at most k passes of about equal
// size: each group, the largest first, into the smallest pass so far.
func passes(groups []group, k int) []work {
	groups = slices.Clone(groups)
	slices.SortStableFunc(groups, func(a, b group) int { return cmp.Compare(b.n, a.n) })
	out := make([]work, min(k, len(groups)))
	for _, g := range groups {
		i := 0
		for j := range out {
			if out[j].n < out[i].n {
				i = j
			}
		}
		out[i].groups, out[i].n = append(out[i].groups, g), out[i].n+g.n
	}
	return out
}

// inSQL moves groups of one version whose instances all go to one state each, with a context SQL
// rewrites (the same for all: one Mapping per version), batch by batch, none of them read into
// Go; then the few SQL leaves (contexts of another shape, written outside fsmd), in Go, from the
// batch where the first was left.
func (r *migrationRun) inSQL(ctx context.Context, groups []group) error {
	rw := groups[0].mp.Rewrite()
	states := make([]persistence.StateMove, len(groups))
	byState := make(map[string]group, len(groups))
	for i, g := range groups {
		timers := make([]persistence.After, len(g.timers))
		for j, d := range g.timers {
			timers[j] = persistence.After{Event: d.Event, After: d.After}
		}
		states[i] = persistence.StateMove{From: g.state, To: g.to, Final: g.mp.To.Final(g.to), Timers: timers}
		byState[g.state] = g
	}
	mv := persistence.MigrationBatch{FromVersion: groups[0].version, ToVersion: r.start.ToVersion, MigrationID: r.start.ID, Event: migrationEvent}
	sel := persistence.MoveStates{Definition: r.start.Definition, Limit: r.s.migrationBatch(), States: states,
		Defaults: rw.Defaults, Drop: rw.Drop, Shape: contextShape(rw)}
	var (
		left      bool   // a batch left an instance
		leftAfter string // the cursor before the first such batch
	)
	for {
		var res persistence.MovedStates
		n, err := r.commit(ctx, func(tx *persistence.Tx, batch *tally) (int, error) {
			mv.At = r.s.now()
			var err error
			if res, err = audit.AppendMovesInSQL(ctx, tx, mv, sel); err != nil {
				return 0, err
			}
			for state, k := range res.Moved {
				g := byState[state]
				batch.addMoves(g, g.to, k)
			}
			return res.N, nil
		})
		if err != nil {
			return err
		}
		if !left && res.Skipped() > 0 {
			left, leftAfter = true, sel.After
		}
		if n < sel.Limit {
			break
		}
		sel.After = res.Last
	}
	if !left {
		return nil
	}
	for _, g := range groups {
		if err := r.evaluate(ctx, g, leftAfter); err != nil {
			return err
		}
	}
	return nil
}
