package persistence

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// InstanceRow is an instance as stored.
type InstanceRow struct {
	ID         string
	Definition string
	Version    int // of the definition
	State      string
	Context    []byte // a JSON object; "{}" is stored for an empty one
	Revision   int64
	Final      bool
	CreateHash string // of the creation request
	CreatedAt  time.Time
	UpdatedAt  time.Time
	EnteredAt  time.Time // of the current state
	// A child's parent (migrations/postgres/009_children.sql): its id ("" for none), the group
	// and entry (the parent's revision) that started it, its index there, and the event the
	// parent gets when it ends.
	ParentID    string
	ParentGroup string
	ParentRev   int64
	ParentIndex int
	OnFinal     string
	Depth       int
	// Children are the counts of the child groups of the current entry, a JSON object
	// {group: {rev, total, final}} ("{}" when none).
	Children []byte
	// Its task (migrations/postgres/011_tasks.sql): who should act, and by when.
	Task
	// Suspended: an operator suspended it (events refused, timers held, messages waiting);
	// Terminated: an operator ended it where it was (Final too). migrations/postgres/012_admin.sql.
	Suspended, Terminated bool
}

// Task is an instance's assignees (user names and "group:NAME"s; none: nil) and when they are due
// (zero for no date).
type Task struct {
	Assignees []string
	DueAt     time.Time
}

// assigneesArg is the assignees as a JSON array argument; NULL for none.
func (t Task) assigneesArg() any {
	if len(t.Assignees) == 0 {
		return nil
	}
	b, _ := json.Marshal(t.Assignees) // strings never fail
	return string(b)
}

// dueArg is the due date as an argument; NULL for none.
func (t Task) dueArg(d Dialect) any {
	if t.DueAt.IsZero() {
		return nil
	}
	return timeArg(d, t.DueAt)
}

// InstanceUpdateParams is the new state of an instance after a transition (or a migration), for
// InstanceUpdate. (The type cannot share the function's name.)
type InstanceUpdateParams struct {
	ID string
	// Definition is the instance's definition, when the caller knows it: on Citus the write of an
	// instance of a definition with keys goes another way (advanceCitusKeyed).
	Definition     string
	ExpectRevision int64 // the revision read; another one means a concurrent change
	Version        int
	State          string
	Context        []byte
	Revision       int64
	Final          bool
	// Stays says that Version, State and Final are what the instance has at ExpectRevision (a
	// transition to the same state, a drop, a message's reply): InstanceUpdate then writes no index
	// on them (instanceStayQuery). The advance statement of PostgreSQL ignores it.
	Stays     bool
	UpdatedAt time.Time
	EnteredAt time.Time
	// Children, when set, replaces the instance's child group counts (InstanceRow.Children); nil
	// keeps them.
	Children []byte
	// Task, when set, replaces the instance's task (a transition that enters a state: an empty
	// Task clears it); nil keeps it (a stay, a migration).
	Task *Task
	// Timers, when set, changes the instance's timers with the update (InstanceAdvance only): the
	// state's are cancelled, the entered state's armed at Revision.
	Timers *TimerChange
	// Outbox are the webhook deliveries of the transition, inserted with it (InstanceAdvance only),
	// as OutboxInsert does: their Seq is Revision.
	Outbox []OutboxRow
	// Messages are the messages the transition sends, inserted with it (InstanceAdvance only), as
	// MessagesInsert does: their Sender is ID and their SenderSeq is Revision.
	Messages []MessageRow
}

// TimerChange is what a transition does to its instance's timers.
type TimerChange struct {
	Cancel bool  // every timer of the instance is deleted: its state was left or re-entered
	Arms   []Arm // armed at the new revision
}

// InstanceListParams selects a page of instances, in id order.
type InstanceListParams struct {
	Definition string    // "" for every definition
	State      string    // "" for every state
	Version    int       // 0 for every version
	Parent     string    // "" for every instance; else only this instance's children
	Group      string    // with Parent: only the children of this group ("" for every group)
	Assignee   string    // "" for every instance; else only those whose assignees name it (a name or "group:NAME")
	OverdueAt  time.Time // zero for every instance; else only those due before it
	Suspended  bool      // only the suspended instances
	Running    bool      // only the instances not final
	// TouchedBy, when set, also selects the instances of Definition with an audit row of this
	// request id, whatever the other filters say (a bulk's batch done again, within UpTo: the
	// condition cannot use an index).
	TouchedBy string
	UpTo      string // the instances whose id is at most this ("" for no bound)
	After     string // the instances whose id is greater ("" for the first page)
	Limit     int    // at most this many; 0 or less for no limit
	MaxBytes  int    // stop after the row that takes their Bytes past it; 0 for no bound
	// Ctx are filters on context fields (ctxfield.go), all of which must hold; they need Definition.
	Ctx []CtxFilter
}

// Bytes is about the size of the row as JSON (TransitionRow.Bytes).
func (r InstanceRow) Bytes() int {
	n := len(r.Context) + len(r.ID) + len(r.Definition) + len(r.State) + len(r.ParentID) + len(r.Children) + rowOverhead
	for _, a := range r.Assignees {
		n += len(a) + 3
	}
	return n
}

// instanceRow is InstanceRow as scanned.
type instanceRow struct {
	ID         string `db:"id"`
	Definition string `db:"definition"`
	Version    int    `db:"version"`
	State      string `db:"state"`
	Context    []byte `db:"context"`
	Revision   int64  `db:"revision"`
	Final      bool   `db:"final"`
	CreateHash string `db:"create_hash"`
	CreatedAt  dbTime `db:"created_at"`
	UpdatedAt  dbTime `db:"updated_at"`
	EnteredAt  dbTime `db:"entered_at"`

	ParentID    sql.NullString `db:"parent_id"`
	ParentGroup string         `db:"parent_group"`
	ParentRev   int64          `db:"parent_rev"`
	ParentIndex int            `db:"parent_index"`
	OnFinal     string         `db:"on_final"`
	Depth       int            `db:"depth"`
	Children    []byte         `db:"children"`
	Assignees   []byte         `db:"assignees"` // a JSON array, or NULL
	DueAt       dbTime         `db:"due_at"`    // zero for NULL
	Suspended   bool           `db:"suspended"`
	Terminated  bool           `db:"terminated"`
}

func (r instanceRow) row() InstanceRow {
	return InstanceRow{
		ID: r.ID, Definition: r.Definition, Version: r.Version, State: r.State, Context: r.Context,
		Revision: r.Revision, Final: r.Final, CreateHash: r.CreateHash,
		CreatedAt: r.CreatedAt.Time(), UpdatedAt: r.UpdatedAt.Time(), EnteredAt: r.EnteredAt.Time(),
		ParentID: r.ParentID.String, ParentGroup: r.ParentGroup, ParentRev: r.ParentRev, ParentIndex: r.ParentIndex,
		OnFinal: r.OnFinal, Depth: r.Depth, Children: r.Children,
		Task: Task{Assignees: decodeAssignees(r.Assignees), DueAt: r.DueAt.Time()}, Suspended: r.Suspended, Terminated: r.Terminated,
	}
}

// decodeAssignees reads the assignees column; nil for NULL (or a value fsmd did not write).
func decodeAssignees(b []byte) []string {
	var out []string
	if len(b) > 0 && json.Unmarshal(b, &out) != nil {
		return nil
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

const instanceColumns = `id, definition, version, state, context, revision, final, create_hash, created_at, updated_at, entered_at, ` +
	`parent_id, parent_group, parent_rev, parent_index, on_final, depth, children, assignees, due_at, suspended, terminated`

// The queries of the instance functions that are prepared on PostgreSQL (see preparedQueries).
const (
	// ON CONFLICT (id), not every key: a business key taken (keylookup.go) must fail the insert,
	// not pass for an instance of that id.
	instanceInsertQuery = `
		INSERT INTO instances (` + instanceColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	instanceGetQuery          = `SELECT ` + instanceColumns + ` FROM instances WHERE id = ?`
	instanceGetForUpdateQuery = instanceGetQuery + ` FOR UPDATE`
	instanceUpdateQuery       = `
		UPDATE instances
		SET version = ?, state = ?, final = ?, ` + instanceSetStays + `
		WHERE id = ? AND revision = ?`
	// instanceStayQuery is instanceUpdateQuery for an update that keeps the instance's version,
	// state and finality (InstanceUpdateParams.Stays): it leaves them out of its SET and checks
	// them in its WHERE instead, so that a caller wrong about them gets ErrConflict, never an
	// instance left in its state. On SQLite an UPDATE rewrites the entries of every index on a
	// column it sets, whatever the value: the indexes on the state and the finality were 3 of the 7
	// pages an event's commit wrote to the WAL. (PostgreSQL compares the values: a HOT update.)
	instanceStayQuery = `
		UPDATE instances
		SET ` + instanceSetStays + `
		WHERE id = ? AND revision = ? AND version = ? AND state = ? AND final = ?`
	// instanceSetStays is what both updates set.
	instanceSetStays = `context = ?, revision = ?, updated_at = ?, entered_at = ?,
			children = COALESCE(?, children),
			assignees = CASE WHEN ? THEN ? ELSE assignees END, due_at = CASE WHEN ? THEN ? ELSE due_at END`
)

// InstanceInsert stores a new instance. ErrConflict when the id exists; the transaction stays
// usable (to read the existing instance, for instance).
func InstanceInsert(ctx context.Context, tx *Tx, r InstanceRow) error {
	d := tx.Dialect
	res, err := execContext(ctx, tx, instanceInsertQuery,
		r.ID, r.Definition, r.Version, r.State, jsonArg(r.Context, "{}"), r.Revision, r.Final,
		r.CreateHash, timeArg(d, r.CreatedAt), timeArg(d, r.UpdatedAt), timeArg(d, r.EnteredAt),
		nullString(r.ParentID), r.ParentGroup, r.ParentRev, r.ParentIndex, r.OnFinal, r.Depth, jsonArg(r.Children, "{}"),
		r.assigneesArg(), r.dueArg(d), r.Suspended, r.Terminated)
	if err != nil {
		return translate(fmt.Errorf("persistence: insert instance %q: %w", r.ID, err))
	}
	if err := conflictUnlessOne(res, "instance %q exists already", r.ID); err != nil {
		return err
	}
	return keysSync(ctx, tx, r.ID)
}

// InstanceGet returns an instance. ErrNotFound when there is none.
func InstanceGet(ctx context.Context, ex Executor, id string) (InstanceRow, error) {
	var r instanceRow
	if err := getOf(ctx, ex, id, &r, instanceGetQuery, id); err != nil {
		return InstanceRow{}, notFound(err, "instance %q", id)
	}
	return r.row(), nil
}

// InstanceGetForUpdate returns an instance and locks it until tx ends: SELECT ... FOR UPDATE on
// PostgreSQL; on SQLite a plain SELECT, the transaction holding the database's write lock since
// BEGIN (IMMEDIATE). ErrNotFound when there is none.
func InstanceGetForUpdate(ctx context.Context, tx *Tx, id string) (InstanceRow, error) {
	query := instanceGetQuery
	if tx.Dialect == Postgres {
		query = instanceGetForUpdateQuery
	}
	var r instanceRow
	if err := getContext(ctx, tx, &r, query, id); err != nil {
		return InstanceRow{}, notFound(err, "instance %q", id)
	}
	return r.row(), nil
}

// InstanceUpdate writes the new state of an instance, provided it is still at u.ExpectRevision:
// ErrConflict when it is not (or does not exist).
func InstanceUpdate(ctx context.Context, tx *Tx, u InstanceUpdateParams) error {
	query, args := u.statement(tx.Dialect)
	res, err := execContext(ctx, tx, query, args...)
	if err != nil {
		return translate(fmt.Errorf("persistence: update instance %q: %w", u.ID, err))
	}
	if err := conflictUnlessOne(res, "instance %q is not at revision %d", u.ID, u.ExpectRevision); err != nil {
		return err
	}
	return keysSync(ctx, tx, u.ID)
}

// statement is u's update (instanceStayQuery when it Stays, else instanceUpdateQuery) and its
// arguments.
func (u InstanceUpdateParams) statement(d Dialect) (string, []any) {
	if u.Stays {
		return instanceStayQuery, append(u.setArgs(d), u.ID, u.ExpectRevision, u.Version, u.State, u.Final)
	}
	return instanceUpdateQuery, u.updateArgs(d)
}

// updateArgs is the arguments of instanceUpdateQuery for u.
func (u InstanceUpdateParams) updateArgs(d Dialect) []any {
	return append(append([]any{u.Version, u.State, u.Final}, u.setArgs(d)...), u.ID, u.ExpectRevision)
}

// setArgs is the arguments of instanceSetStays.
func (u InstanceUpdateParams) setArgs(d Dialect) []any {
	return append([]any{jsonArg(u.Context, "{}"), u.Revision, timeArg(d, u.UpdatedAt), timeArg(d, u.EnteredAt), jsonOrNull(u.Children)},
		u.setTask(d)...)
}

// setTask is the four arguments of the update's task: whether to set it, the assignees, whether
// to set it, the due date.
func (u InstanceUpdateParams) setTask(d Dialect) []any {
	if u.Task == nil {
		return []any{false, nil, false, nil}
	}
	return []any{true, u.Task.assigneesArg(), true, u.Task.dueArg(d)}
}

// InstanceList returns a page of instances in id order (keyset pagination: pass the last id of a
// page as After for the next).
func InstanceList(ctx context.Context, ex Executor, p InstanceListParams) ([]InstanceRow, error) {
	query, args, err := instanceListQuery(ex.dialect(), p)
	if err != nil {
		return nil, err
	}
	out, err := selectBounded(ctx, ex, p.MaxBytes, instanceRow.row, query, args...)
	if err != nil {
		return nil, translate(canceled(ctx, fmt.Errorf("persistence: list instances: %w", err)))
	}
	return out, nil
}

// instanceListQuery is InstanceList's query (written with ?) and its arguments.
// InstanceCount counts the instances p selects (its After, Limit and MaxBytes aside).
func InstanceCount(ctx context.Context, ex Executor, p InstanceListParams) (int64, error) {
	p.After, p.Limit = "", 0
	query, args, err := instanceListQuery(ex.dialect(), p)
	if err != nil {
		return 0, err
	}
	query = `SELECT COUNT(*) FROM instances` + strings.TrimSuffix(query[strings.Index(query, " FROM instances")+len(" FROM instances"):], " ORDER BY id")
	var n int64
	if err := getContext(ctx, ex, &n, query, args...); err != nil {
		return 0, translate(canceled(ctx, fmt.Errorf("persistence: count instances: %w", err)))
	}
	return n, nil
}

func instanceListQuery(d Dialect, p InstanceListParams) (string, []any, error) {
	var (
		where []string
		args  []any
	)
	switch {
	case len(p.Ctx) > 0 && p.Definition != "":
		// A literal, as the partial indexes of `index` name it (ctxfield.go).
		where = append(where, definitionIs(p.Definition))
	case len(p.Ctx) > 0:
		return "", nil, fmt.Errorf("persistence: list instances: context filters need a definition")
	case p.Definition != "":
		where, args = append(where, "definition = ?"), append(args, p.Definition)
	}
	for _, f := range p.Ctx {
		cond, arg, err := ctxCondition(d, f)
		if err != nil {
			return "", nil, err
		}
		where, args = append(where, cond), append(args, arg)
	}
	if p.State != "" {
		where, args = append(where, "state = ?"), append(args, p.State)
	}
	if p.Version != 0 {
		where, args = append(where, "version = ?"), append(args, p.Version)
	}
	if p.Parent != "" {
		where, args = append(where, "parent_id = ?"), append(args, p.Parent)
	}
	if p.Parent != "" && p.Group != "" {
		where, args = append(where, "parent_group = ?"), append(args, p.Group)
	}
	if p.Assignee != "" {
		cond, a := assignedTo(d, []string{p.Assignee})
		where, args = append(where, cond), append(args, a...)
	}
	if p.Suspended {
		where = append(where, "suspended")
	}
	if p.Running {
		where = append(where, "NOT final")
	}
	if !p.OverdueAt.IsZero() {
		where, args = append(where, "due_at IS NOT NULL AND due_at < ? AND NOT final"), append(args, timeArg(d, p.OverdueAt))
	}
	if p.TouchedBy != "" && len(where) > 0 {
		where = []string{"((" + strings.Join(where, " AND ") + ") OR (definition = ? AND EXISTS (SELECT 1 FROM transitions t " +
			"WHERE t.instance_id = instances.id AND t.request_id = ?)))"}
		args = append(args, p.Definition, p.TouchedBy)
	}
	if p.After != "" {
		where, args = append(where, "id > ?"), append(args, p.After)
	}
	if p.UpTo != "" {
		where, args = append(where, "id <= ?"), append(args, p.UpTo)
	}
	var b strings.Builder
	b.WriteString(`SELECT ` + instanceColumns + ` FROM instances`)
	if len(where) > 0 {
		b.WriteString(` WHERE ` + strings.Join(where, ` AND `))
	}
	b.WriteString(` ORDER BY id`)
	if p.Limit > 0 {
		b.WriteString(` LIMIT ?`)
		args = append(args, p.Limit)
	}
	return b.String(), args, nil
}

// InstanceCountRunning returns the number of instances not in a final state, by definition (every
// version); a definition without any is absent.
func InstanceCountRunning(ctx context.Context, ex Executor) (map[string]int64, error) {
	var rows []struct {
		Definition string `db:"definition"`
		N          int64  `db:"n"`
	}
	err := selectContext(ctx, ex, &rows, `
		SELECT definition, COUNT(*) AS n FROM instances
		WHERE NOT final
		GROUP BY definition`)
	if err != nil {
		return nil, translate(fmt.Errorf("persistence: count running instances: %w", err))
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Definition] = r.N
	}
	return out, nil
}
