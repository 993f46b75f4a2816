package service

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

// ExportRequest selects what Export writes: the instances of Definition, in State when it is not "",
// changed (updated_at) at or after Since when it is not zero.
type ExportRequest struct {
	Definition string
	State      string
	Since      time.Time
}

// ExportResult counts what Export wrote.
type ExportResult struct {
	Instances int64
	History   int64 // audit rows
}

// ExportInstance and ExportHistory are the two kinds of line Export writes (docs/operations.md,
// "fsmd export"): an instance, as GET /v1/instances lists it, then each row of its history, as
// GET /v1/instances/{id}/history gives it, with the instance's id. A line per history row rather
// than the instance's whole history on one line, so that neither the writer nor a reader ever holds
// more than one row of a long history.
type (
	ExportInstance struct {
		Instance Instance `json:"instance"`
	}
	ExportHistory struct {
		InstanceID string       `json:"instance_id"`
		History    HistoryEntry `json:"history"`
	}
)

// exportPage is how many instances Export reads at a time (and at most MaxPageBytes of them).
const exportPage = 100

// Export writes the instances req selects, in id order, each followed by its history, as NDJSON
// (one JSON object a line) to w. It reads a page of instances at a time and each history a page at
// a time (StreamHistory), so that its memory does not grow with what it writes. An instance deleted
// while the export runs is left out or has a shorter history; one created or changed meanwhile may
// or may not be in it. NotFoundError for an unknown definition, BadRequestError for a state no
// version of it declares.
func (s *Service) Export(ctx context.Context, req ExportRequest, w io.Writer) (ExportResult, error) {
	var res ExportResult
	if err := s.checkExport(req); err != nil {
		return res, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	p := persistence.InstanceExportParams{Definition: req.Definition, State: req.State, Since: req.Since,
		Limit: exportPage, MaxBytes: MaxPageBytes}
	for {
		rows, err := persistence.InstanceListExport(ctx, s.db, p)
		if err != nil {
			return res, s.dbError(err)
		}
		if len(rows) == 0 {
			return res, bw.Flush()
		}
		for i, row := range rows {
			rows[i] = persistence.InstanceRow{}
			def, _, err := s.reg.get(row.Definition, row.Version)
			if err != nil {
				return res, err
			}
			inst, err := toInstance(def, row)
			if err != nil {
				return res, err
			}
			if err := enc.Encode(ExportInstance{Instance: inst}); err != nil {
				return res, fmt.Errorf("writing instance %q: %w", row.ID, err)
			}
			res.Instances++
			err = s.streamHistory(ctx, row.ID, 0, func(e HistoryEntry) error {
				res.History++
				return enc.Encode(ExportHistory{InstanceID: row.ID, History: e})
			})
			if err != nil {
				return res, fmt.Errorf("writing the history of instance %q: %w", row.ID, err)
			}
			p.AfterID = row.ID
		}
	}
}

// checkExport refuses an export of a definition that does not exist, or of a state that no
// version of it declares (a typo would export nothing, silently).
func (s *Service) checkExport(req ExportRequest) error {
	if _, _, err := s.reg.get(req.Definition, 0); err != nil {
		return err
	}
	if req.State == "" {
		return nil
	}
	for _, row := range s.reg.all(req.Definition) {
		if def, _, err := s.reg.get(req.Definition, row.Version); err == nil && def.States[req.State] != nil {
			return nil
		}
	}
	return &BadRequestError{fmt.Sprintf("no version of definition %q has a state %q", req.Definition, req.State)}
}
