package persistence

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/lib/pq"
)

// A key (a definition's `keys`) is unique among the running instances of its definition. On
// PostgreSQL and SQLite a unique index over instances says so (ctxindex.go); Citus builds a unique
// index only with a table's distribution column, and instances are distributed by id. So on Citus:
//
//   - key_indexes, a reference table, lists every key: the name its index would have
//     (KeyIndexName), the definition, the field's path and kind;
//   - instance_keys, distributed by the key's value, holds a row for each key a running instance
//     holds, its value as text in one form for each value (fsmd_key_value: what ctxExpr compares
//     equal is one text), under a primary key (value, key_index): the unique index;
//   - instances.keys holds the keys the instance holds there ({index: value}), so that a write
//     finds the rows to take back on the instance's own worker, not by asking every worker.
//
// Every store function that writes an instance's context, finality or definition calls keysSync in
// its transaction, after its write: keys taken and freed in the same transaction as the write,
// from what key_indexes says in that transaction, which every process shares (a process that has
// not loaded a definition's newest version still keeps its keys). The event's function
// (fsmd_advance_2), which cannot write on another worker, compares the keys of what it writes with
// those the instance holds and refuses a write that changes them (keysChangedCode): fsmd then
// writes that event in a transaction (advanceCitusKeyed), and sends its definition's later events there
// directly (DB.keyed).

// keysChangedCode is the SQLSTATE of fsmd_advance_2's refusal of a write that changes keys.
const keysChangedCode = "FSK01"

// keyValueFunctionDDL is fsmd_key_value(context, path, kind): the text of the key a context holds
// at path, NULL when it holds none (no value, a value of another JSON type, the kind's zero value:
// as ctxExpr and ctxZero read it). Numbers without trailing zeros (1.50 and 1.5 are one key), times
// as seconds since the epoch (an instant, whatever its offset). search_path is the one it was
// created under, for fsmd_ctx_time: a worker runs it in a session of its own.
const keyValueFunctionDDL = `CREATE OR REPLACE FUNCTION fsmd_key_value(c jsonb, p text[], k text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $fn$
	SELECT CASE
		WHEN k IN ('int', 'float') THEN (SELECT trim_scale(n)::text
			FROM (SELECT CASE WHEN jsonb_typeof(c #> p) = 'number' THEN (c #>> p)::numeric END AS n) s WHERE n <> 0)
		WHEN k = 'bool' THEN CASE WHEN jsonb_typeof(c #> p) = 'boolean' AND c #>> p = 'true' THEN 'true' END
		WHEN k = 'time' THEN (SELECT trim_scale(extract(epoch FROM t))::text
			FROM (SELECT fsmd_ctx_time(c #>> p) AS t) s WHERE t <> fsmd_ctx_time('0001-01-01T00:00:00Z'))
		WHEN k = 'duration' THEN NULLIF(c #>> p, '0s')
		ELSE NULLIF(c #>> p, '')
	END
$fn$`

// keyTables are the tables of the keys on Citus, with how each is distributed.
var keyTables = []struct{ name, ddl, distribute string }{
	{"key_indexes", `CREATE TABLE IF NOT EXISTS key_indexes (name text PRIMARY KEY, definition text NOT NULL, path text[] NOT NULL,
		kind text NOT NULL)`, `SELECT create_reference_table('key_indexes')`},
	{"instance_keys", `CREATE TABLE IF NOT EXISTS instance_keys (value text NOT NULL, key_index text NOT NULL, instance_id text NOT NULL,
		PRIMARY KEY (value, key_index))`, `SELECT create_distributed_table('instance_keys', 'value', colocate_with => 'none')`},
}

// ensureKeyObjects makes what keys need on Citus, unless it exists: the function, the tables and
// instances.keys. It runs under the migrations' lock, after distribute.
func ensureKeyObjects(ctx context.Context, c *sql.Conn) error {
	exists := func(query string, args ...any) (bool, error) {
		var ok bool
		err := c.QueryRowContext(ctx, query, args...).Scan(&ok)
		return ok, err
	}
	exec := func(query string) error {
		if _, err := c.ExecContext(ctx, query); err != nil {
			return fmt.Errorf("persistence: the keys on Citus: %s: %w", query, err)
		}
		return nil
	}
	if ok, err := exists(`SELECT to_regproc('fsmd_key_value') IS NOT NULL`); err != nil || !ok {
		if err == nil {
			err = exec(keyValueFunctionDDL)
		}
		if err != nil {
			return err
		}
	}
	for _, t := range keyTables {
		ok, err := exists(`SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass($1))`, t.name)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		if err := exec(t.ddl); err != nil {
			return err
		}
		if err := exec(t.distribute); err != nil {
			return err
		}
	}
	ok, err := exists(`SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('instances') AND attname = 'keys'
		AND NOT attisdropped)`)
	if err == nil && !ok {
		err = exec(`ALTER TABLE instances ADD COLUMN IF NOT EXISTS keys jsonb`)
	}
	return err
}

// keyed is the set of definitions that have keys on Citus, as this process knows it: their events
// are written in a transaction (advanceCitusKeyed), which keeps keys, rather than by fsmd_advance_2.
type keyed struct{ m sync.Map }

func (k *keyed) has(definition string) bool { _, ok := k.m.Load(definition); return ok }
func (k *keyed) add(definition string)      { k.m.Store(definition, true) }

// loadKeyed reads the definitions that have keys (at Open, on Citus).
func (db *DB) loadKeyed(ctx context.Context) error {
	var defs []string
	if err := db.X.SelectContext(ctx, &defs, `SELECT DISTINCT definition FROM key_indexes`); err != nil {
		return fmt.Errorf("persistence: the definitions that have keys: %w", err)
	}
	for _, d := range defs {
		db.keyed.add(d)
	}
	return nil
}

// keyTaken is a key value refused in instance_keys: the Citus form of a key index's unique
// violation, naming the index (keyIndexOf).
type keyTaken struct {
	index string
	err   error
}

func (e *keyTaken) Error() string { return fmt.Sprintf("key %s: %v", e.index, e.err) }
func (e *keyTaken) Unwrap() error { return e.err }

// keyChange is a key an instance takes or frees: its index and its value as instance_keys has it.
type keyChange struct{ id, index, value string }

// keysSync brings the keys of the instances ids in instance_keys and instances.keys in line with
// their rows as tx has written them: on Citus only (elsewhere the key indexes do it). The keys
// freed go first, so that one instance may take in tx what another frees in tx. A value taken by
// another running instance fails with ErrKeyExists, and the transaction with it.
func keysSync(ctx context.Context, tx *Tx, ids ...string) error {
	if !tx.db.Citus || len(ids) == 0 {
		return nil
	}
	where, arg := "i.id = ?", any(ids[0]) // a single-shard query for one instance
	if len(ids) > 1 {
		where, arg = "i.id = ANY(?)", pq.Array(ids)
	}
	var rows []struct {
		ID    string         `db:"id"`
		Held  []byte         `db:"held"`
		Index sql.NullString `db:"key_index"`
		Value sql.NullString `db:"value"`
	}
	err := selectContext(ctx, tx, &rows, `SELECT i.id, coalesce(i.keys, '{}') AS held, k.name AS key_index,
			fsmd_key_value(i.context, k.path, k.kind) AS value
		FROM instances i LEFT JOIN key_indexes k ON k.definition = i.definition AND NOT i.final
		WHERE `+where+` AND (i.keys IS NOT NULL OR k.name IS NOT NULL)`, arg)
	if err != nil {
		return translate(canceled(ctx, fmt.Errorf("persistence: the keys of %d instances: %w", len(ids), err)))
	}
	held, want := map[string]map[string]string{}, map[string]map[string]string{}
	for _, r := range rows {
		if held[r.ID] == nil {
			h := map[string]string{}
			if err := json.Unmarshal(r.Held, &h); err != nil {
				return fmt.Errorf("persistence: the keys instance %q holds: %w", r.ID, err)
			}
			held[r.ID], want[r.ID] = h, map[string]string{}
		}
		if r.Index.Valid && r.Value.Valid {
			want[r.ID][r.Index.String] = r.Value.String
		}
	}
	var free, take []keyChange
	var changed []string
	for id, h := range held {
		w := want[id]
		if maps.Equal(h, w) {
			continue
		}
		changed = append(changed, id)
		for index, value := range h {
			if w[index] != value {
				free = append(free, keyChange{id, index, value})
			}
		}
		for index, value := range w {
			if h[index] != value {
				take = append(take, keyChange{id, index, value})
			}
		}
	}
	for _, f := range free {
		if _, err := execContext(ctx, tx, `DELETE FROM instance_keys WHERE value = ? AND key_index = ? AND instance_id = ?`,
			f.value, f.index, f.id); err != nil {
			return translate(canceled(ctx, fmt.Errorf("persistence: instance %q frees its key %s: %w", f.id, f.index, err)))
		}
	}
	// In the order of their values: two transactions taking the same values wait for each other in
	// one order, and do not deadlock.
	slices.SortFunc(take, func(a, b keyChange) int {
		return strings.Compare(a.value+"\x00"+a.index, b.value+"\x00"+b.index)
	})
	for _, t := range take {
		_, err := execContext(ctx, tx, `INSERT INTO instance_keys (value, key_index, instance_id) VALUES (?, ?, ?)`, t.value, t.index, t.id)
		if isUniqueViolation(err) {
			err = &keyTaken{index: t.index, err: err}
		}
		if err != nil {
			return translate(canceled(ctx, fmt.Errorf("persistence: instance %q takes its key %s: %w", t.id, t.index, err)))
		}
	}
	for _, id := range changed {
		var keys any // NULL when it holds none: keysSync reads no row of it then
		if len(want[id]) > 0 {
			b, _ := json.Marshal(want[id])
			keys = string(b)
		}
		if _, err := execContext(ctx, tx, `UPDATE instances SET keys = ?::jsonb WHERE id = ?`, keys, id); err != nil {
			return translate(canceled(ctx, fmt.Errorf("persistence: the keys instance %q holds: %w", id, err)))
		}
	}
	return nil
}

// keysEnsureCitus makes the keys of ix on Citus (CtxIndexesEnsure): a row of key_indexes each, and
// the rows of instance_keys of the running instances that hold one already, in one transaction
// that locks instances against writes meanwhile (EXCLUSIVE: reads go on), so that no write misses
// the key. Running instances that share a value fail it (KeyTakenError): nothing is kept.
func keysEnsureCitus(ctx context.Context, db *DB, ix CtxIndexes) error {
	for _, f := range ix.Keys {
		name := KeyIndexName(ix.Definition, f)
		var exists bool
		if err := db.X.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM key_indexes WHERE name = $1)`, name); err != nil {
			return translate(fmt.Errorf("persistence: key %s: %w", name, err))
		}
		if exists {
			continue
		}
		path, kind := pq.Array(f.Path), f.Kind.String()
		err := db.WithTx(ctx, func(tx *Tx) error {
			exec := func(query string, args ...any) (int64, error) {
				res, err := execContext(ctx, tx, query, args...)
				if err != nil {
					return 0, err
				}
				return res.RowsAffected()
			}
			if _, err := exec(`LOCK TABLE instances IN EXCLUSIVE MODE`); err != nil {
				return err
			}
			n, err := exec(`INSERT INTO key_indexes (name, definition, path, kind) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
				name, ix.Definition, path, kind)
			if err != nil || n == 0 { // 0: another process made it meanwhile
				return err
			}
			_, err = exec(`INSERT INTO instance_keys (value, key_index, instance_id)
				SELECT v, ?, id FROM (SELECT id, fsmd_key_value(context, ?, ?) AS v FROM instances WHERE definition = ? AND NOT final) s
				WHERE v IS NOT NULL`, name, path, kind, ix.Definition)
			if isUniqueViolation(err) {
				return &KeyTakenError{Index: name, Err: err}
			}
			if err != nil {
				return err
			}
			// jsonb_object, not jsonb_build_object: Citus refuses a STABLE function of a column in an UPDATE.
			_, err = exec(`UPDATE instances SET keys = coalesce(keys, '{}') || jsonb_object(ARRAY[?, fsmd_key_value(context, ?, ?)])
				WHERE definition = ? AND NOT final AND fsmd_key_value(context, ?, ?) IS NOT NULL`,
				name, path, kind, ix.Definition, path, kind)
			return err
		})
		var taken *KeyTakenError
		if errors.As(err, &taken) {
			return taken
		}
		if err != nil {
			return translate(fmt.Errorf("persistence: key %s: %w", name, err))
		}
	}
	if len(ix.Keys) > 0 {
		db.keyed.add(ix.Definition)
	}
	return nil
}

// instanceFindByKeyCitus is InstanceFindByKey on Citus: a read of instance_keys on the worker that
// holds the value.
func instanceFindByKeyCitus(ctx context.Context, ex Executor, definition string, f CtxField, value any) ([]string, error) {
	v, err := json.Marshal(map[string]any{"v": ctxArg(Postgres, f.Kind, value)})
	if err != nil {
		return nil, fmt.Errorf("persistence: a value of key %s: %w", strings.Join(f.Path, "."), err)
	}
	var ids []string
	err = selectContext(ctx, ex, &ids, `SELECT instance_id FROM instance_keys WHERE key_index = ? AND value = fsmd_key_value(?::jsonb, '{v}', ?)`,
		KeyIndexName(definition, f), string(v), f.Kind.String())
	return ids, err
}
