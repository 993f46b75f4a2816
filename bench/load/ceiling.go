package main

// The ceiling (issue 18): how many of fsmd's own per-event writes PostgreSQL commits per second
// with the same clients, measured by pgbench replaying the statement fsmd sends per event (the
// conditional update of the instance and its audit row, one statement and its own transaction: see
// persistence.InstanceAdvance) on fsmd's schema, on the instances the run created, in fsmd's
// database after fsmd's phase.
//
// What makes the replay faithful:
//
//   - the statement's text is persistence.AdvanceStatementPostgres's, the code's own, and its
//     arguments are those of a real event: the last audit row of an instance the load deposited
//     to (its payload, contexts, guards, request id and hash) and that instance's row;
//   - each client owns a slice of the instances (client c those numbered c, c+C, c+2C, ...) and
//     takes them in turn, so that the revision condition holds: every statement updates one row
//     and inserts one audit row, at the next seq (checked afterwards from the revisions);
//   - the id, the revision read and the new revision (the audit row's seq, and with
//     -idempotency-key the event's key, which must differ from event to event) are pgbench variables,
//     the other arguments constants passed with -D; all go as parameters of a prepared statement
//     (-M prepared), as lib/pq sends them; NULL arguments are written NULL, empty texts '' (pgbench
//     -D takes no empty value);
//   - updated_at changes on every update, as fsmd's "now" does (no index holds it since migration
//     015, but the replay stays faithful whatever the schema). pgbench has no text variables, so
//     each row alternates between two times from one of its updates to the next (a \if on the
//     row's round).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/dbtest"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// The sentinels that mark, in the statement's arguments, the ones a replay varies.
const (
	sentinelID     = "\x00ceiling-instance"
	sentinelKey    = "\x00ceiling-key" // the event's Idempotency-Key (-idempotency-key)
	sentinelExpect = int64(-1_000_001) // the revision read
	sentinelRev    = int64(-1_000_002) // the new revision and the audit row's seq
)

// sentinelTime marks the event's time (the instance's updated_at, the audit row's at).
var sentinelTime = time.Date(1901, 2, 3, 4, 5, 6, 0, time.UTC)

// ceilingScript is the pgbench script of the ceiling and the constants it needs (-D name=value);
// pgbench also needs n=0 (each client's count of its transactions) and base (the revision every
// instance is at when it starts), set by runCeilingPhase.
type ceilingScript struct {
	script string
	consts []string // name=value
	uses   map[string]int
}

// Times the replay writes: the two it alternates between, and from the third on those every
// instance is left at between two pgbench runs (distinct, so that every update changes updated_at).
var (
	ceilingTimeA    = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ceilingTimeB    = ceilingTimeA.Add(time.Second)
	ceilingTimeRest = ceilingTimeA.Add(2 * time.Second)
)

var dollarParam = regexp.MustCompile(`\$([0-9]+)`)

// buildCeilingScript makes the script that replays, for clients clients over instances instances
// (named by instanceID), the write of the event whose audit row is last, on the instance inst.
func buildCeilingScript(inst persistence.InstanceRow, last persistence.TransitionRow, clients, instances int) (ceilingScript, error) {
	if clients < 1 || instances < clients {
		return ceilingScript{}, fmt.Errorf("the ceiling needs at least one instance per client: %d instances, %d clients", instances, clients)
	}
	// The update of a deposit, a stay: fsmd's updateOf (internal/service/write.go) with no task,
	// timers, children, webhooks or messages.
	u := persistence.InstanceUpdateParams{ID: sentinelID, ExpectRevision: sentinelExpect, Version: inst.Version,
		State: last.To, Context: last.ContextAfter, Revision: sentinelRev, Final: inst.Final,
		UpdatedAt: sentinelTime, EnteredAt: inst.EnteredAt}
	r := last
	r.InstanceID, r.Seq, r.At = sentinelID, sentinelRev, sentinelTime
	if r.IdempotencyKey != "" {
		// Each event's key is its own (unique per instance): the replay's is the new revision,
		// as unique, since pgbench has no text variables.
		r.IdempotencyKey = sentinelKey
	}
	query, args := persistence.AdvanceStatementPostgres(u, r)
	// Its whitespace is folded below, and pgbench reads ":name" and ";" itself: none of these may
	// be a literal of the statement's own (a cast's "::" is not a variable to pgbench).
	if strings.ContainsAny(strings.ReplaceAll(query, "::", ""), `'"\;:`) {
		return ceilingScript{}, errors.New("fsmd's statement has a quote, a backslash, a ; or a : of its own: the ceiling's script cannot carry it as it is")
	}
	s := ceilingScript{uses: map[string]int{}}
	names := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case nil:
			names[i] = "NULL"
			continue
		case string:
			switch v {
			case sentinelID:
				names[i] = ":id"
			case sentinelKey:
				names[i] = ":rev"
			}
		case int64:
			switch v {
			case sentinelExpect:
				names[i] = ":expect"
			case sentinelRev:
				names[i] = ":rev"
			}
		case time.Time:
			if v.Equal(sentinelTime) {
				names[i] = ":ts"
			}
		}
		if names[i] != "" {
			s.uses[names[i]]++
			continue
		}
		text, err := argText(a)
		if err != nil {
			return ceilingScript{}, fmt.Errorf("argument $%d: %w", i+1, err)
		}
		if text == "" { // pgbench -D takes no empty value: the empty text is written in the statement
			names[i] = "''"
			continue
		}
		names[i] = ":a" + strconv.Itoa(i+1)
		s.consts = append(s.consts, "a"+strconv.Itoa(i+1)+"="+text)
	}
	for _, name := range []string{":id", ":expect", ":rev", ":ts"} {
		if s.uses[name] == 0 {
			return ceilingScript{}, fmt.Errorf("fsmd's statement does not take %s as an argument: the ceiling cannot replay it", name[1:])
		}
	}
	var bad error
	stmt := dollarParam.ReplaceAllStringFunc(strings.Join(strings.Fields(query), " "), func(m string) string {
		n, err := strconv.Atoi(m[1:])
		if err != nil || n < 1 || n > len(names) {
			bad = fmt.Errorf("fsmd's statement has %s but %d arguments", m, len(names))
			return m
		}
		return names[n-1]
	})
	if bad != nil {
		return ceilingScript{}, bad
	}
	m := instances / clients // each client's slice
	var b strings.Builder
	fmt.Fprintf(&b, "\\set n :n + 1\n")
	fmt.Fprintf(&b, "\\set slot (:n - 1) %% %d\n", m)
	fmt.Fprintf(&b, "\\set round (:n - 1) / %d\n", m)
	fmt.Fprintf(&b, "\\set id %d + :client_id + %d * :slot\n", firstInstance, clients)
	fmt.Fprintf(&b, "\\set expect :base + :round\n")
	fmt.Fprintf(&b, "\\set rev :expect + 1\n")
	fmt.Fprintf(&b, "\\if :round %% 2 = 0\n%s;\n\\else\n%s;\n\\endif\n",
		strings.ReplaceAll(stmt, ":ts", ":tsa"), strings.ReplaceAll(stmt, ":ts", ":tsb"))
	s.script = b.String()
	s.consts = append(s.consts, "tsa="+pgTime(ceilingTimeA), "tsb="+pgTime(ceilingTimeB))
	return s, nil
}

// argText is an argument as lib/pq sends it, as text.
func argText(a any) (string, error) {
	switch v := a.(type) {
	case string:
		if strings.ContainsAny(v, "\x00\n\r") {
			return "", fmt.Errorf("%q cannot go in a pgbench -D", v)
		}
		return v, nil
	case []byte:
		return argText(string(v))
	case int:
		return strconv.Itoa(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case bool:
		return strconv.FormatBool(v), nil
	case time.Time:
		return pgTime(v), nil
	}
	return "", fmt.Errorf("an argument of type %T, which the ceiling does not know how to pass", a)
}

// pgTime is t as PostgreSQL reads a timestamptz, to the microsecond.
func pgTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999Z07:00") }

// ceilingTemplate reads, in fsmd's database, the instance and the audit row the ceiling replays:
// the first instance the load deposited to, and its last audit row.
func ceilingTemplate(ctx context.Context, db *persistence.DB) (persistence.InstanceRow, persistence.TransitionRow, error) {
	var id string
	err := db.X.QueryRowxContext(ctx, `SELECT id FROM instances WHERE definition = 'account' AND revision > 0 ORDER BY id LIMIT 1`).Scan(&id)
	if err != nil {
		return persistence.InstanceRow{}, persistence.TransitionRow{}, fmt.Errorf("an instance the load deposited to: %w", err)
	}
	inst, err := persistence.InstanceGet(ctx, db, id)
	if err != nil {
		return inst, persistence.TransitionRow{}, err
	}
	last, err := persistence.TransitionGet(ctx, db, id, inst.Revision)
	return inst, last, err
}

// runCeiling is the ceiling's phase, on fsmd's database dbName (at dbURL) once fsmd has stopped:
// the script, a warm-up, then the measured run; each checked (every statement wrote its event).
func (b *bench) runCeiling(ctx context.Context, pg *dbtest.Server, bin, dbName, dbURL string) (pgbenchResult, error) {
	db, err := persistence.Open(ctx, dbURL)
	if err != nil {
		return pgbenchResult{}, err
	}
	defer db.Close()
	inst, last, err := ceilingTemplate(ctx, db)
	if err != nil {
		return pgbenchResult{}, err
	}
	s, err := buildCeilingScript(inst, last, b.c.Clients, b.c.Instances)
	if err != nil {
		return pgbenchResult{}, err
	}
	script := filepath.Join(b.dir, "ceiling.sql")
	if err := os.WriteFile(script, []byte(s.script), 0o644); err != nil {
		return pgbenchResult{}, err
	}
	pgbench, err := b.pgbenchCommand(ctx, bin, dbName)
	if err != nil {
		return pgbenchResult{}, err
	}
	b.progress("ceiling: pgbench -f %s -M prepared, replaying the write of event %d of instance %s on database %s", script, last.Seq, inst.ID, dbName)
	upd0, hot0 := hotUpdates(ctx, db)
	c := strconv.Itoa(b.c.Clients)
	resets := 0
	phase := func(d time.Duration, measured bool) (pgbenchResult, error) {
		resets++
		base, err := ceilingReset(ctx, db, resets)
		if err != nil {
			return pgbenchResult{}, err
		}
		b.checkpoint(ctx, pg)
		args := []string{"-n", "-f", script, "-M", "prepared", "-c", c, "-j", c, "-T", strconv.Itoa(seconds(d)),
			"-D", "n=0", "-D", "base=" + strconv.FormatInt(base, 10)}
		for _, kv := range s.consts {
			args = append(args, "-D", kv)
		}
		var res pgbenchResult
		if measured {
			res, err = b.pgbenchMeasured(pgbench, "ceiling_log", args)
		} else {
			var out string
			if out, err = pgbench(args...); err == nil {
				res, err = parsePgbench(out)
			}
		}
		if err != nil {
			return res, err
		}
		return res, ceilingCheck(ctx, db, base, b.c.Instances, res.count)
	}
	if b.c.Warmup > 0 {
		if _, err := phase(b.c.Warmup, false); err != nil {
			return pgbenchResult{}, fmt.Errorf("ceiling warm-up: %w", err)
		}
	}
	b.progress("ceiling: pgbench -c %s -j %s -T %d", c, c, seconds(b.c.Duration))
	res, err := phase(b.c.Duration, true)
	if err == nil {
		upd1, hot1 := hotUpdates(ctx, db)
		b.progress("ceiling: HOT updates of the instances (PostgreSQL's statistics, which may lag a second): fsmd's phase %d of %d, the ceiling's (its resets, never HOT, included) %d of %d",
			hot0, upd0, hot1-hot0, upd1-upd0)
	}
	return res, err
}

// hotUpdates reads PostgreSQL's count of the updates of the instances table, and of those that
// were HOT (no index touched): the ceiling's should be HOT as often as fsmd's, or it is not a
// replay of fsmd's write. -1 when they cannot be read.
func hotUpdates(ctx context.Context, db *persistence.DB) (updates, hot int64) {
	err := db.X.QueryRowxContext(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'instances'`).Scan(&updates, &hot)
	if err != nil {
		return -1, -1
	}
	return updates, hot
}

// ceilingReset brings every instance of the load to one revision, the highest (so that no audit
// row the replay writes can meet one written before), and to a time of the k-th reset's own (so
// that neither the reset's update nor the replay's next one is HOT), and returns the revision: each
// client's script starts there.
func ceilingReset(ctx context.Context, db *persistence.DB, k int) (int64, error) {
	var base int64
	if err := db.X.QueryRowxContext(ctx, `SELECT COALESCE(max(revision), 0) FROM instances WHERE definition = 'account'`).Scan(&base); err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	if _, err := db.X.ExecContext(ctx, `UPDATE instances SET updated_at = $1, revision = $2 WHERE definition = 'account'`,
		ceilingTimeRest.Add(time.Duration(k)*time.Second), base); err != nil {
		return 0, fmt.Errorf("ceiling: %w", err)
	}
	return base, nil
}

// ceilingCheck checks that a run's n transactions each wrote one event: the instances' revisions
// went up by n from base in all, and the audit rows above base are n.
func ceilingCheck(ctx context.Context, db *persistence.DB, base int64, instances, n int) error {
	var revisions, rows int64
	if err := db.X.QueryRowxContext(ctx, `SELECT COALESCE(sum(revision - $1), 0) FROM instances WHERE definition = 'account'`, base).Scan(&revisions); err != nil {
		return fmt.Errorf("ceiling check: %w", err)
	}
	if err := db.X.QueryRowxContext(ctx, `SELECT count(*) FROM transitions WHERE seq > $1 AND instance_id >= $2 AND instance_id <= $3`,
		base, instanceID(0), instanceID(instances-1)).Scan(&rows); err != nil {
		return fmt.Errorf("ceiling check: %w", err)
	}
	if revisions != int64(n) || rows != int64(n) {
		return fmt.Errorf("ceiling check failed: pgbench counted %d transactions, the instances' revisions went up by %d, %d audit rows were written", n, revisions, rows)
	}
	return nil
}
