package table_test

import (
	"fmt"
	"os"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/table"
)

// A transition table states, case by case, what events do to an instance of a definition: the
// state it ends in, its context, or the error code of a refusal. Run checks each case against the
// definition and prints each failure, then a summary, as fsmd test does with the tables it finds
// (table.Load reads them, each *.test.yaml beside its definition).
func Example() {
	def, diags := machine.Parse("door.yaml", []byte(`
name: door
initial: closed
context:
  opened: int
states:
  closed:
    on:
      open:
        to: opened
        set: {opened: ctx.opened + 1}
      lock: locked
  opened:
    on:
      close: closed
  locked:
    on:
      unlock: closed
`))
	if diags.Errors() > 0 {
		fmt.Println(diags)
		return
	}
	tbl, diags := table.Parse("door.test.yaml", []byte(`
cases:
  - name: opening counts
    when: [{event: open}, {event: close}, {event: open}]
    then: {state: opened, ctx: {opened: 2}}
  - name: a locked door does not open
    given: {state: locked}
    when: {event: open}
    then: {error: invalid_transition}
  - name: a locked door opens (wrong on purpose, to show a failure)
    given: {state: locked}
    when: {event: open}
    then: {state: opened}
`))
	if diags.Errors() > 0 {
		fmt.Println(diags)
		return
	}
	suite := &table.Suite{Tables: []*table.Loaded{{Table: tbl, Def: def}}}
	suite.Run(os.Stdout, table.Options{})
	// Output:
	// FAIL door.test.yaml:10: a locked door opens (wrong on purpose, to show a failure)
	//     after step 1 (event open, line 12):
	//     error: expected none, got invalid_transition: state "locked" does not handle event "open" (it handles unlock)
	//     state: expected opened, got locked
	// 2 passed, 1 failed
}
