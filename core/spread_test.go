package core

import (
	"net/netip"
	"testing"
)

func TestSpotStaysInsideTheSet(t *testing.T) {
	set, err := CanonicalizeRangeSets([][]RangeSpec{{
		{Subnet: "192.0.2.0/29"}, // .1-.6
		{Subnet: "198.51.100.0/24", RangeStart: "198.51.100.10", RangeEnd: "198.51.100.11"}, // 2 addresses
	}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for seed := uint64(0); seed < 64; seed++ {
		a := set[0].Spot(seed)
		if !set[0].Contains(a) {
			t.Fatalf("Spot(%d) = %s is outside the set", seed, a)
		}
		seen[a] = true
	}
	if len(seen) != 8 {
		t.Errorf("64 seeds reached %d of the set's 8 addresses", len(seen))
	}
	if got := set[0].Spot(6); got != netip.MustParseAddr("198.51.100.10") {
		t.Errorf("Spot(6) = %s, want the second range's start", got)
	}
	huge, _ := CanonicalizeRangeSets([][]RangeSpec{{{Subnet: "2001:db8::/32"}}})
	if a := huge[0].Spot(^uint64(0)); !huge[0].Contains(a) {
		t.Errorf("Spot in a saturated set = %s, outside it", a)
	}
}
