package service

import (
	"context"

	"github.com/fsmd-io/fsmd/internal/audit"
)

// historyStreamPage is how many audit rows StreamHistory reads at a time: with MaxPageBytes, it
// bounds the memory of a stream whatever the history's length.
const historyStreamPage = 100

// StreamHistory calls each with every row of an instance's audit log whose seq is after afterSeq,
// oldest first, as History gives them: GET /v1/instances/{id}/history?format=ndjson and fsmd export.
// The rows are read a page at a time (keyset on seq, at most historyStreamPage rows and about
// MaxPageBytes of stored JSON), each page its own query, so that memory holds one page however
// long the history is, and no transaction stays open while the caller writes. NotFoundError, before
// any call, when the instance does not exist; the first error of each ends the stream.
func (s *Service) StreamHistory(ctx context.Context, id string, afterSeq int64, each func(HistoryEntry) error) error {
	if _, err := s.instance(ctx, s.db, id); err != nil {
		return err
	}
	return s.streamHistory(ctx, id, afterSeq, each)
}

func (s *Service) streamHistory(ctx context.Context, id string, after int64, each func(HistoryEntry) error) error {
	for {
		rows, err := audit.History(ctx, s.db, id, after, historyStreamPage, MaxPageBytes)
		if err != nil {
			return s.dbError(err)
		}
		if len(rows) == 0 {
			return nil
		}
		for i, r := range rows {
			rows[i] = audit.Row{} // the stored bytes are not needed past here
			e, err := toHistory(r)
			if err != nil {
				return err
			}
			if err := each(e); err != nil {
				return err
			}
			after = r.Seq
		}
	}
}
