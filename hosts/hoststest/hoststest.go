// Package hoststest holds the vectors every hosts.Core must answer alike:
// inputs taken from the spec's examples and host-local's rules, each with
// the answer package core gives. hosts/native checks them against core,
// hosts/wasm against core and against native, so both hosts are held to
// one table.
package hoststest

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
)

// Vector is one call on a hosts.Core and the answer it must give.
type Vector struct {
	Name string
	// Call makes the call and returns its results as one comparable value.
	Call func(hosts.Core) any
	// Want is what Call must return.
	Want any
}

// Canonicalized is the result of CanonicalizeRangeSets.
type Canonicalized struct {
	Sets []core.RangeSet
	Err  error
}

// Checked is the result of CheckRequested.
type Checked struct {
	Range int
	Err   error
}

// Requested is what a caller sees of an error of CheckRequested: whether
// errors.As finds a *core.RequestedError in it, its fields and its message.
type Requested struct {
	As      bool
	Err     core.RequestedError
	Message string
}

// As returns what a caller sees of err, an error of CheckRequested.
func As(err error) Requested {
	var re *core.RequestedError
	if !errors.As(err, &re) {
		return Requested{Message: fmt.Sprint(err)}
	}
	return Requested{As: true, Err: *re, Message: err.Error()}
}

// Run checks every vector against c.
func Run(t *testing.T, c hosts.Core) {
	t.Helper()
	for _, v := range Vectors() {
		t.Run(v.Name, func(t *testing.T) {
			if got := v.Call(c); !Same(got, v.Want) {
				t.Errorf("got  %s\nwant %s", Describe(got), Describe(v.Want))
			}
		})
	}
}

// Same reports whether two results are identical: equal values, and errors
// of the same type with the same fields (reflect.DeepEqual compares both).
func Same(a, b any) bool { return reflect.DeepEqual(a, b) }

// Describe renders a result, errors with their types, for failure messages.
func Describe(v any) string {
	switch r := v.(type) {
	case Canonicalized:
		return fmt.Sprintf("{Sets:%v Err:%T %v}", r.Sets, r.Err, r.Err)
	case Checked:
		if re, ok := r.Err.(*core.RequestedError); ok {
			return fmt.Sprintf("{Range:%d Err:%T %+v}", r.Range, re, *re)
		}
		return fmt.Sprintf("{Range:%d Err:%T %v}", r.Range, r.Err, r.Err)
	}
	return fmt.Sprintf("%+v", v)
}

// Set canonicalizes one range set natively, for use as an input; it panics
// on a bad spec (a bug in the table).
func Set(specs ...core.RangeSpec) core.RangeSet {
	sets, err := core.CanonicalizeRangeSets([][]core.RangeSpec{specs})
	if err != nil {
		panic(err)
	}
	return sets[0]
}
