package core

import (
	"net/netip"
	"reflect"
	"testing"
)

// The vectors below were hosts.Core's own, when each of these functions
// crossed the WebAssembly boundary by itself; now Step calls them inside
// the core, and both hosts are held to Step's answers (hosts/hoststest,
// FuzzHostsAgree), so the functions' answers are checked here.

type assigned struct{ PerSet, Unmatched []netip.Addr }

func TestDecisionVectors(t *testing.T) {
	addr := netip.MustParseAddr
	seg := func(rng int, from, to string) Segment { return Segment{Range: rng, From: addr(from), To: addr(to)} }
	set := func(specs ...RangeSpec) RangeSet {
		sets, err := CanonicalizeRangeSets([][]RangeSpec{specs})
		if err != nil {
			t.Fatal(err)
		}
		return sets[0]
	}
	v4 := set(RangeSpec{Subnet: "203.0.113.0/24"})
	v6 := set(RangeSpec{Subnet: "2001:db8::/64"})
	two := set(
		RangeSpec{Subnet: "203.0.113.0/24", RangeStart: "203.0.113.10", RangeEnd: "203.0.113.19"},
		RangeSpec{Subnet: "198.51.100.0/24", RangeStart: "198.51.100.10", RangeEnd: "198.51.100.19"},
	)
	small := set(RangeSpec{Subnet: "203.0.113.0/24", RangeStart: "203.0.113.10", RangeEnd: "203.0.113.11"})
	// A /29 whose .3 and .5 are excluded hands out .2, .4 and .6 only.
	holes := set(RangeSpec{Subnet: "192.0.2.0/29", Exclude: []string{"192.0.2.5", "192.0.2.3/32"}})
	for _, v := range []struct {
		Name string
		Call func() any
		Want any
	}{
		{
			Name: "search-order/nothing-reserved",
			Call: func() any { return two.SearchOrder(netip.Addr{}) },
			Want: []Segment{seg(0, "203.0.113.10", "203.0.113.19"), seg(1, "198.51.100.10", "198.51.100.19")},
		},
		{
			Name: "search-order/after-last",
			Call: func() any { return two.SearchOrder(addr("203.0.113.15")) },
			Want: []Segment{
				seg(0, "203.0.113.16", "203.0.113.19"), seg(1, "198.51.100.10", "198.51.100.19"), seg(0, "203.0.113.10", "203.0.113.15"),
			},
		},
		{
			Name: "search-order/last-is-range-end",
			Call: func() any { return two.SearchOrder(addr("203.0.113.19")) },
			Want: []Segment{seg(1, "198.51.100.10", "198.51.100.19"), seg(0, "203.0.113.10", "203.0.113.19")},
		},
		{
			Name: "search-order/ipv4-mapped-last",
			Call: func() any { return two.SearchOrder(addr("::ffff:203.0.113.15")) },
			Want: []Segment{
				seg(0, "203.0.113.16", "203.0.113.19"), seg(1, "198.51.100.10", "198.51.100.19"), seg(0, "203.0.113.10", "203.0.113.15"),
			},
		},
		{
			Name: "choose/first-free-skips-gateway",
			Call: func() any {
				return v4.Choose([]Observation{{
					Segment: seg(0, "203.0.113.1", "203.0.113.254"), Taken: []netip.Addr{addr("203.0.113.2"), addr("203.0.113.3")}, Complete: true,
				}}, 0)
			},
			Want: Choice{Found: true, Addr: addr("203.0.113.4"), Range: 0},
		},
		{
			Name: "choose/second-free",
			Call: func() any {
				return v4.Choose([]Observation{{
					Segment: seg(0, "203.0.113.1", "203.0.113.254"), Taken: []netip.Addr{addr("203.0.113.2"), addr("203.0.113.3")}, Complete: true,
				}}, 1)
			},
			Want: Choice{Found: true, Addr: addr("203.0.113.5"), Range: 0},
		},
		{
			Name: "choose/resume-incomplete-read",
			Call: func() any {
				return v4.Choose([]Observation{
					{Segment: seg(0, "203.0.113.1", "203.0.113.254"), Taken: []netip.Addr{addr("203.0.113.2")}},
				}, 0)
			},
			Want: Choice{Resume: []Segment{seg(0, "203.0.113.3", "203.0.113.254")}},
		},
		{
			Name: "choose/skips-excluded",
			Call: func() any {
				return holes.Choose([]Observation{{
					Segment: seg(0, "192.0.2.1", "192.0.2.6"), Taken: []netip.Addr{addr("192.0.2.2")}, Complete: true,
				}}, 1)
			},
			Want: Choice{Found: true, Addr: addr("192.0.2.6"), Range: 0},
		},
		{
			Name: "choose/excluded-exhausted",
			Call: func() any {
				return holes.Choose([]Observation{{
					Segment: seg(0, "192.0.2.1", "192.0.2.6"), Taken: []netip.Addr{addr("192.0.2.2"), addr("192.0.2.4"), addr("192.0.2.6")}, Complete: true,
				}}, 0)
			},
			Want: Choice{Exhausted: true},
		},
		{
			Name: "choose/exhausted",
			Call: func() any {
				return small.Choose([]Observation{{
					Segment: seg(0, "203.0.113.10", "203.0.113.11"), Taken: []netip.Addr{addr("203.0.113.10"), addr("203.0.113.11")}, Complete: true,
				}}, 0)
			},
			Want: Choice{Exhausted: true},
		},
		{
			Name: "assign-requested/per-family-dedup-unmatched",
			Call: func() any {
				per, un := AssignRequested([]RangeSet{v4, v6}, []netip.Addr{
					addr("2001:db8::5"), addr("203.0.113.7"), addr("::ffff:203.0.113.7"), addr("192.0.2.1"),
				})
				return assigned{per, un}
			},
			Want: assigned{PerSet: []netip.Addr{addr("203.0.113.7"), addr("2001:db8::5")}, Unmatched: []netip.Addr{addr("192.0.2.1")}},
		},
		{
			Name: "assign-requested/none",
			Call: func() any {
				per, un := AssignRequested([]RangeSet{v4}, nil)
				return assigned{per, un}
			},
			Want: assigned{PerSet: []netip.Addr{{}}, Unmatched: []netip.Addr{}},
		},
		{
			Name: "segment-capacity/excluded",
			Call: func() any { return holes.SegmentCapacity(seg(0, "192.0.2.1", "192.0.2.5")) },
			Want: uint64(2),
		},
		{
			Name: "segment-capacity/without-gateway",
			Call: func() any { return v4.SegmentCapacity(seg(0, "203.0.113.1", "203.0.113.10")) },
			Want: uint64(9),
		},
		{
			Name: "split/three",
			Call: func() any { return Split(seg(0, "203.0.113.1", "203.0.113.10"), 3) },
			Want: []Segment{seg(0, "203.0.113.1", "203.0.113.3"), seg(0, "203.0.113.4", "203.0.113.6"), seg(0, "203.0.113.7", "203.0.113.10")},
		},
		{
			Name: "split/none",
			Call: func() any { return Split(seg(0, "203.0.113.1", "203.0.113.10"), 0) },
			Want: []Segment(nil),
		},
		{
			Name: "spot/wraps",
			Call: func() any { return v4.Spot(300) },
			Want: addr("203.0.113.47"),
		},
		{
			Name: "spot/skips-excluded",
			Call: func() any { return holes.Spot(3) }, // .1 .2 .4 .6: the fourth
			Want: addr("192.0.2.6"),
		},
		{
			Name: "spot/ipv6",
			Call: func() any { return v6.Spot(5) },
			Want: addr("2001:db8::6"),
		},
	} {
		if got := v.Call(); !reflect.DeepEqual(got, v.Want) {
			t.Errorf("%s: got %+v, want %+v", v.Name, got, v.Want)
		}
	}
}
