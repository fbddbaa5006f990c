package core

import (
	"net/netip"
	"testing"
)

func TestSplitCoversSegmentExactly(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		parts    int
		want     int // number of parts
	}{
		{"198.51.100.2", "198.51.100.254", 16, 16},
		{"198.51.100.2", "198.51.100.5", 16, 4},
		{"198.51.100.7", "198.51.100.7", 16, 1},
		{"2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff", 16, 16},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 16, 16},
		{"255.255.255.250", "255.255.255.255", 4, 4},
	} {
		seg := Segment{From: netip.MustParseAddr(tc.from), To: netip.MustParseAddr(tc.to)}
		parts := Split(seg, tc.parts)
		if len(parts) != tc.want {
			t.Fatalf("Split(%s-%s, %d) gave %d parts, want %d", tc.from, tc.to, tc.parts, len(parts), tc.want)
		}
		if parts[0].From != seg.From || parts[len(parts)-1].To != seg.To {
			t.Errorf("Split(%s-%s) does not start and end with the segment: %v", tc.from, tc.to, parts)
		}
		for i, p := range parts {
			if p.To.Less(p.From) {
				t.Errorf("part %d is empty: %v", i, p)
			}
			if i > 0 && parts[i-1].To.Next() != p.From {
				t.Errorf("parts %d and %d are not adjacent: %v %v", i-1, i, parts[i-1], p)
			}
		}
	}
	if Split(Segment{From: netip.MustParseAddr("192.0.2.9"), To: netip.MustParseAddr("192.0.2.1")}, 4) != nil {
		t.Error("Split of an empty segment returned parts")
	}
}

func TestSegmentCapacityExcludesGateway(t *testing.T) {
	set, err := CanonicalizeRangeSets([][]RangeSpec{{{Subnet: "192.0.2.0/24", RangeStart: "192.0.2.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, to string
		want     uint64
	}{
		{"192.0.2.1", "192.0.2.254", 253}, // .1 is the gateway
		{"192.0.2.2", "192.0.2.254", 253},
		{"192.0.2.1", "192.0.2.1", 0},
		{"192.0.2.9", "192.0.2.8", 0},
	} {
		seg := Segment{From: netip.MustParseAddr(tc.from), To: netip.MustParseAddr(tc.to)}
		if got := set[0].SegmentCapacity(seg); got != tc.want {
			t.Errorf("SegmentCapacity(%s-%s) = %d, want %d", tc.from, tc.to, got, tc.want)
		}
	}
	// A whole default IPv6 /64 segment holds 2^64-1 addresses, one of them
	// the gateway: the count must agree with the range's Capacity.
	v6, err := CanonicalizeRangeSets([][]RangeSpec{{{Subnet: "2001:db8::/64"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := v6[0][0]
	whole := Segment{From: r.RangeStart, To: r.RangeEnd}
	if got := v6[0].SegmentCapacity(whole); got != r.Capacity() || got != ^uint64(0)-1 {
		t.Errorf("SegmentCapacity of a whole /64 = %d, Capacity %d, want 2^64-2 for both", got, r.Capacity())
	}
}
