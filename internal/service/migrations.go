package service

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// migrations runs migrations in the background of the service, and stops them on Close: a
// migration stopped that way stays running in the database and is resumed by the next start.
type migrations struct {
	batch       int  // instances per transaction (Options.MigrationBatch)
	workers     int  // groups moved at once (Options.MigrationWorkers)
	perInstance bool // decide and write every instance in Go, even where SQL could move them (tests compare the two)
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// PlanMigration is a dry run of migrating a definition's running instances: nothing changes.
// BadRequestError for versions that cannot be migrated from and to, NotFoundError for a definition
// or version that is not registered.
func (s *Service) PlanMigration(ctx context.Context, name string, req MigrationRequest) (MigrationPlan, error) {
	p, err := s.planMigration(ctx, name, req)
	return p, s.dbError(err)
}

// StartMigration records a migration and runs it in the background; its status is at
// GetMigration. The errors of PlanMigration, and MigrationRunningError while another migration of
// the definition runs.
func (s *Service) StartMigration(ctx context.Context, name string, req MigrationRequest) (MigrationStatus, error) {
	st, err := s.startMigration(ctx, ident.New(s.now()), name, req)
	if err != nil {
		return MigrationStatus{}, s.dbError(err)
	}
	s.runInBackground(st.ID, name)
	return st, nil
}

// ResumeMigration runs the migration of a definition that is running (interrupted, or being run by
// another process: then that one finishes it) in the background, and returns its status.
func (s *Service) ResumeMigration(ctx context.Context, name string) (MigrationStatus, error) {
	row, err := persistence.MigrationGetRunning(ctx, s.db, name)
	if err != nil {
		return MigrationStatus{}, s.dbError(err)
	}
	s.runInBackground(row.ID, name)
	st, err := s.getMigration(ctx, row.ID)
	return st, s.dbError(err)
}

// GetMigration returns a migration's progress and result: NotFoundError when there is no such
// migration.
func (s *Service) GetMigration(ctx context.Context, id string) (MigrationStatus, error) {
	st, err := s.getMigration(ctx, id)
	return st, s.dbError(err)
}

// ListMigrations returns a page of a definition's migrations, newest first, after the migration
// after ("" for the first page).
func (s *Service) ListMigrations(ctx context.Context, name, after string, limit int) (Page[MigrationStatus], error) {
	if len(s.reg.all(name)) == 0 {
		return Page[MigrationStatus]{}, &NotFoundError{What: "definition", Key: name}
	}
	page, err := readPage(pageSpec[persistence.MigrationRow, MigrationStatus]{
		limit: limit,
		fetch: func(last *persistence.MigrationRow, n, maxBytes int) ([]persistence.MigrationRow, error) {
			if last != nil {
				after = last.ID
			}
			return persistence.MigrationList(ctx, s.db, persistence.MigrationListParams{Definition: name, After: after,
				Limit: n, MaxBytes: maxBytes})
		},
		size: persistence.MigrationRow.Bytes,
		item: func(r persistence.MigrationRow) (MigrationStatus, error) { return migrationStatus(r), nil },
		key:  func(m MigrationStatus) string { return m.ID },
	})
	return page, s.dbError(err)
}

func (s *Service) runInBackground(id, name string) {
	s.mig.wg.Go(func() {
		log := s.log.With(slog.String("migration", id), slog.String("definition", name))
		st, err := s.runMigration(s.mig.ctx, id)
		switch {
		case errors.Is(err, errRunElsewhere):
			log.Info("migration run by another process")
			return
		case err != nil:
			if !errors.Is(err, context.Canceled) {
				log.Error("migration failed", slog.Any("error", err))
			}
			return
		}
		// A version registered while this one ran could not start its migration (one runs at a
		// time): start it now.
		if _, row, err := s.reg.get(name, 0); err == nil && row.Version > st.ToVersion {
			if err := s.autoMigrate(s.mig.ctx, name); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("starting the migration to the latest version", slog.Any("error", err))
			}
		}
	})
}

// StartMigrations resumes the migrations a crash interrupted, then starts one for every definition
// whose latest version has policy auto (the default) and has running instances on older versions.
// They run in the background; serve calls it once the definitions are registered.
func (s *Service) StartMigrations(ctx context.Context) error {
	running, err := persistence.MigrationListRunning(ctx, s.db)
	if err != nil {
		return s.dbError(err)
	}
	busy := map[string]bool{}
	for _, r := range running {
		busy[r.Definition] = true
		s.log.Info("resuming migration", slog.String("migration", r.ID), slog.String("definition", r.Definition))
		s.runInBackground(r.ID, r.Definition)
	}
	for _, name := range s.reg.names() {
		if busy[name] {
			continue
		}
		if err := s.autoMigrate(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// autoMigrate starts the migration of a definition's running instances on older versions to its
// latest, when the latest's policy is auto.
func (s *Service) autoMigrate(ctx context.Context, name string) error {
	def, row, err := s.reg.get(name, 0)
	if err != nil {
		return err
	}
	if def.Migrate != nil && def.Migrate.Policy != "auto" {
		return nil
	}
	counts, err := persistence.InstanceCountRunningByVersion(ctx, s.db, name)
	if err != nil {
		return s.dbError(err)
	}
	for _, c := range counts {
		if c.Version < row.Version {
			_, err := s.StartMigration(ctx, name, MigrationRequest{ToVersion: row.Version, auto: true})
			if errors.Is(err, errNothingToMove) { // moved meanwhile, by a migration that has ended
				return nil
			}
			if running := (*MigrationRunningError)(nil); errors.As(err, &running) {
				// It starts when the running one is done (runInBackground).
				s.log.Info("a migration is running: the instances move to the new version after it",
					slog.String("definition", name), slog.String("migration", running.ID), slog.Int("version", row.Version))
				return nil
			}
			return err
		}
	}
	return nil
}

// Close stops the background migrations and waits for them; they resume at the next start. It lets
// the group commit's writer write what is queued and stops it (an event written later is written
// alone). It adds the stats counted in memory to the database (trying for at most 5 s).
func (s *Service) Close() {
	s.mig.cancel()
	s.mig.wg.Wait()
	if s.group != nil {
		s.group.close()
	}
	s.closeStats() // adds the counts held (stats.go)
}
