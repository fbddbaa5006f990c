package abi

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/etcd-cni/etcd-ipam/core"
)

// TestRoundTrip checks that every value kind comes back exactly, including
// what a looser encoding would blur: nil against empty slices, IPv4 against
// IPv4-mapped IPv6, zones, invalid addresses and prefixes, negative and
// extreme integers.
func TestRoundTrip(t *testing.T) {
	addrs := []netip.Addr{
		{}, netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("::ffff:203.0.113.7"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1%eth0"),
	}
	prefixes := []netip.Prefix{
		{}, netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32"),
		netip.PrefixFrom(netip.MustParseAddr("203.0.113.1"), 33), // invalid bits
	}
	set := core.RangeSet{
		{Subnet: prefixes[1], RangeStart: addrs[1], RangeEnd: addrs[1].Next(), Gateway: addrs[1]},
		{Subnet: prefixes[2], RangeStart: addrs[3], RangeEnd: addrs[3], Gateway: addrs[3], Exclude: []core.Span{{From: addrs[3], To: addrs[4]}, {}}},
		{Subnet: prefixes[1], Exclude: []core.Span{}},
	}
	segs := []core.Segment{{Range: -1, From: addrs[3], To: addrs[4]}, {Range: 1 << 40}}
	ints := []int{0, 1, -1, 1<<63 - 1, -1 << 63}
	uints := []uint64{0, 127, 128, 1<<64 - 1}

	var w Writer
	for _, a := range addrs {
		w.Addr(a)
	}
	for _, p := range prefixes {
		w.Prefix(p)
	}
	for _, i := range ints {
		w.Int(i)
	}
	for _, u := range uints {
		w.Uint(u)
	}
	w.Addrs(nil)
	w.Addrs([]netip.Addr{})
	w.RangeSpecs([][]core.RangeSpec{{{Subnet: "x", RangeStart: "é", Gateway: "\x00"}, {Exclude: []string{"a", ""}}, {Exclude: []string{}}}, nil, {}})
	w.RangeSets([]core.RangeSet{set, nil})
	w.Observations([]core.Observation{{Segment: segs[0], Taken: addrs, Complete: true}, {}})
	w.SegmentLists([][]core.Segment{segs, nil, {}})
	w.ConfigErrors([]*core.ConfigError{{RangeSet: -1, Range: 2, Reason: "r"}, nil})
	reqErrs := []*core.RequestedError{
		nil,
		{Addr: addrs[1], Set: set},
		{Addr: addrs[1], Set: set, Gateway: true, Subnet: prefixes[1]},
		{Addr: addrs[3], Set: set, Excluded: true, Subnet: prefixes[2]},
		{Addr: addrs[4], Set: core.RangeSet{}},
	}
	for _, e := range reqErrs {
		w.RequestedError(e)
	}

	r := NewReader(w.B)
	for _, want := range addrs {
		if got := r.Addr(); got != want {
			t.Errorf("Addr %v, want %v", got, want)
		}
	}
	for _, want := range prefixes {
		if got := r.Prefix(); got != want {
			t.Errorf("Prefix %v, want %v", got, want)
		}
	}
	for _, want := range ints {
		if got := r.Int(); got != want {
			t.Errorf("Int %d, want %d", got, want)
		}
	}
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, want %#v", name, got, want)
		}
	}
	for _, want := range uints {
		if got := r.Uint(); got != want {
			t.Errorf("Uint %d, want %d", got, want)
		}
	}
	check("nil Addrs", r.Addrs(), []netip.Addr(nil))
	check("empty Addrs", r.Addrs(), []netip.Addr{})
	check("RangeSpecs", r.RangeSpecs(), [][]core.RangeSpec{{{Subnet: "x", RangeStart: "é", Gateway: "\x00"}, {Exclude: []string{"a", ""}}, {Exclude: []string{}}}, nil, {}})
	check("RangeSets", r.RangeSets(), []core.RangeSet{set, nil})
	check("Observations", r.Observations(), []core.Observation{{Segment: segs[0], Taken: addrs, Complete: true}, {}})
	check("SegmentLists", r.SegmentLists(), [][]core.Segment{segs, nil, {}})
	check("ConfigErrors", r.ConfigErrors(), []*core.ConfigError{{RangeSet: -1, Range: 2, Reason: "r"}, nil})
	for _, want := range reqErrs {
		check("RequestedError", r.RequestedError(), want)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

// TestMalformed checks that truncated, padded and corrupt encodings are
// reported, never decoded into something plausible.
func TestMalformed(t *testing.T) {
	var w Writer
	w.RangeSet(core.RangeSet{{Subnet: netip.MustParsePrefix("203.0.113.0/24")}})
	whole := w.B
	for n := 0; n < len(whole); n++ {
		r := NewReader(whole[:n])
		r.RangeSet()
		if r.Done() == nil {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	r := NewReader(append(append([]byte{}, whole...), 0))
	r.RangeSet()
	if r.Done() == nil {
		t.Error("a trailing byte: no error")
	}
	for name, b := range map[string][]byte{
		"unknown address tag": {9},
		"bool out of range":   {2},
		"slice longer than its bytes": {
			0xff, 0xff, 0xff, 0xff, 0x0f,
		},
		"varint over 64 bits": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		r := NewReader(b)
		switch name {
		case "unknown address tag":
			r.Addr()
		case "bool out of range":
			r.Bool()
		case "slice longer than its bytes":
			r.Addrs()
		default:
			r.Uint()
		}
		if !errors.Is(r.Done(), ErrMalformed) {
			t.Errorf("%s: no ErrMalformed", name)
		}
	}
}

// FuzzReader feeds arbitrary bytes to every decoder: none may panic or
// allocate beyond what the input could describe.
func FuzzReader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 2, 4, 203, 0, 113, 0, 48, 4, 203, 0, 113, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		r.RangeSpecs()
		r.RangeSets()
		r.Observations()
		r.ConfigErrors()
		r.RequestedError()
		r.Request()
		r.Answers()
		r.Action()
		r.RangeCapacities()
		_ = r.Done()
	})
}
