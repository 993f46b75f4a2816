package machine_test

import (
	"strings"
	"testing"

	"github.com/fsmd-io/fsmd/internal/machine"
	"github.com/fsmd-io/fsmd/internal/schema"
)

const keysBase = `name: parcel
initial: open
context:
  number: string
  weight: int
  price: float
  rush: bool
  at: time
  wait: duration
  customer: {tier: string}
  tags: [string]
  extra: any
states:
  open: {on: {close: closed}}
  closed: {final: true}
`

func TestKeysAndIndex(t *testing.T) {
	t.Parallel()
	def, diags := machine.Parse("parcel.yaml", []byte(keysBase+"keys: [number, customer.tier]\nindex: [weight, price, rush, at, wait]\n"))
	if diags.Errors() > 0 {
		t.Fatalf("%v", diags)
	}
	var got []string
	for _, f := range append(def.Keys, def.Index...) {
		got = append(got, f.Name+":"+f.Kind.String())
	}
	want := "number:string customer.tier:string weight:int price:float rush:bool at:time wait:duration"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if k := def.Key("customer.tier"); k == nil || len(k.Path) != 2 || k.Kind != schema.String {
		t.Errorf("Key(customer.tier) = %+v", k)
	}

	cases := []struct {
		name, yaml, want string
	}{
		{"a list", "keys: [tags]", `parcel.yaml:16:8: error: keys: field tags is of type [string], not a scalar`},
		{"an object", "keys: [customer]", `parcel.yaml:16:8: error: keys: field customer is of type {tier: string}, not a scalar`},
		{"any", "index: [extra]", `parcel.yaml:16:9: error: index: field extra is of type any, not a scalar`},
		{"undeclared", "keys: [numbr]", `parcel.yaml:16:8: error: keys: the context of parcel has no field "numbr"`},
		{"undeclared nested", "index: [customer.name]", `parcel.yaml:16:9: error: index: the context of parcel has no field "customer.name"`},
		{"twice", "keys: [number, number]", `parcel.yaml:16:16: error: keys lists "number" twice (first at line 16)`},
		{"not a list", "keys: number", `parcel.yaml:16:7: error: keys must be a list`},
	}
	for _, c := range cases {
		_, diags := machine.Parse("parcel.yaml", []byte(keysBase+c.yaml+"\n"))
		var b strings.Builder
		diags.WriteText(&b)
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("%s: got\n%s\nwant %s", c.name, b.String(), c.want)
		}
	}
}
