package persistence

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// Citus (distributed PostgreSQL) spreads a table over its workers by one column and keeps tables
// that share it (co-located) on the same worker row by row. fsmd's instance-scoped tables all have
// the instance's id: distributed by it, every statement of an event touches one worker.
//
// The distributed form, made by distribute after the schema migrations on a database with the
// citus extension:
//   - definitions: a reference table (a copy on every node), so that instances' foreign key to it
//     is checked where the instance lives;
//   - instances by id; transitions, timers and outbox by instance_id, messages by sender, all
//     co-located with instances: an outbox row's and a message's primary keys include that column,
//     as Citus requires of every unique constraint;
//   - the rest (migrations, bulks, the stats, the schema migrations' table) stays on the
//     coordinator: rows per definition or per hour, not per event.
//
// A distributed table cannot keep its rows or foreign keys while it is made one: the foreign keys
// are dropped first and added again after. Every step checks whether it is done, so distribute can
// run on every start, and resumes a run that stopped half-way.

// colocated are the tables distributed by the instance's id, after instances, with the column
// holding it.
var colocated = []struct{ table, column, pkey string }{
	{"transitions", "instance_id", ""},
	{"timers", "instance_id", ""},
	{"outbox", "instance_id", "instance_id, id"},
	{"messages", "sender", "sender, id"},
}

// foreignKey is a table's foreign key: its name and its definition.
type foreignKey struct{ table, name, ddl string }

// instanceForeignKeys are the foreign keys of the distributed form, added once every table is in it.
var instanceForeignKeys = []foreignKey{
	{"instances", "instances_definition_fkey", "FOREIGN KEY (definition, version) REFERENCES definitions (name, version)"},
	{"transitions", "transitions_instance_id_fkey", "FOREIGN KEY (instance_id) REFERENCES instances (id)"},
	{"timers", "timers_instance_id_fkey", "FOREIGN KEY (instance_id) REFERENCES instances (id)"},
}

// isCitus tells whether the database has the citus extension.
func isCitus(ctx context.Context, c *sql.Conn) (bool, error) {
	var ok bool
	err := c.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&ok)
	return ok, err
}

// distribute turns the schema on c into its distributed form, when it is not in it yet. c holds
// the migrations' lock (migrate), so two processes starting together distribute one after the
// other. It returns whether it changed anything.
func distribute(ctx context.Context, c *sql.Conn) (changed bool, err error) {
	isDist := func(table string) (bool, error) {
		var ok bool
		err := c.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass($1))`, table).Scan(&ok)
		return ok, err
	}
	exec := func(query string, args ...any) error {
		if _, err := c.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("persistence: distribute the schema on Citus: %s: %w", query, err)
		}
		changed = true
		return nil
	}
	hasKey := func(table, name string) (bool, error) {
		var ok bool
		err := c.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2)`,
			table, name).Scan(&ok)
		return ok, err
	}
	last := instanceForeignKeys[len(instanceForeignKeys)-1]
	done, err := isDist("messages") // the last table distributed
	if err == nil && done {
		done, err = hasKey(last.table, last.name) // the last step
	}
	if err != nil || done {
		return false, err
	}
	// The foreign keys go while the tables are distributed, and come back after. The migrations
	// table stays on the coordinator, where it may not reference definitions, a reference table
	// once distributed: its foreign key goes for good.
	for _, fk := range slices.Concat(instanceForeignKeys, []foreignKey{{"migrations", "migrations_definition_fkey", ""}}) {
		if err := exec(`ALTER TABLE ` + fk.table + ` DROP CONSTRAINT IF EXISTS ` + fk.name); err != nil {
			return changed, err
		}
	}
	if ok, err := isDist("definitions"); err != nil {
		return changed, err
	} else if !ok {
		if err := exec(`SELECT create_reference_table('definitions')`); err != nil {
			return changed, err
		}
	}
	if ok, err := isDist("instances"); err != nil {
		return changed, err
	} else if !ok {
		// A co-location group of its own: not one of another application's tables that happen to be
		// distributed by text in as many shards.
		if err := exec(`SELECT create_distributed_table('instances', 'id', colocate_with => 'none')`); err != nil {
			return changed, err
		}
	}
	for _, t := range colocated {
		ok, err := isDist(t.table)
		if err != nil {
			return changed, err
		}
		if ok {
			continue
		}
		if t.pkey != "" {
			if err := exec(`ALTER TABLE ` + t.table + ` DROP CONSTRAINT ` + t.table + `_pkey, ADD CONSTRAINT ` +
				t.table + `_pkey PRIMARY KEY (` + t.pkey + `)`); err != nil {
				return changed, err
			}
		}
		if err := exec(`SELECT create_distributed_table($1, $2, colocate_with => 'instances')`, t.table, t.column); err != nil {
			return changed, err
		}
	}
	for _, fk := range instanceForeignKeys {
		if ok, err := hasKey(fk.table, fk.name); err != nil {
			return changed, err
		} else if ok {
			continue
		}
		if err := exec(`ALTER TABLE ` + fk.table + ` ADD CONSTRAINT ` + fk.name + ` ` + fk.ddl); err != nil {
			return changed, err
		}
	}
	return changed, nil
}
