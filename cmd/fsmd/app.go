package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
	"github.com/fsmd-io/fsmd/internal/service"
)

// app is the service a command works with, open over its database.
type app struct {
	db  *persistence.DB
	svc *service.Service
	set *machine.Set // the definitions loaded from the folder; none with storedOnly
}

// folderUse is what a command does with the definitions folder when it opens the service.
type folderUse int

const (
	// storedOnly registers nothing: the service knows the versions stored (fsmd stats).
	storedOnly folderUse = iota
	// registerFolder registers the folder's new versions; an error in it (an empty folder is one)
	// refuses, its warnings are not printed (fsmd migrate).
	registerFolder
	// serveFolder registers as registerFolder does, but an empty folder only warns (PUT
	// /v1/definitions adds definitions) and the warnings are printed too (fsmd serve).
	serveFolder
)

// appConfig is what openService needs.
type appConfig struct {
	DatabaseURL string
	Definitions string // the folder of definition files (not read with storedOnly)
	Folder      folderUse
	Logger      *slog.Logger  // the service's log; discarded when nil
	ExprBudget  time.Duration // the service's expression budget; its default when 0
	GroupCommit int           // the service's group commit (service.Options.GroupCommit); its default when 0
	Diagnostics io.Writer     // where the definitions' problems are printed, as fsmd validate does
}

// openService is every command's start: load the definitions (checked before the database is
// touched, so that a broken folder changes nothing), open the database, make the service and
// register the definitions. Close releases what it opened.
func openService(ctx context.Context, c appConfig) (*app, error) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	set := &machine.Set{ByName: map[string]*machine.Definition{}} // registers nothing: the stored versions load
	if c.Folder != storedOnly {
		var err error
		if set, err = loadDefinitions(c, log); err != nil {
			return nil, err
		}
	}
	db, err := persistence.Open(ctx, c.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", persistence.Redact(c.DatabaseURL), err)
	}
	if db.Distributed {
		log.Info("the database has the citus extension: fsmd's tables are now distributed by instance (docs/scale-out.md)")
	}
	logEventRoutes(db, log)
	a := &app{db: db, svc: service.New(db, service.Options{Logger: log, ExprBudget: c.ExprBudget, GroupCommit: c.GroupCommit}), set: set}
	if err := a.svc.Register(ctx, set); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// logEventRoutes says, on Citus, where events go: straight to the workers that hold their
// instances, or through the coordinator for the workers this process cannot reach.
func logEventRoutes(db *persistence.DB, log *slog.Logger) {
	nodes, err := db.EventRoutes()
	if err != nil {
		log.Warn("Citus: every event goes through the coordinator", "reason", err)
		return
	}
	var direct []string
	for _, n := range nodes {
		if n.Err != nil {
			log.Warn("Citus: a worker does not answer from here; its instances' events go through the coordinator", "worker", n.Addr, "error", n.Err)
		} else {
			direct = append(direct, n.Addr)
		}
	}
	if len(direct) > 0 {
		log.Info("Citus: events go straight to the workers that hold their instances", "nodes", strings.Join(direct, ", "))
	}
}

// Close stops the service's background work, then closes the database it needs.
func (a *app) Close() {
	a.svc.Close()
	a.db.Close()
}

// loadDefinitions loads and checks the folder, printing its problems on c.Diagnostics.
func loadDefinitions(c appConfig, log *slog.Logger) (*machine.Set, error) {
	set, diags, err := machine.Load(c.Definitions)
	serving := c.Folder == serveFolder
	switch {
	case err != nil:
		return nil, fmt.Errorf("definitions: %w", err)
	case serving && len(set.Files) == 0: // no error for a service: PUT /v1/definitions adds some
		log.Warn("no definition files; add definitions with PUT /v1/definitions/{name}", "definitions", c.Definitions)
	case diags.Errors() > 0 && serving:
		diags.WriteText(c.Diagnostics)
		return nil, fmt.Errorf("%d errors in the definitions in %s: fix them and start again", diags.Errors(), c.Definitions)
	case diags.Errors() > 0:
		diags.WriteText(c.Diagnostics)
		return nil, fmt.Errorf("%d errors in the definitions in %s", diags.Errors(), c.Definitions)
	case serving && len(diags) > 0:
		diags.WriteText(c.Diagnostics) // warnings: worth reading, no reason to refuse
	}
	return set, nil
}
