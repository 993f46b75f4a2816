package persistence

import (
	"context"
	"database/sql"
	"fmt"
)

// On Citus an event's write as statements (advanceInTx) costs a round trip from fsmd to the
// coordinator and one from the coordinator to the worker for each statement, BEGIN and COMMIT
// included. advanceFunction holds those statements as one function, distributed with the instances by
// its first argument: called on its own (not inside a transaction block), the coordinator hands
// the call to the worker holding the instance, which runs the statements on its own shards and
// commits alone. One round trip for the whole write, as PostgreSQL's one statement.

// advanceFunction is the function's name: distribute creates it when it does not exist, so a
// change of its body or arguments needs a new name.
const advanceFunction = "fsmd_advance_2"

// oldAdvanceFunctions are the function's earlier names, dropped once the current one exists.
var oldAdvanceFunctions = []string{"fsmd_advance_1"}

// advanceFunctionDDL creates it. It returns 1 when it wrote the event, 0 when the instance was not
// at the revision expected (nothing written). Its statements are those of advanceInTx, in its
// order: the update, the timers, the webhook deliveries (each waiting when its chain has a pending
// or waiting one, whose rows it locks), the messages (each the next of its pair), the audit row.
// Before them, it compares the keys the instance holds with those of its new context (a key is
// unique across workers: keys_citus.go) and refuses a change (keysChangedCode), which writes
// nothing: fsmd writes the event in a transaction then.
// search_path is the one it was created under: the worker runs it in a session of its own.
// plan_cache_mode is force_custom_plan because of a bug of Citus 13.2 (citusdata/citus#8824, fixed
// after 13.2.2): a statement that a session runs again (a PL/pgSQL function's are) gets a generic
// plan, whose shard Citus finds at each run; run on the worker holding the shard, each run plans the
// shard's query anew and keeps that plan in the session for good, so a worker's session grew by
// megabytes a second under load (measured: 75 to 230 MB in 20 s). A custom plan is planned for its
// values and dropped after the run: nothing grows (57 to 63 MB over the same load).
const advanceFunctionDDL = `CREATE OR REPLACE FUNCTION ` + advanceFunction + `(
	p_id text, p_expect bigint, p_version integer, p_state text, p_context jsonb, p_revision bigint, p_final boolean,
	p_updated timestamptz, p_entered timestamptz, p_children jsonb, p_set_assignees boolean, p_assignees jsonb,
	p_set_due boolean, p_due timestamptz,
	t_cancel boolean, t_idx integer[], t_event text[], t_due timestamptz[],
	o_definition text, o_version integer, o_next timestamptz, o_created timestamptz,
	o_id text[], o_webhook text[], o_url text[], o_destination text[], o_body text[],
	m_created timestamptz, m_id text[], m_target text[], m_event text[], m_payload text[], m_child_final boolean[],
	r_seq bigint, r_event text, r_from text, r_to text, r_branch integer, r_guards jsonb, r_payload jsonb,
	r_before jsonb, r_after jsonb, r_source text, r_request_id text, r_key text, r_hash text,
	r_definition_version integer, r_from_version integer, r_at timestamptz, r_dropped text, r_actor text, r_actor_kind text
) RETURNS integer LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = ` + advancePlanMode + ` AS $fn$
DECLARE
	busy text[];
	last bigint;
	v_definition text;
	v_held jsonb;
	v_keys jsonb;
BEGIN
	UPDATE instances SET version = p_version, state = p_state, context = p_context, revision = p_revision,
		final = p_final, updated_at = p_updated, entered_at = p_entered, children = COALESCE(p_children, children),
		assignees = CASE WHEN p_set_assignees THEN p_assignees ELSE assignees END,
		due_at = CASE WHEN p_set_due THEN p_due ELSE due_at END
	WHERE id = p_id AND revision = p_expect
	RETURNING definition, keys INTO v_definition, v_held;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	SELECT jsonb_object_agg(s.name, s.v) INTO v_keys FROM (SELECT k.name, fsmd_key_value(p_context, k.path, k.kind) AS v
		FROM key_indexes k WHERE k.definition = v_definition AND NOT p_final) s WHERE s.v IS NOT NULL;
	IF coalesce(v_keys, '{}') <> coalesce(v_held, '{}') THEN
		RAISE EXCEPTION 'fsmd: the event changes the keys of instance %', p_id USING ERRCODE = '` + keysChangedCode + `';
	END IF;
	IF t_cancel THEN
		DELETE FROM timers WHERE instance_id = p_id;
	END IF;
	FOR i IN 1 .. coalesce(cardinality(t_idx), 0) LOOP
		INSERT INTO timers (` + timerColumns + `) VALUES (p_id, p_revision, t_idx[i], t_event[i], t_due[i], t_due[i], 0, '');
	END LOOP;
	IF coalesce(cardinality(o_id), 0) > 0 THEN
		SELECT array_agg(DISTINCT b.webhook) INTO busy FROM (SELECT o.webhook FROM outbox o WHERE o.instance_id = p_id
			AND o.webhook = ANY(o_webhook) AND o.status IN ('pending', 'waiting') FOR UPDATE) b;
		busy := coalesce(busy, '{}');
		FOR i IN 1 .. cardinality(o_id) LOOP
			INSERT INTO outbox (` + outboxInsertColumns + `) VALUES (o_id[i], p_id, p_revision, o_definition, o_version,
				o_webhook[i], o_url[i], o_destination[i], o_body[i],
				CASE WHEN o_webhook[i] = ANY(busy) THEN 'waiting' ELSE 'pending' END, o_next, o_created);
			busy := busy || o_webhook[i];
		END LOOP;
	END IF;
	FOR i IN 1 .. coalesce(cardinality(m_id), 0) LOOP
		SELECT coalesce(max(x.seq), 0) INTO last FROM messages x WHERE x.sender = p_id AND x.target = m_target[i];
		INSERT INTO messages (` + messageInsertColumns + `) VALUES (m_id[i], p_id, p_revision, m_target[i], last + 1,
			m_event[i], m_payload[i]::jsonb, m_created, m_child_final[i]);
	END LOOP;
	INSERT INTO transitions (` + transitionReadColumns + `) VALUES (p_id, r_seq, r_event, r_from, r_to, r_branch, r_guards,
		r_payload, r_before, r_after, r_source, r_request_id, r_key, r_hash, r_definition_version, r_from_version, r_at,
		r_dropped, r_actor, r_actor_kind);
	RETURN 1;
END
$fn$`

// advancePlanMode is the function's plan_cache_mode (see advanceFunctionDDL).
const advancePlanMode = "force_custom_plan"

// advanceFunctionQuery calls it.
var advanceFunctionQuery = `SELECT ` + advanceFunction + `(` + placeholders(52) + `)`

// advanceCitus is InstanceAdvance on Citus, outside a transaction: one call of advanceFunction.
func advanceCitus(ctx context.Context, db *DB, u InstanceUpdateParams, r TransitionRow) error {
	args := make([]any, 0, 52)
	args = append(args, u.ID, u.ExpectRevision, u.Version, u.State, jsonArg(u.Context, "{}"), u.Revision, u.Final,
		timeArg(Postgres, u.UpdatedAt), timeArg(Postgres, u.EnteredAt), jsonOrNull(u.Children))
	args = append(args, u.setTask(Postgres)...)
	var t TimerChange
	if u.Timers != nil {
		t = *u.Timers
	}
	args = append(append(args, t.Cancel), armArrays(t.Arms)...)
	// The values the outbox rows share, and the messages: zero or NULL when there are none.
	var oDef string
	var oVersion int
	var oNext, oCreated, mCreated any
	if len(u.Outbox) > 0 {
		first := u.Outbox[0]
		oDef, oVersion, oNext, oCreated = first.Definition, first.Version, timeArg(Postgres, first.NextTryAt), timeArg(Postgres, first.CreatedAt)
	}
	args = append(append(args, oDef, oVersion, oNext, oCreated), outboxArrays(u.Outbox)...)
	if len(u.Messages) > 0 {
		mCreated = timeArg(Postgres, u.Messages[0].CreatedAt)
	}
	args = append(append(args, mCreated), messageArrays(u.Messages)...)
	args = append(args, advanceRowArgs(r)...)
	var written int
	if err := db.routedGet(ctx, u.ID, &written, advanceFunctionQuery, args...); err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: advance instance %q to revision %d: %w", u.ID, u.Revision, err)))
	}
	if written == 0 {
		return fmt.Errorf("persistence: instance %q is not at revision %d: %w", u.ID, u.ExpectRevision, ErrConflict)
	}
	return nil
}

// advanceCitusKeyed is advanceCitus, except for an event that may change its instance's keys,
// which the function cannot write on another worker: an instance of a definition known to have
// keys, or one the function refused as it found its keys changed. That event is written in a
// transaction, advanceInTx's statements, whose update keeps the keys (keysSync).
func advanceCitusKeyed(ctx context.Context, db *DB, u InstanceUpdateParams, r TransitionRow) error {
	if u.Definition == "" || !db.keyed.has(u.Definition) {
		err := advanceCitus(ctx, db, u, r)
		if pgCode(err) != keysChangedCode {
			return err
		}
		if u.Definition != "" {
			db.keyed.add(u.Definition)
		}
	}
	return db.WithTx(ctx, func(tx *Tx) error { return advanceInTx(ctx, tx, u, r) })
}

// ensureAdvanceFunction creates advanceFunction and distributes it with the instances, unless it
// is distributed.
func ensureAdvanceFunction(ctx context.Context, c *sql.Conn) error {
	// Distributed, not only made: a start stopped between the two would leave a function the
	// coordinator runs itself. One made before it had its plan_cache_mode gets it (Citus passes the
	// change on to the workers).
	var done, planMode bool
	if err := c.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_dist_object WHERE objid = to_regproc($1)::oid
		AND distribution_argument_index IS NOT NULL),
		EXISTS (SELECT 1 FROM pg_proc WHERE oid = to_regproc($1)::oid AND $2 = ANY(proconfig))`,
		advanceFunction, "plan_cache_mode="+advancePlanMode).Scan(&done, &planMode); err != nil || (done && planMode) {
		return err
	}
	var stmts []string
	if !done {
		stmts = append(stmts, advanceFunctionDDL,
			`SELECT create_distributed_function(to_regproc('`+advanceFunction+`')::oid::regprocedure, 'p_id', colocate_with => 'instances')`)
		for _, old := range oldAdvanceFunctions {
			stmts = append(stmts, `DROP FUNCTION IF EXISTS `+old)
		}
	} else {
		stmts = append(stmts, `ALTER FUNCTION `+advanceFunction+` SET plan_cache_mode = `+advancePlanMode)
	}
	for _, stmt := range stmts {
		if _, err := c.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("persistence: distribute the schema on Citus: the event's function: %w", err)
		}
	}
	return nil
}

// LookUpKeysFirst reports whether an event with an Idempotency-Key should look the key up before
// its write, rather than let the write's unique index find a replay: on Citus, where an event's
// write that fails in the worker's function (fsmd_advance_2) is dear: the read after it took 12-17
// ms instead of about 1, and under TestConcurrency's duplicated keys requests took seconds (42-50
// s for the test's keyed half, 7 s with the lookup first).
func (db *DB) LookUpKeysFirst() bool { return db.Citus }
