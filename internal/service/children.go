package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fsmd-io/fsmd/internal/ident"
	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/persistence"
)

// Child instances (docs/definitions.md, "Children"). A transition that enters a state with child
// groups starts them in its own transaction: their rows and timers are built here, when the event
// is decided, so that a child that cannot start (its definition is not registered, its context
// does not fit) refuses the event like any failed expression and nothing is written. The parent
// keeps, in its row, the groups of its current entry: {group: {rev, total, final}}, final counting
// the on_final messages it has received, each in the transaction that delivers it.

// MaxStartedPerEvent bounds the instances one event starts, all groups and levels together: a
// group starts at most machine.MaxChildren, but children may start children of their own.
const MaxStartedPerEvent = 100000

// move is an accepted transition with what the service adds to it: the children it starts, and
// the counts of the groups the instance keeps.
type move struct {
	*machine.Transition
	children  []persistence.InstanceRow
	childArms [][]persistence.Arm
	groups    []byte // the instance's child groups after the move; nil: unchanged
}

// groupCount is one group of an instance's current entry, as its row keeps it.
type groupCount struct {
	Rev   int64 `json:"rev"`
	Total int   `json:"total"`
	Final int   `json:"final"` // the on_final messages received (groups with on_final)
}

func storedGroups(row persistence.InstanceRow) (map[string]groupCount, error) {
	out := map[string]groupCount{}
	if len(row.Children) == 0 {
		return out, nil
	}
	if err := json.Unmarshal(row.Children, &out); err != nil {
		return nil, fmt.Errorf("instance %s: its stored child groups are not valid: %w", row.ID, err)
	}
	return out, nil
}

// finalFrom is the child that sent m, its on_final, or "" when m is another message: only a
// child's own message counts in its parent's group.
func finalFrom(m persistence.MessageRow) string {
	if m.ChildFinal {
		return m.Sender
	}
	return ""
}

// counted is the group of the instance's current entry whose on_final event is event when sender
// is one of that group's children, whose on_final message this is (finalFrom): the delivery counts
// in the group's final. Events sent otherwise (the API, a timer, another message) by the same name
// count nothing.
func counted(l loaded, stored map[string]groupCount, event, sender string) string {
	st := l.def.States[l.row.State]
	if sender == "" || st == nil {
		return ""
	}
	for _, g := range st.Children {
		e, ok := stored[g.Name]
		if ok && g.OnFinal == event && strings.HasPrefix(sender, childPrefix(l.row.ID, g.Name, e.Rev)) {
			return g.Name
		}
	}
	return ""
}

func childPrefix(parent, group string, rev int64) string {
	return parent + "." + group + "." + strconv.FormatInt(rev, 10) + "."
}

// family reads what the expressions of event see of the instance's children (`children`), when its
// handler refers to them: a group with on_final counts the messages received (the one being
// delivered included, bump); one without, its children's own states.
func (s *Service) family(ctx context.Context, l loaded, event string, stored map[string]groupCount, bump string) (map[string]machine.ChildCounts, error) {
	st := l.def.States[l.row.State]
	if st == nil || len(st.Children) == 0 {
		return nil, nil
	}
	counts, ids := l.def.UsesChildren(l.row.State, event)
	if !counts {
		return nil, nil
	}
	out := make(map[string]machine.ChildCounts, len(st.Children))
	for _, g := range st.Children {
		e := stored[g.Name]
		if bump == g.Name {
			e.Final++
		}
		total, final, err := s.groupCounts(ctx, l.row.ID, g, g.Name, e)
		if err != nil {
			return nil, err
		}
		c := machine.ChildCounts{Total: total, Final: final, Running: total - final}
		if ids && e.Total > 0 {
			key := persistence.ChildGroup{Parent: l.row.ID, Group: g.Name, Rev: e.Rev}
			if c.IDs, err = persistence.ChildRunningIDs(ctx, s.db, key); err != nil {
				return nil, err
			}
		}
		out[g.Name] = c
	}
	return out, nil
}

// groupCounts is how many children an entry of group (g; nil when the instance's version no longer
// declares it) started, and how many of them ended: with on_final, the messages received (e);
// without, by the children's own states.
func (s *Service) groupCounts(ctx context.Context, parent string, g *machine.ChildGroup, name string, e groupCount) (total, final int, err error) {
	if (g != nil && g.OnFinal != "") || e.Total == 0 {
		return e.Total, e.Final, nil
	}
	return persistence.ChildCounts(ctx, s.db, persistence.ChildGroup{Parent: parent, Group: name, Rev: e.Rev})
}

// complete adds to t what the service does for it: the on_exit messages to the running children of
// the groups of the state left, the children the state entered starts, and the instance's groups.
// An error with a code refuses the event.
func (s *Service) complete(ctx context.Context, l loaded, t *machine.Transition, stored map[string]groupCount, bump string, now time.Time) (*move, error) {
	m := &move{Transition: t}
	if t.Stayed {
		if bump != "" {
			e := stored[bump]
			e.Final++
			stored[bump] = e
			m.groups = mustJSON(stored)
		}
		return m, nil
	}
	for _, g := range t.Exit {
		e, ok := stored[g.Name]
		if !ok || e.Total == 0 {
			continue
		}
		ids, err := persistence.ChildRunningIDs(ctx, s.db, persistence.ChildGroup{Parent: l.row.ID, Group: g.Name, Rev: e.Rev})
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			t.Sent = append(t.Sent, machine.Message{To: id, Event: g.OnExit, Payload: map[string]any{}})
		}
	}
	rev := l.row.Revision + 1
	groups, err := s.startChildren(&m.children, &m.childArms, parentOf{id: l.row.ID, rev: rev, depth: l.row.Depth}, t.Start, now)
	if err != nil {
		return nil, &machine.ExpressionError{State: t.To, Event: t.Event, Where: "children", Err: err}
	}
	if len(groups) > 0 || len(stored) > 0 {
		m.groups = mustJSON(groups)
	}
	return m, nil
}

// parentOf is the instance that starts children: its id, its revision once started, its depth.
type parentOf struct {
	id    string
	rev   int64
	depth int
}

// startChildren builds the rows and timers of the children starts name (and of theirs, when their
// initial states start children), appending them to rows and timers; it returns the parent's groups.
func (s *Service) startChildren(rows *[]persistence.InstanceRow, timers *[][]persistence.Arm, p parentOf,
	starts []machine.ChildStart, now time.Time) (map[string]groupCount, error) {
	groups := make(map[string]groupCount, len(starts))
	for _, st := range starts {
		g := st.Group
		if len(*rows)+len(st.Contexts) > MaxStartedPerEvent {
			return nil, fmt.Errorf("group %s: more than %d instances started by one event", g.Name, MaxStartedPerEvent)
		}
		def, reg, err := s.reg.get(g.Definition, 0)
		if err != nil {
			return nil, fmt.Errorf("group %s: definition %q: %w", g.Name, g.Definition, err)
		}
		groups[g.Name] = groupCount{Rev: p.rev, Total: len(st.Contexts)}
		for i, ctx := range st.Contexts {
			id := machine.ChildID(p.id, g.Name, p.rev, i)
			if err := ident.Check("child id", id); err != nil { // the parent's id leaves too little room
				return nil, fmt.Errorf("group %s: %w", g.Name, err)
			}
			parent := machine.Parent{ID: p.id, Group: g.Name, Index: i, Rev: p.rev, OnFinal: g.OnFinal}
			b, err := s.limits.Begin(def, machine.Snapshot{ID: id, Version: reg.Version, Context: ctx, Parent: parent, Depth: p.depth + 1}, now)
			if err != nil {
				return nil, fmt.Errorf("group %s: child %d: %w", g.Name, i, err)
			}
			ctxJSON, err := encodeContext(b.Context)
			if err != nil {
				return nil, err
			}
			row := persistence.InstanceRow{ID: id, Definition: def.Name, Version: reg.Version, State: b.State, Context: ctxJSON,
				Final: def.Final(b.State), CreatedAt: now, UpdatedAt: now, EnteredAt: now,
				ParentID: p.id, ParentGroup: g.Name, ParentRev: p.rev, ParentIndex: i, OnFinal: g.OnFinal, Depth: p.depth + 1,
				Task: taskRow(b.Task)}
			at := len(*rows)
			*rows, *timers = append(*rows, row), append(*timers, arms(b.Arm))
			if len(b.Start) > 0 {
				sub, err := s.startChildren(rows, timers, parentOf{id: id, rev: 0, depth: p.depth + 1}, b.Start, now)
				if err != nil {
					return nil, err
				}
				(*rows)[at].Children = mustJSON(sub)
			}
		}
	}
	return groups, nil
}

// mustJSON encodes the groups, which are plain values.
func mustJSON(groups map[string]groupCount) []byte {
	b, err := json.Marshal(groups)
	if err != nil {
		panic(err) // maps of strings to structs of numbers always encode
	}
	return b
}

// Children is an instance's child groups as the API shows them: per group of its current entry,
// how many it started, how many run and how many ended (by on_final messages received for a group
// with on_final, else by the children's states).
func (s *Service) childrenOf(ctx context.Context, l loaded) (map[string]ChildGroupCounts, error) {
	stored, err := storedGroups(l.row)
	if err != nil || len(stored) == 0 {
		return nil, err
	}
	out := make(map[string]ChildGroupCounts, len(stored))
	for name, e := range stored {
		total, final, err := s.groupCounts(ctx, l.row.ID, l.def.Groups[name], name, e)
		if err != nil {
			return nil, s.dbError(err)
		}
		out[name] = ChildGroupCounts{Total: total, Running: total - final, Final: final}
	}
	return out, nil
}
