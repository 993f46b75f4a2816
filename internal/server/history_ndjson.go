package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fsmd-io/fsmd/internal/service"
)

// ndjsonType is the content type of GET /v1/instances/{id}/history?format=ndjson: one JSON object
// a line (https://github.com/ndjson/ndjson-spec).
const ndjsonType = "application/x-ndjson"

// historyNDJSON streams the whole history of an instance after seq after, one HistoryEntry a line,
// as the service reads it a page at a time: the answer may be any size, the memory it takes is a
// page. The status is sent before the first row: a failure after it cannot be a problem answer,
// so it is logged and the connection is cut (http.ErrAbortHandler: the chunked body ends without
// its last chunk), which a client sees as a broken answer rather than a shorter history.
func (s *server) historyNDJSON(c echo.Context, id string, after int64) error {
	ctx := c.Request().Context()
	w := c.Response()
	started := false
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	rows, unflushed := 0, 0
	err := s.svc.StreamHistory(ctx, id, after, func(e service.HistoryEntry) error {
		if !started {
			start(w)
			started = true
		}
		line.Reset()
		if err := enc.Encode(e); err != nil {
			return err
		}
		if _, err := w.Write(line.Bytes()); err != nil {
			return err
		}
		rows++
		if unflushed += line.Len(); rows%100 == 0 || unflushed > 1<<20 { // about a page: the client gets rows as they are read
			unflushed = 0
			w.Flush()
			// The server's write timeout bounds a whole answer; a long stream may take longer, so
			// it bounds the time between two pages instead (an error: a writer without deadlines).
			_ = http.NewResponseController(w.Writer).SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		}
		return nil
	})
	switch {
	case err == nil && !started:
		start(w) // an empty history: an empty body
	case err != nil && !started:
		return err // nothing sent yet: a problem answer
	case err != nil:
		if ctx.Err() == nil {
			s.log.Error("streaming a history failed after its answer began: the connection is cut",
				slog.String("instance", id), slog.Int("rows_sent", rows), slog.Any("error", err))
		}
		panic(http.ErrAbortHandler)
	}
	w.Flush()
	return nil
}

// streamWriteTimeout is how long the writing of one page of a stream may take.
const streamWriteTimeout = time.Minute

// start sends the status and headers of an NDJSON answer.
func start(w *echo.Response) {
	w.Header().Set(echo.HeaderContentType, ndjsonType)
	w.WriteHeader(http.StatusOK)
}
