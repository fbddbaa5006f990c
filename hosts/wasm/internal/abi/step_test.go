package abi

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/etcd-cni/etcd-ipam/core"
)

// TestStepRoundTrip checks that the step protocol's values come back
// exactly: a request, answers of every kind, every kind of action and the
// capacities, nil and empty slices kept apart, times of every sign.
func TestStepRoundTrip(t *testing.T) {
	a := netip.MustParseAddr("203.0.113.7")
	v6 := netip.MustParseAddr("2001:db8::9")
	set := core.RangeSet{{Subnet: netip.MustParsePrefix("203.0.113.0/24"), RangeStart: a, RangeEnd: a.Next(), Gateway: a.Prev()}}
	seg := core.Segment{Range: 0, From: a, To: a.Next()}
	assigned := []core.Assigned{{Address: netip.PrefixFrom(a, 24), Gateway: a.Prev(), RangeSet: 0}, {Address: netip.PrefixFrom(v6, 64), RangeSet: 1}}
	req := core.Request{
		Sets: []core.RangeSet{set, nil}, Requested: []netip.Addr{a, {}}, Held: []core.Held{{Addr: v6, RangeSet: 1}},
		Node: "node-a", ContainerID: "c\x00d", Positions: []core.Position{{Addr: a, Node: "n", At: -1 << 63}, {}}, Now: 1<<63 - 1,
	}
	answers := []core.Answer{
		{Observed: [][]core.Observation{{{Segment: seg, Taken: []netip.Addr{a}, Complete: true}}, nil, {}}, Taken: []bool{true, false}},
		{Counts: []int64{0, -1, 1 << 40}},
		{Committed: true, Won: 7},
		{Lost: []netip.Addr{a}, Retake: true, Taken: []bool{}},
		{Lost: []netip.Addr{a}, Positions: []core.Position{{Addr: v6, Node: "node-b", At: -5}, {}}},
		{Positions: []core.Position{}},
		{},
	}
	actions := []core.Action{
		{},
		{Read: &core.Read{Searches: [][]core.Segment{{seg}, nil}, Requested: []netip.Addr{a}}},
		{Count: &core.Count{RangeSet: 1, Segments: []core.Segment{seg, seg}}},
		{Offer: &core.Offer{Candidates: [][]core.Assigned{assigned, nil}, Searches: [][]core.Segment{nil, {seg}}, Held: []core.Held{{Addr: a}}}},
		{Offer: &core.Offer{}},
		{Advance: &core.Advance{Positions: assigned}},
		{Wait: &core.Wait{Nanos: 8e6}},
		{Wait: &core.Wait{Nanos: -1 << 63}},
		{Done: &core.Done{Addrs: assigned}},
		{Fail: &core.Failure{Kind: core.RequestedInvalid, RangeSet: 2, Addr: a, Addrs: []netip.Addr{v6}, Err: &core.RequestedError{Addr: a, Set: set, Gateway: true}, Rounds: 64, Reason: "why"}},
		{Fail: &core.Failure{Kind: core.Contention, RangeSet: -1}},
	}
	caps := []core.RangeCapacity{{RangeSet: 1, Range: 2, Capacity: 1<<64 - 1, Excluded: 3, Count: []core.Segment{seg}}, {}}

	var w Writer
	w.Request(req)
	w.Request(core.Request{})
	w.Answers(answers)
	w.Answers(nil)
	for _, act := range actions {
		w.Action(act)
	}
	w.RangeCapacities(caps)
	w.RangeCapacities(nil)

	r := NewReader(w.B)
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, want %#v", name, got, want)
		}
	}
	check("Request", r.Request(), req)
	check("empty Request", r.Request(), core.Request{})
	check("Answers", r.Answers(), answers)
	check("nil Answers", r.Answers(), []core.Answer(nil))
	for _, want := range actions {
		check("Action", r.Action(), want)
	}
	check("RangeCapacities", r.RangeCapacities(), caps)
	check("nil RangeCapacities", r.RangeCapacities(), []core.RangeCapacity(nil))
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownActionTag checks that an action of a kind this encoding does
// not know is malformed, not a zero action.
func TestUnknownActionTag(t *testing.T) {
	r := NewReader([]byte{99})
	r.Action()
	if r.Done() == nil {
		t.Fatal("an unknown action tag decoded without an error")
	}
}
