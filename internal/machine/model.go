package machine

import (
	"sync"
	"time"

	"github.com/looplab/fsm"

	"github.com/fsmd-io/fsmd/internal/guards"
	"github.com/fsmd-io/fsmd/internal/schema"
	"github.com/fsmd-io/fsmd/internal/source"
)

// Pos is a position in a definition file: line and column from 1.
type Pos = source.Pos

// Definition is one loaded, validated state machine. It is immutable once loaded and safe to share
// between goroutines.
type Definition struct {
	Name        string
	Description string
	Initial     string
	File        string // the path it was loaded from
	Source      []byte // the file's content, as registered
	Context     *schema.Type
	Events      map[string]*EventSpec // declared payload schemas
	States      map[string]*State
	StateOrder  []string               // states in file order
	Migrate     *Migrate               // nil when the file has no migrate section
	Notify      []*Webhook             // the `notify` section, in file order (notify.go)
	Groups      map[string]*ChildGroup // every child group of every state, by name (children.go)
	Retention   *Retention             // how long final instances are kept (retention.go); nil: for ever
	Keys        []*FieldRef            // `keys`: fields unique among running instances (keys.go)
	Index       []*FieldRef            // `index`: fields GET /v1/instances filters on through an index (keys.go)
	NamePos     Pos
	InitialPos  Pos

	hasChildren  bool         // some state has `children`: Load parses it again once its children's definitions are known
	childrenType *schema.Type // the type of `children` in its expressions; nil without groups

	known map[string]bool // every event handled by some state or declared in events
	fsms  sync.Pool       // *fsm.FSM of this graph: an FSM must not be shared, so each Fire takes one
	graph []fsm.EventDesc // the graph as looplab/fsm sees it: one event per (handler, branch)
}

// EventSpec is a declared event and its payload schema.
type EventSpec struct {
	Name    string
	Payload *schema.Type // an object type
	Pos     Pos
	// FromChildren marks a child group's on_final event: its payload type is derived from the
	// child definition, not declared.
	FromChildren bool
}

// State is one state of a definition.
type State struct {
	Name        string
	Description string
	Final       bool
	On          map[string]*Handler
	OnOrder     []string // handled events in file order
	Timers      []*Timer
	Children    []*ChildGroup // the child groups started when the state is entered, in file order (children.go)
	// The state's task (task.go): who should act (Assign, a string or list of strings, nil for
	// nobody) and by when: DueAfter after entering it, or the time DueAt computes (neither: no date).
	Assign   *guards.Program
	DueAfter time.Duration
	DueAt    *guards.Program
	Pos      Pos
}

// Handler is the ordered list of branches a state has for one event. States whose `on` names one
// YAML node (an alias) share their handlers (share.go).
type Handler struct {
	Event    string
	Branches []*Branch
	Pos      Pos

	fsmState string // the state looplab/fsm knows the branches from: the first state that has it
}

// Branch is one transition object: the first branch whose guard holds is taken.
type Branch struct {
	To           string          // "" for a branch without `to`: the instance stays in its state (Stays)
	GuardSource  string          // empty: unguarded
	Guard        *guards.Program // compiled GuardSource
	GuardMessage string
	Set          []*Assignment
	Send         []*Send  // the messages the branch sends, in file order (processes.md §3)
	Allow        []string // the groups whose users may take it (actor.go); nil: every actor
	Index        int      // position among the handler's branches, from 0
	Pos          Pos
	GuardPos     Pos

	fsmEvent string // the looplab/fsm event name of this branch: "event#index"; "" for a stay
}

// Stays reports whether the branch has no `to`: taking it keeps the instance in its state without
// leaving it (its timers keep running, entered_at does not change). A branch whose `to` names its own
// state re-enters it instead. Where the branch leads from state (a handler may be shared by several
// states, so a stay's state is the one it is taken in) is Target.
func (b *Branch) Stays() bool { return b.To == "" }

// Target is the state the branch leads to when taken in state: To, or state itself for a stay.
func (b *Branch) Target(state string) string {
	if b.Stays() {
		return state
	}
	return b.To
}

// Assignment is one `set` entry: a context field (a dotted path) and the expression giving its value.
type Assignment struct {
	Path  []string
	Field *schema.Field
	Expr  *guards.Program
	Pos   Pos
}

// Send is one `send` entry of a branch: the event it sends to the instances To names.
type Send struct {
	To      *guards.Program // a string id, or a list of string ids; evaluated as any and checked then
	Event   string
	Payload []*SendField // in file order
	Pos     Pos
}

// SendField is one field of a message's payload and the expression giving its value.
type SendField struct {
	Name string
	Expr *guards.Program
	Pos  Pos
}

// MinTimerDelay is the shortest delay of a timer: `after` shorter is a load error, and an `at`
// deadline earlier than this after entering the state is put off until then. A timer that re-enters
// its own state with a tiny delay would otherwise write audit rows as fast as the database takes
// them, forever.
const MinTimerDelay = time.Second

// Timer fires Event when its deadline passes: After from entering the state, or the time At computes
// (at least MinTimerDelay after entering).
type Timer struct {
	Event string
	After time.Duration   // when At is nil
	At    *guards.Program // a time expression, evaluated on entering the state
	Pos   Pos
}

// Migrate holds the migration rules of a version: how instances of older versions move to it.
type Migrate struct {
	Policy  string // "auto" or "manual"
	States  map[string]*MigrateRule
	Context []*MigrateAssignment
	Pos     Pos
}

// MigrateRule maps an old state to this version's states by ordered, guarded branches.
type MigrateRule struct {
	From     string
	Branches []*MigrateBranch
	Pos      Pos
}

// MigrateBranch is one branch of a migration rule. Its guard is compiled against the old version's
// context when a migration is planned, so here it is kept as source.
type MigrateBranch struct {
	To    string
	Guard string
	Pos   Pos
}

// MigrateAssignment computes a new or changed context field from the old instance.
type MigrateAssignment struct {
	Path []string
	Expr string
	Pos  Pos
}

// Final reports whether name is a final state.
func (d *Definition) Final(state string) bool {
	s := d.States[state]
	return s != nil && s.Final
}

// Handles lists the events state handles, in file order.
func (d *Definition) Handles(state string) []string {
	if s := d.States[state]; s != nil {
		return s.OnOrder
	}
	return nil
}

// KnownEvent reports whether the definition knows the event: some state handles it or it is declared.
func (d *Definition) KnownEvent(event string) bool { return d.known[event] }
