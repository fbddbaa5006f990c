package core

import (
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ---- helpers ----

// segString renders segments as "r0:from-to r1:from-to".
func segString(segs []Segment) string {
	parts := make([]string, len(segs))
	for i, s := range segs {
		parts[i] = fmt.Sprintf("r%d:%s-%s", s.Range, s.From, s.To)
	}
	return strings.Join(parts, " ")
}

// addrs parses address literals; "" gives the zero Addr.
func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		if s != "" {
			out[i] = ip(s)
		}
	}
	return out
}

// sortedTaken returns the keys of taken in ascending order.
func sortedTaken(taken map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(taken))
	for a, ok := range taken {
		if ok {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// observe builds what a store reading seg would see given the ascending
// list of taken addresses. limit <= 0 means no limit. When exactly limit
// addresses are found, uncertain decides whether the store says complete
// (it knows there are no more) or not (it stopped at its limit).
func observe(seg Segment, sorted []netip.Addr, limit int, uncertain bool) Observation {
	var in []netip.Addr
	for _, a := range sorted {
		if !a.Less(seg.From) && !seg.To.Less(a) {
			in = append(in, a)
		}
	}
	obs := Observation{Segment: seg, Taken: in, Complete: true}
	if limit > 0 && len(in) > limit {
		obs.Taken, obs.Complete = in[:limit], false
	} else if limit > 0 && len(in) == limit && uncertain {
		obs.Complete = false
	}
	return obs
}

// observeAll observes every segment completely.
func observeAll(segs []Segment, taken []netip.Addr) []Observation {
	slices.SortFunc(taken, netip.Addr.Compare)
	obs := make([]Observation, len(segs))
	for i, s := range segs {
		obs[i] = observe(s, taken, 0, false)
	}
	return obs
}

// chooseComplete runs SearchOrder and Choose with complete observations.
func chooseComplete(s RangeSet, last netip.Addr, taken []netip.Addr, pick int) Choice {
	return s.Choose(observeAll(s.SearchOrder(last), slices.Clone(taken)), pick)
}

// choiceString renders a Choice for comparisons.
func choiceString(c Choice) string {
	switch {
	case c.Found:
		return fmt.Sprintf("found %s in r%d", c.Addr, c.Range)
	case c.Exhausted:
		return "exhausted"
	default:
		return "resume " + segString(c.Resume)
	}
}

// ---- SearchOrder ----

func TestSearchOrder(t *testing.T) {
	slash29 := []RangeSpec{sub("10.0.0.0/29")}
	three := []RangeSpec{sub("10.0.0.0/30"), sub("10.0.1.0/30"), sub("10.0.2.0/30")}
	multi := []RangeSpec{
		{Subnet: "192.168.1.0/30", RangeStart: "192.168.1.0", RangeEnd: "192.168.1.3"},
		{Subnet: "192.168.2.0/30", RangeStart: "192.168.2.0", RangeEnd: "192.168.2.3"},
	}
	top := []RangeSpec{sub("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124")}
	tests := []struct {
		name  string
		specs []RangeSpec
		last  string
		want  string
	}{
		{"no last", slash29, "", "r0:10.0.0.1-10.0.0.6"},
		{"last in the middle", slash29, "10.0.0.3", "r0:10.0.0.4-10.0.0.6 r0:10.0.0.1-10.0.0.3"},
		{"last at start", slash29, "10.0.0.1", "r0:10.0.0.2-10.0.0.6 r0:10.0.0.1-10.0.0.1"},
		{"last at end", slash29, "10.0.0.6", "r0:10.0.0.1-10.0.0.6"},
		{"last is the broadcast", slash29, "10.0.0.7", "r0:10.0.0.1-10.0.0.6"},
		{"last outside", slash29, "10.0.0.128", "r0:10.0.0.1-10.0.0.6"},
		{"last of the other family", slash29, "::a00:3", "r0:10.0.0.1-10.0.0.6"},
		{"last ipv4-mapped", slash29, "::ffff:10.0.0.3", "r0:10.0.0.4-10.0.0.6 r0:10.0.0.1-10.0.0.3"},
		{"last ipv4-mapped at end", slash29, "::ffff:10.0.0.6", "r0:10.0.0.1-10.0.0.6"},
		{"three, no last", three, "", "r0:10.0.0.1-10.0.0.2 r1:10.0.1.1-10.0.1.2 r2:10.0.2.1-10.0.2.2"},
		{"three, last in second", three, "10.0.1.1",
			"r1:10.0.1.2-10.0.1.2 r2:10.0.2.1-10.0.2.2 r0:10.0.0.1-10.0.0.2 r1:10.0.1.1-10.0.1.1"},
		{"three, last ends first", three, "10.0.0.2",
			"r1:10.0.1.1-10.0.1.2 r2:10.0.2.1-10.0.2.2 r0:10.0.0.1-10.0.0.2"},
		{"three, last ends last", three, "10.0.2.2",
			"r0:10.0.0.1-10.0.0.2 r1:10.0.1.1-10.0.1.2 r2:10.0.2.1-10.0.2.2"},
		{"three, last starts last", three, "10.0.2.1",
			"r2:10.0.2.2-10.0.2.2 r0:10.0.0.1-10.0.0.2 r1:10.0.1.1-10.0.1.2 r2:10.0.2.1-10.0.2.1"},
		// host-local: "when lastReservedIP is at the end of one of multi
		// ranges ... should use the first IP of next range as startIP"
		{"host-local multi, last ends first", multi, "192.168.1.3",
			"r1:192.168.2.0-192.168.2.3 r0:192.168.1.0-192.168.1.3"},
		// host-local: "when no lastReservedIP ... should use the first IP of
		// the first range"
		{"host-local multi, no last", multi, "",
			"r0:192.168.1.0-192.168.1.3 r1:192.168.2.0-192.168.2.3"},
		{"ipv6 /64 last at end", []RangeSpec{sub("2001:db8::/64")}, "2001:db8::ffff:ffff:ffff:ffff",
			"r0:2001:db8::1-2001:db8::ffff:ffff:ffff:ffff"},
		{"ipv6 /64 last near end", []RangeSpec{sub("2001:db8::/64")}, "2001:db8::ffff:ffff:ffff:fffe",
			"r0:2001:db8::ffff:ffff:ffff:ffff-2001:db8::ffff:ffff:ffff:ffff r0:2001:db8::1-2001:db8::ffff:ffff:ffff:fffe"},
		{"ipv6 /48 last in the middle", []RangeSpec{sub("2001:db8::/48")}, "2001:db8:0:1::",
			"r0:2001:db8:0:1::1-2001:db8:0:ffff:ffff:ffff:ffff:ffff r0:2001:db8::1-2001:db8:0:1::"},
		{"ipv6 top of space, last at end", top, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
			"r0:ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"ipv6 top of space, last before end", top, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
			"r0:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff r0:ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"},
		{"ipv4 /8 last at end", []RangeSpec{sub("10.0.0.0/8")}, "10.255.255.254", "r0:10.0.0.1-10.255.255.254"},
	}
	for _, tc := range tests {
		s := mustSet(t, tc.specs...)
		var last netip.Addr
		if tc.last != "" {
			last = ip(tc.last)
		}
		if diff := cmp.Diff(tc.want, segString(s.SearchOrder(last)), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// Every address of a small set appears exactly once in the search order,
// whatever the last reserved address.
func TestSearchOrderCoversSetOnce(t *testing.T) {
	sets := []RangeSet{
		mustSet(t, sub("10.0.0.0/29")),
		mustSet(t, sub("10.0.0.0/30"), sub("10.0.1.0/30"), sub("10.0.2.0/30")),
		mustSet(t, RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.9", RangeEnd: "10.0.0.9"}, sub("10.0.1.0/28")),
		mustSet(t, sub("2001:db8::/125"), RangeSpec{Subnet: "2001:db8:1::/120", RangeStart: "2001:db8:1::10", RangeEnd: "2001:db8:1::30"}),
		mustSet(t, sub("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124")),
	}
	for _, s := range sets {
		all := enumerate(s)
		lasts := append(slices.Clone(all), netip.Addr{}, ip("192.0.2.1"), ip("2001:db8:ffff::1"))
		for _, last := range lasts {
			order := s.SearchOrder(last)
			var seen []netip.Addr
			for _, seg := range order {
				if seg.To.Less(seg.From) {
					t.Errorf("%s last %v: empty segment %v", s, last, seg)
				}
				for a := seg.From; a.IsValid() && !seg.To.Less(a); a = a.Next() {
					if !(s[seg.Range].Contains(a)) {
						t.Errorf("%s last %v: %v not in range %d", s, last, a, seg.Range)
					}
					seen = append(seen, a)
				}
			}
			if len(seen) != len(all) {
				t.Errorf("%s last %v: order %s has %d addresses, want %d", s, last, segString(order), len(seen), len(all))
				continue
			}
			slices.SortFunc(seen, netip.Addr.Compare)
			sortedAll := slices.Clone(all)
			slices.SortFunc(sortedAll, netip.Addr.Compare)
			if !slices.Equal(seen, sortedAll) {
				t.Errorf("%s last %v: order %s does not cover the set once", s, last, segString(order))
			}
			// The walk ends with last itself when last is in the set.
			if s.Contains(last) {
				end := order[len(order)-1].To
				if diff := cmp.Diff(last, end, netipEqual); diff != "" {
					t.Errorf("%s (-want +got):\n%s", fmt.Sprintf("%s last %v: final address", s, last), diff)
				}
			}
		}
	}
}

// enumerate lists every address of a small set, range by range.
func enumerate(s RangeSet) []netip.Addr {
	var out []netip.Addr
	for _, r := range s {
		for a := r.RangeStart; a.IsValid() && !r.RangeEnd.Less(a); a = a.Next() {
			out = append(out, a)
		}
	}
	return out
}

// ---- Choose with complete observations: host-local's allocator tests ----

func TestChooseHostLocalRoundRobin(t *testing.T) {
	// host-local: "should allocate ips in round robin" and "when out of ips".
	tests := []struct {
		name    string
		subnets []string
		taken   []string
		last    string
		want    string // "" means exhausted
	}{
		{"fresh start", []string{"10.0.0.0/29"}, nil, "", "10.0.0.2"},
		{"fresh start ipv6", []string{"2001:db8:1::0/64"}, nil, "", "2001:db8:1::2"},
		{"fresh start /30", []string{"10.0.0.0/30"}, nil, "", "10.0.0.2"},
		{"first taken", []string{"10.0.0.0/29"}, []string{"10.0.0.2"}, "", "10.0.0.3"},
		{"next after last reserved", []string{"10.0.0.0/29"}, nil, "10.0.0.5", "10.0.0.6"},
		{"skip taken after last reserved", []string{"10.0.0.0/29"}, []string{"10.0.0.4", "10.0.0.5"}, "10.0.0.3", "10.0.0.6"},
		{"round robin to the beginning", []string{"10.0.0.0/29"}, []string{"10.0.0.6"}, "10.0.0.5", "10.0.0.2"},
		{"last reserved out of range", []string{"10.0.0.0/29"}, []string{"10.0.0.2"}, "10.0.0.128", "10.0.0.3"},
		{"full except last reserved", []string{"10.0.0.0/29"}, []string{"10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, "10.0.0.3", "10.0.0.3"},
		{"multiple subnets", []string{"10.0.0.0/30", "10.0.1.0/30"}, nil, "", "10.0.0.2"},
		{"advance to next subnet", []string{"10.0.0.0/30", "10.0.1.0/30"}, nil, "10.0.0.2", "10.0.1.2"},
		{"roll to start subnet", []string{"10.0.0.0/30", "10.0.1.0/30", "10.0.2.0/30"}, nil, "10.0.2.2", "10.0.0.2"},
		{"out of ips /30", []string{"10.0.0.0/30"}, []string{"10.0.0.2"}, "", ""},
		{"out of ips /29", []string{"10.0.0.0/29"}, []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, "", ""},
		{"out of ips two /30", []string{"10.0.0.0/30", "10.0.1.0/30"}, []string{"10.0.0.2", "10.0.1.2"}, "", ""},
		{"out of ips with last", []string{"10.0.0.0/30", "10.0.1.0/30"}, []string{"10.0.0.2", "10.0.1.2"}, "10.0.1.2", ""},
		{"ipv6 /126 full", []string{"2001:db8::/126"}, []string{"2001:db8::2", "2001:db8::3"}, "2001:db8::2", ""},
		{"ipv6 /126 wraps", []string{"2001:db8::/126"}, []string{"2001:db8::2"}, "2001:db8::2", "2001:db8::3"},
	}
	for _, tc := range tests {
		specs := make([]RangeSpec, len(tc.subnets))
		for i, s := range tc.subnets {
			specs[i] = sub(s)
		}
		s := mustSet(t, specs...)
		var last netip.Addr
		if tc.last != "" {
			last = ip(tc.last)
		}
		c := chooseComplete(s, last, addrs(tc.taken...), 0)
		if tc.want == "" {
			if diff := cmp.Diff("exhausted", choiceString(c), netipEqual); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name, diff)
			}
			continue
		}
		i, _ := s.RangeFor(ip(tc.want))
		if diff := cmp.Diff(fmt.Sprintf("found %s in r%d", tc.want, i), choiceString(c), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// walkFree lists the free addresses Choose offers for pick 0, 1, 2, ...
// with complete observations: host-local's iterator order.
func walkFree(s RangeSet, last netip.Addr, taken []netip.Addr) []string {
	var out []string
	for pick := 0; pick < 1000; pick++ {
		c := chooseComplete(s, last, taken, pick)
		if !c.Found {
			break
		}
		if len(out) > 0 && out[len(out)-1] == c.Addr.String() {
			break // pick is past the end: the last free address again
		}
		out = append(out, c.Addr.String())
	}
	return out
}

func TestChooseIterationOrder(t *testing.T) {
	slash29 := mustSet(t, sub("192.168.1.0/29"))
	tests := []struct {
		name string
		set  RangeSet
		last string
		want string
	}{
		// host-local RangeIter tests.
		{"loop from the beginning", slash29, "", "192.168.1.2 192.168.1.3 192.168.1.4 192.168.1.5 192.168.1.6"},
		{"loop from the end", slash29, "192.168.1.6", "192.168.1.2 192.168.1.3 192.168.1.4 192.168.1.5 192.168.1.6"},
		{"loop from the middle", slash29, "192.168.1.3", "192.168.1.4 192.168.1.5 192.168.1.6 192.168.1.2 192.168.1.3"},
		// Gateways in the middle, at the start and at the end of a range.
		{"gateway in the middle", mustSet(t, RangeSpec{Subnet: "10.0.0.0/29", Gateway: "10.0.0.4"}), "",
			"10.0.0.1 10.0.0.2 10.0.0.3 10.0.0.5 10.0.0.6"},
		{"gateway at the end", mustSet(t, RangeSpec{Subnet: "10.0.0.0/29", Gateway: "10.0.0.6"}), "10.0.0.2",
			"10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.1 10.0.0.2"},
		{"gateway is rangeStart", mustSet(t, RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.12", Gateway: "10.0.0.10"}), "",
			"10.0.0.11 10.0.0.12"},
		{"last is the gateway", slash29, "192.168.1.1", "192.168.1.2 192.168.1.3 192.168.1.4 192.168.1.5 192.168.1.6"},
		// Each range skips its own gateway only: range 0's gateway lies
		// in range 1 and is handed out there.
		{"gateway of another range", mustSet(t,
			RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.11", Gateway: "10.0.1.2"},
			sub("10.0.1.0/29")), "10.0.0.10",
			"10.0.0.11 10.0.1.2 10.0.1.3 10.0.1.4 10.0.1.5 10.0.1.6 10.0.0.10"},
		{"multi ranges with custom gateways", mustSet(t,
			RangeSpec{Subnet: "10.0.0.0/29", RangeStart: "10.0.0.2", RangeEnd: "10.0.0.4", Gateway: "10.0.0.3"},
			RangeSpec{Subnet: "10.0.1.0/29", RangeStart: "10.0.1.0", RangeEnd: "10.0.1.2", Gateway: "10.0.1.0"},
			sub("10.0.2.0/30")), "10.0.1.1",
			"10.0.1.2 10.0.2.2 10.0.0.2 10.0.0.4 10.0.1.1"},
		{"ipv6 top of space", mustSet(t, RangeSpec{Subnet: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126", Gateway: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"}),
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd",
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd"},
	}
	for _, tc := range tests {
		var last netip.Addr
		if tc.last != "" {
			last = ip(tc.last)
		}
		if diff := cmp.Diff(tc.want, strings.Join(walkFree(tc.set, last, nil), " "), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestChooseSequentialAllocation(t *testing.T) {
	// host-local: "should not allocate the broadcast address" — allocate
	// until exhausted, each time from the last reserved address.
	s := mustSet(t, sub("192.168.1.0/29"))
	var last netip.Addr
	var taken []netip.Addr
	var got []string
	for i := 0; i < 10; i++ {
		c := chooseComplete(s, last, taken, 0)
		if !c.Found {
			if !c.Exhausted {
				t.Errorf("allocation %d: %s", i, choiceString(c))
			}
			break
		}
		got = append(got, c.Addr.String())
		taken = append(taken, c.Addr)
		last = c.Addr
	}
	if diff := cmp.Diff("192.168.1.2 192.168.1.3 192.168.1.4 192.168.1.5 192.168.1.6", strings.Join(got, " "), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "sequence", diff)
	}

	// host-local: "should allocate in a round-robin fashion" — a released
	// address is not reused at once.
	c := chooseComplete(s, netip.Addr{}, nil, 0)
	if diff := cmp.Diff(ip("192.168.1.2"), c.Addr, netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "first", diff)
	}
	c = chooseComplete(s, c.Addr, nil, 0) // released, last stays
	if diff := cmp.Diff(ip("192.168.1.3"), c.Addr, netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "after release", diff)
	}
}

func TestChoosePick(t *testing.T) {
	three := mustSet(t, sub("10.0.0.0/29"), sub("10.0.1.0/30"), sub("10.0.2.0/29"))
	taken := addrs("10.0.0.3", "10.0.0.5", "10.0.2.3")
	tests := []struct {
		name string
		last string
		pick int
		want string
	}{
		{"pick 0", "", 0, "found 10.0.0.2 in r0"},
		{"negative pick is 0", "", -5, "found 10.0.0.2 in r0"},
		{"pick 1 skips taken", "", 1, "found 10.0.0.4 in r0"},
		{"pick 2", "", 2, "found 10.0.0.6 in r0"},
		{"pick 3 crosses ranges and skips gateway", "", 3, "found 10.0.1.2 in r1"},
		{"pick 4", "", 4, "found 10.0.2.2 in r2"},
		{"pick 7 is the last free", "", 7, "found 10.0.2.6 in r2"},
		// Beyond the free addresses: the last free one met.
		{"pick past the end", "", 8, "found 10.0.2.6 in r2"},
		{"pick far past the end", "", 1000, "found 10.0.2.6 in r2"},
		{"pick after last wraps", "10.0.2.5", 1, "found 10.0.0.2 in r0"},
		{"pick past the end after last", "10.0.2.5", 100, "found 10.0.2.5 in r2"},
	}
	for _, tc := range tests {
		var last netip.Addr
		if tc.last != "" {
			last = ip(tc.last)
		}
		if diff := cmp.Diff(tc.want, choiceString(chooseComplete(three, last, taken, tc.pick)), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestChooseExhaustion(t *testing.T) {
	tests := []struct {
		name  string
		set   RangeSet
		taken []netip.Addr
	}{
		{"only the gateway free", mustSet(t, sub("10.0.0.0/30")), addrs("10.0.0.2")},
		{"range is the gateway", mustSet(t, RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.1", RangeEnd: "10.0.0.1"}), nil},
		{"all taken", mustSet(t, sub("2001:db8::/126")), addrs("2001:db8::2", "2001:db8::3")},
		{"top of ipv6 space all taken", mustSet(t, sub("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126")),
			addrs("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
		{"gateway taken too", mustSet(t, sub("10.0.0.0/30")), addrs("10.0.0.1", "10.0.0.2")},
	}
	for _, tc := range tests {
		for _, last := range append(enumerate(tc.set), netip.Addr{}) {
			for _, pick := range []int{0, 1, 5} {
				c := chooseComplete(tc.set, last, tc.taken, pick)
				if diff := cmp.Diff("exhausted", choiceString(c), netipEqual); diff != "" {
					t.Errorf("%s (-want +got):\n%s", fmt.Sprintf("%s last %v pick %d", tc.name, last, pick), diff)
				}
			}
		}
	}
	// No observation at all: nothing is free.
	s := mustSet(t, sub("10.0.0.0/29"))
	if diff := cmp.Diff("exhausted", choiceString(s.Choose(nil, 0)), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "no observations", diff)
	}
}

func TestChooseHugeRanges(t *testing.T) {
	tests := []struct {
		name  string
		set   RangeSet
		last  string
		taken []netip.Addr
		pick  int
		want  string
	}{
		{"ipv4 /8 fresh", mustSet(t, sub("10.0.0.0/8")), "", nil, 0, "found 10.0.0.2 in r0"},
		{"ipv4 /8 wraps", mustSet(t, sub("10.0.0.0/8")), "10.255.255.254", addrs("10.0.0.2"), 0, "found 10.0.0.3 in r0"},
		{"ipv4 /8 crosses octets", mustSet(t, sub("10.0.0.0/8")), "10.0.0.254", addrs("10.0.0.255", "10.0.1.0"), 0, "found 10.0.1.1 in r0"},
		{"ipv6 /64 fresh", mustSet(t, sub("2001:db8::/64")), "", addrs("2001:db8::2", "2001:db8::3"), 0, "found 2001:db8::4 in r0"},
		{"ipv6 /64 at the end", mustSet(t, sub("2001:db8::/64")), "2001:db8::ffff:ffff:ffff:fffe", nil, 0, "found 2001:db8::ffff:ffff:ffff:ffff in r0"},
		{"ipv6 /64 wraps", mustSet(t, sub("2001:db8::/64")), "2001:db8::ffff:ffff:ffff:ffff", nil, 0, "found 2001:db8::2 in r0"},
		{"ipv6 /48 far pick", mustSet(t, sub("2001:db8::/48")), "2001:db8:0:1::", nil, 300, "found 2001:db8:0:1::12d in r0"},
		{"ipv6 /48 and /64", mustSet(t, sub("2001:db8::/48"), sub("2001:db8:1::/64")), "2001:db8:0:ffff:ffff:ffff:ffff:fffe",
			addrs("2001:db8:0:ffff:ffff:ffff:ffff:ffff", "2001:db8:1::2"), 1, "found 2001:db8:1::4 in r1"},
	}
	for _, tc := range tests {
		var last netip.Addr
		if tc.last != "" {
			last = ip(tc.last)
		}
		if diff := cmp.Diff(tc.want, choiceString(chooseComplete(tc.set, last, tc.taken, tc.pick)), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// ---- Choose with incomplete observations ----

func TestChooseIncomplete(t *testing.T) {
	s29 := mustSet(t, sub("10.0.0.0/29")) // gateway .1, range .1-.6
	whole := Segment{Range: 0, From: ip("10.0.0.1"), To: ip("10.0.0.6")}
	three := mustSet(t, sub("10.0.0.0/30"), sub("10.0.1.0/30"), sub("10.0.2.0/30"))
	threeOrder := three.SearchOrder(ip("10.0.1.1"))
	tests := []struct {
		name string
		set  RangeSet
		obs  []Observation
		pick int
		want string
	}{
		{"nothing known", s29, []Observation{{Segment: whole}}, 0,
			"resume r0:10.0.0.1-10.0.0.6"},
		{"gateway and taken before the limit", s29, []Observation{{Segment: whole, Taken: addrs("10.0.0.2", "10.0.0.3", "10.0.0.4")}}, 0,
			"resume r0:10.0.0.5-10.0.0.6"},
		{"free before the first taken", s29, []Observation{{Segment: whole, Taken: addrs("10.0.0.3", "10.0.0.4", "10.0.0.5")}}, 0,
			"found 10.0.0.2 in r0"},
		{"free between taken", s29, []Observation{{Segment: whole, Taken: addrs("10.0.0.2", "10.0.0.3", "10.0.0.5")}}, 0,
			"found 10.0.0.4 in r0"},
		{"pick not reached: last free met", s29, []Observation{{Segment: whole, Taken: addrs("10.0.0.3", "10.0.0.4", "10.0.0.5")}}, 3,
			"found 10.0.0.2 in r0"},
		{"pick reached before the limit", s29, []Observation{{Segment: whole, Taken: addrs("10.0.0.4", "10.0.0.5")}}, 1,
			"found 10.0.0.3 in r0"},
		// The last taken address is the segment's end: nothing is unknown.
		{"incomplete but ends at To", s29, []Observation{{Segment: whole, Taken: addrs("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6")}}, 0,
			"exhausted"},
		{"incomplete ends at To, free inside", s29, []Observation{{Segment: whole, Taken: addrs("10.0.0.4", "10.0.0.5", "10.0.0.6")}}, 1,
			"found 10.0.0.3 in r0"},
		{"incomplete ends at To, pick past", s29, []Observation{{Segment: whole, Taken: addrs("10.0.0.4", "10.0.0.5", "10.0.0.6")}}, 9,
			"found 10.0.0.3 in r0"},
		// Resume carries the later segments untouched.
		{"resume in the middle of the order", three, []Observation{
			{Segment: threeOrder[0], Taken: addrs("10.0.1.2")},
			{Segment: threeOrder[1], Taken: addrs("10.0.2.2")},
			{Segment: threeOrder[2]},
			{Segment: threeOrder[3], Complete: true},
		}, 0, "resume r0:10.0.0.1-10.0.0.2 r1:10.0.1.1-10.0.1.1"},
		{"incomplete after a complete miss", three, []Observation{
			{Segment: threeOrder[0], Taken: addrs("10.0.1.2"), Complete: true},
			{Segment: threeOrder[1]},
			{Segment: threeOrder[2], Complete: true},
			{Segment: threeOrder[3], Complete: true},
		}, 0, "resume r2:10.0.2.1-10.0.2.2 r0:10.0.0.1-10.0.0.2 r1:10.0.1.1-10.0.1.1"},
		{"free met before an incomplete segment", three, []Observation{
			{Segment: threeOrder[0], Complete: true},
			{Segment: threeOrder[1]},
			{Segment: threeOrder[2]},
			{Segment: threeOrder[3]},
		}, 4, "found 10.0.1.2 in r1"},
		// Taken addresses outside the segment are ignored.
		{"taken before From", s29, []Observation{{Segment: Segment{Range: 0, From: ip("10.0.0.4"), To: ip("10.0.0.6")}, Taken: addrs("10.0.0.2", "10.0.0.5"), Complete: true}}, 0,
			"found 10.0.0.4 in r0"},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, choiceString(tc.set.Choose(tc.obs, tc.pick)), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestChooseResume(t *testing.T) {
	// A store that reads at most 2 taken addresses per segment.
	s := mustSet(t, sub("10.0.0.0/30"), sub("10.0.1.0/29"), sub("10.0.2.0/30"))
	taken := sortedTaken(map[netip.Addr]bool{
		ip("10.0.1.3"): true, ip("10.0.1.4"): true, ip("10.0.1.5"): true, ip("10.0.1.6"): true,
		ip("10.0.2.2"): true,
	})
	segs := s.SearchOrder(ip("10.0.0.2"))
	if diff := cmp.Diff("r1:10.0.1.1-10.0.1.6 r2:10.0.2.1-10.0.2.2 r0:10.0.0.1-10.0.0.2", segString(segs), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "order", diff)
	}
	// rounds searches with a store that reads two taken addresses per
	// segment, resuming until Choose decides.
	rounds := func(segs []Segment, taken []netip.Addr) string {
		var out []string
		for round := 0; round < 10; round++ {
			obs := make([]Observation, len(segs))
			for i, sg := range segs {
				obs[i] = observe(sg, taken, 2, false)
			}
			c := s.Choose(obs, 0)
			out = append(out, choiceString(c))
			if c.Found || c.Exhausted {
				break
			}
			segs = c.Resume
		}
		return strings.Join(out, " | ")
	}
	if diff := cmp.Diff("found 10.0.1.2 in r1", rounds(segs, taken), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "rounds", diff)
	}

	// Now 10.0.1.2 is taken too: the store stops at 10.0.1.3 and the
	// allocator must resume after it, twice, before moving on.
	taken = append(taken, ip("10.0.1.2"))
	slices.SortFunc(taken, netip.Addr.Compare)
	if diff := cmp.Diff("resume r1:10.0.1.4-10.0.1.6 r2:10.0.2.1-10.0.2.2 r0:10.0.0.1-10.0.0.2 | "+
		"resume r1:10.0.1.6-10.0.1.6 r2:10.0.2.1-10.0.2.2 r0:10.0.0.1-10.0.0.2 | "+
		"found 10.0.0.2 in r0", rounds(s.SearchOrder(ip("10.0.0.2")), taken), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "rounds", diff)
	}
}

// ---- simulation against a transliteration of host-local ----

// hostLocalNext is host-local's allocator (GetIter + RangeIter.Next + the
// reserve loop of IPAllocator.Get) written over netip: it returns the
// address host-local would reserve, or false when none is free.
func hostLocalNext(s RangeSet, last netip.Addr, taken map[netip.Addr]bool) (netip.Addr, bool) {
	idx := 0
	var cur, start netip.Addr
	if i, ok := s.RangeFor(last); ok {
		idx, cur = i, last
	} else {
		start = s[0].RangeStart
	}
	next := func() (netip.Addr, bool) {
		for {
			r := s[idx]
			if !cur.IsValid() {
				cur, start = r.RangeStart, r.RangeStart
			} else {
				if cur == r.RangeEnd {
					idx = (idx + 1) % len(s)
					r = s[idx]
					cur = r.RangeStart
				} else {
					cur = cur.Next()
				}
				if !start.IsValid() {
					start = cur
				} else if cur == start {
					return netip.Addr{}, false
				}
			}
			if cur != r.Gateway {
				return cur, true
			}
		}
	}
	for {
		a, ok := next()
		if !ok || !taken[a] {
			return a, ok
		}
	}
}

// coreNext allocates with SearchOrder and Choose, reading the taken
// addresses through a store that returns at most limit per segment.
func coreNext(t *testing.T, s RangeSet, last netip.Addr, taken map[netip.Addr]bool, limit int, rng *rand.Rand) (netip.Addr, bool, int) {
	t.Helper()
	sorted := sortedTaken(taken)
	segs := s.SearchOrder(last)
	for round := 1; round <= 1000; round++ {
		obs := make([]Observation, len(segs))
		for i, sg := range segs {
			obs[i] = observe(sg, sorted, limit, rng.Intn(2) == 0)
		}
		c := s.Choose(obs, 0)
		switch {
		case c.Found && c.Exhausted:
			t.Fatalf("choice both found and exhausted: %+v", c)
		case c.Found:
			i, ok := s.RangeFor(c.Addr)
			if !ok || i != c.Range {
				t.Fatalf("found %v in r%d, but RangeFor says %d, %v", c.Addr, c.Range, i, ok)
			}
			return c.Addr, true, round
		case c.Exhausted:
			return netip.Addr{}, false, round
		case len(c.Resume) == 0:
			t.Fatalf("choice neither found, exhausted nor resumable: %+v", c)
		}
		segs = c.Resume
	}
	t.Fatalf("no decision after 1000 rounds")
	return netip.Addr{}, false, 0
}

// simulationConfigs are the range sets the simulation runs over.
var simulationConfigs = [][]RangeSpec{
	{sub("10.0.0.0/29")},
	{sub("10.0.0.0/30")},
	{sub("10.0.0.0/30"), sub("10.0.1.0/30"), sub("10.0.2.0/30")},
	{
		{Subnet: "10.0.0.0/27", RangeStart: "10.0.0.4", RangeEnd: "10.0.0.20", Gateway: "10.0.0.10"},
		{Subnet: "10.0.1.0/28", Gateway: "10.0.1.7"},
		{Subnet: "10.0.2.0/29", RangeStart: "10.0.2.0", RangeEnd: "10.0.2.7", Gateway: "10.0.2.0"},
	},
	{
		{Subnet: "192.168.1.0/30", RangeStart: "192.168.1.0", RangeEnd: "192.168.1.3"},
		{Subnet: "192.168.2.0/30", RangeStart: "192.168.2.0", RangeEnd: "192.168.2.3"},
	},
	{sub("2001:db8::/125"), {Subnet: "2001:db8:1::/120", RangeStart: "2001:db8:1::10", RangeEnd: "2001:db8:1::30", Gateway: "2001:db8:1::20"}},
	{
		{Subnet: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124", Gateway: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		sub("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffe0/124"),
	},
	{{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.14", Gateway: "10.0.1.3"}, sub("10.0.1.0/29")},
	{
		{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.5", RangeEnd: "10.0.0.5"},
		{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.7", RangeEnd: "10.0.0.7", Gateway: "10.0.0.7"},
		{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.9", RangeEnd: "10.0.0.12", Gateway: "10.0.0.11"},
	},
}

func TestSimulationAgainstHostLocal(t *testing.T) {
	const sequences, ops = 300, 200
	rng := rand.New(rand.NewSource(20240601))
	var allocs, exhausted, resumed, requests int
	for seq := 0; seq < sequences; seq++ {
		s := mustSet(t, simulationConfigs[seq%len(simulationConfigs)]...)
		limit := 1 + rng.Intn(3)
		all := enumerate(s)
		outside := []netip.Addr{ip("172.16.0.1"), ip("2001:db8:ffff::1"), {}}
		taken := map[netip.Addr]bool{}
		var last netip.Addr
		for op := 0; op < ops; op++ {
			switch n := rng.Intn(100); {
			case n < 55: // allocate
				want, wantOK := hostLocalNext(s, last, taken)
				got, gotOK, rounds := coreNext(t, s, last, taken, limit, rng)
				if got != want || gotOK != wantOK {
					t.Fatalf("seq %d op %d set %s last %v limit %d taken %v: core gave %v,%v; host-local %v,%v",
						seq, op, s, last, limit, sortedTaken(taken), got, gotOK, want, wantOK)
				}
				if rounds > 1 {
					resumed++
				}
				if !gotOK {
					exhausted++
					continue
				}
				allocs++
				if !(!taken[got]) {
					t.Errorf("seq %d op %d: %v handed out twice", seq, op, got)
				}
				taken[got], last = true, got
			case n < 90: // release a random taken address
				if ts := sortedTaken(taken); len(ts) > 0 {
					delete(taken, ts[rng.Intn(len(ts))])
				}
			case n < 97: // request a specific address
				a := all[rng.Intn(len(all))]
				i, err := s.CheckRequested(a)
				if r, _ := s.RangeFor(a); a == s[r].Gateway {
					if !(err != nil) {
						t.Errorf("seq %d op %d: gateway %v accepted", seq, op, a)
					}
					continue
				}
				if err != nil || i < 0 || !s[i].Contains(a) {
					t.Fatalf("seq %d op %d: CheckRequested(%v) = %d, %v", seq, op, a, i, err)
				}
				if !taken[a] {
					requests++
					taken[a], last = true, a
				}
			default: // the last reserved address no longer fits the set
				last = outside[rng.Intn(len(outside))]
			}
		}
	}
	t.Logf("%d allocations, %d exhaustions, %d resumed searches, %d requested", allocs, exhausted, resumed, requests)
	if !(exhausted > 100) {
		t.Errorf("too few exhaustions (%d): the simulation does not reach full sets", exhausted)
	}
	if !(resumed > 1000) {
		t.Errorf("too few resumed searches (%d): incomplete observations are not exercised", resumed)
	}
}

// ---- fuzzing ----

func FuzzCanonicalizeRangeSets(f *testing.F) {
	f.Add("192.0.2.0/24", "", "", "", "", "", "", "", uint8(0))
	f.Add("10.1.2.0/24", "10.1.2.9", "10.1.2.20", "10.1.2.30", "10.1.4.0/24", "", "", "", uint8(1))
	f.Add("10.1.0.0/22", "", "", "", "10.1.2.0/24", "", "", "", uint8(1))
	f.Add("10.1.0.0/22", "", "", "", "2001:db8:5::/64", "", "", "", uint8(1))
	f.Add("192.168.0.0/20", "", "", "", "192.168.2.0/24", "", "", "", uint8(2))
	f.Add("2001:db8:1::/64", "2001:db8:1::40", "2001:db8:1::50", "", "2001:db8::/126", "", "", "2001:db8::3", uint8(3))
	f.Add("192.0.2.12/24", "", "", "", "192.0.2.0/31", "", "", "", uint8(2))
	f.Add("::ffff:10.0.0.0/104", "", "", "", "fe80::%eth0/64", "", "", "", uint8(1))
	f.Add("192.168.1.0/30", "192.168.1.0", "192.168.1.3", "", "192.168.2.0/30", "192.168.2.0", "192.168.2.3", "", uint8(1))
	f.Add("10.0.0.0/24", "10.0.0.255", "", "", "10.0.0.0/24", "", "10.0.0.0", "::1", uint8(1))
	f.Add("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124", "", "", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0", "", "", "", uint8(2))
	f.Add("10.0.0.0/8", "", "", "", "0.0.0.0/0", "", "", "", uint8(2))
	f.Fuzz(func(t *testing.T, sub1, start1, end1, gw1, sub2, start2, end2, gw2 string, shape uint8) {
		r1 := RangeSpec{Subnet: sub1, RangeStart: start1, RangeEnd: end1, Gateway: gw1}
		r2 := RangeSpec{Subnet: sub2, RangeStart: start2, RangeEnd: end2, Gateway: gw2}
		var specs [][]RangeSpec
		switch shape % 5 {
		case 0:
			specs = [][]RangeSpec{{r1}}
		case 1:
			specs = [][]RangeSpec{{r1, r2}}
		case 2:
			specs = [][]RangeSpec{{r1}, {r2}}
		case 3:
			specs = [][]RangeSpec{{r2}, {r1, r2}}
		case 4:
			specs = [][]RangeSpec{{r1}, {}, {r2}}
		}
		sets, err := CanonicalizeRangeSets(specs)
		problems := ValidateRangeSets(specs)
		for _, p := range problems {
			if p.RangeSet < -1 || p.RangeSet >= len(specs) || p.Range < -1 ||
				(p.RangeSet >= 0 && p.Range >= len(specs[p.RangeSet])) || (p.RangeSet < 0 && p.Range >= 0) {
				t.Errorf("problem out of bounds: %+v", *p)
			}
			if p.Error() == "" || p.Reason == "" {
				t.Errorf("empty problem: %+v", *p)
			}
		}
		if err != nil {
			if len(problems) == 0 {
				t.Fatalf("CanonicalizeRangeSets failed (%v) but ValidateRangeSets found nothing", err)
			}
			if err.Error() != problems[0].Error() {
				t.Fatalf("first problems differ: %v vs %v", err, problems[0])
			}
			if sets != nil {
				t.Fatalf("sets returned with an error")
			}
			return
		}
		if len(problems) != 0 {
			t.Fatalf("CanonicalizeRangeSets succeeded but ValidateRangeSets found %v", problems)
		}
		if len(sets) != len(specs) {
			t.Fatalf("%d sets for %d specs", len(sets), len(specs))
		}
		for i, s := range sets {
			for j, r := range s {
				checkCanonicalRange(t, fmt.Sprintf("set %d range %d", i, j), r)
				if r.Family() != s.Family() {
					t.Errorf("set %d mixes families", i)
				}
				for k := j + 1; k < len(s); k++ {
					if r.Overlaps(s[k]) {
						t.Errorf("set %d: ranges %d and %d overlap", i, j, k)
					}
				}
			}
			for k := i + 1; k < len(sets); k++ {
				if s.Overlaps(sets[k]) {
					t.Errorf("sets %d and %d overlap", i, k)
				}
			}
			checkSearchOrderCovers(t, s)
		}
	})
}

// checkCanonicalRange checks the invariants of a canonical range.
func checkCanonicalRange(t *testing.T, what string, r Range) {
	t.Helper()
	if !r.Subnet.IsValid() || r.Subnet != r.Subnet.Masked() || r.Subnet.Addr().Is4In6() || r.Subnet.Addr().Zone() != "" {
		t.Errorf("%s: bad subnet %v", what, r.Subnet)
	}
	if r.Subnet.Bits() > r.Subnet.Addr().BitLen()-2 {
		t.Errorf("%s: subnet %v too small", what, r.Subnet)
	}
	if r.RangeEnd.Less(r.RangeStart) {
		t.Errorf("%s: start %v after end %v", what, r.RangeStart, r.RangeEnd)
	}
	if !r.Contains(r.RangeStart) || !r.Contains(r.RangeEnd) {
		t.Errorf("%s: %v does not contain its ends", what, r)
	}
	if !r.Gateway.IsValid() || r.Gateway.BitLen() != r.Subnet.Addr().BitLen() || r.Gateway.Zone() != "" {
		t.Errorf("%s: bad gateway %v", what, r.Gateway)
	}
	for _, a := range []netip.Addr{r.RangeStart, r.RangeEnd, r.Gateway} {
		if a.Is4In6() {
			t.Errorf("%s: IPv4-mapped address %v", what, a)
		}
	}
	again, err := CanonicalizeRange(r.Spec())
	if err != nil || !cmp.Equal(again, r, netipEqual) {
		t.Errorf("%s: Spec() does not round-trip: %v, %v", what, again, err)
	}
	if c := r.Capacity(); c == 0 && !(r.RangeStart == r.RangeEnd && r.RangeStart == r.Gateway) {
		t.Errorf("%s: zero capacity", what)
	}
}

// checkSearchOrderCovers checks that the search order from several starting
// points covers exactly Capacity allocatable addresses (small sets) and
// that every segment lies in its range.
func checkSearchOrderCovers(t *testing.T, s RangeSet) {
	t.Helper()
	const small = 1 << 12
	capacity := s.Capacity()
	lasts := []netip.Addr{{}}
	for _, r := range s {
		lasts = append(lasts, r.RangeStart, r.RangeEnd, r.RangeStart.Next(), r.RangeEnd.Prev(), r.Gateway)
	}
	for _, last := range lasts {
		order := s.SearchOrder(last)
		var total uint64
		for _, seg := range order {
			if seg.Range < 0 || seg.Range >= len(s) {
				t.Fatalf("last %v: segment %+v names no range", last, seg)
			}
			r := s[seg.Range]
			if seg.To.Less(seg.From) || !r.Contains(seg.From) || !r.Contains(seg.To) {
				t.Fatalf("last %v: segment %+v not inside %v", last, seg, r)
			}
			n := distance(seg.From, seg.To)
			if total+n < total {
				total = ^uint64(0)
			} else {
				total += n
			}
		}
		if capacity >= small {
			if total < capacity {
				t.Errorf("last %v: order %s has %d addresses, capacity %d", last, segString(order), total, capacity)
			}
			continue
		}
		seen := map[netip.Addr]bool{}
		var allocatable uint64
		for _, seg := range order {
			for a := seg.From; ; a = a.Next() {
				if seen[a] {
					t.Fatalf("last %v: %v appears twice in %s", last, a, segString(order))
				}
				seen[a] = true
				if a != s[seg.Range].Gateway {
					allocatable++
				}
				if a == seg.To {
					break
				}
			}
		}
		if allocatable != capacity {
			t.Errorf("last %v: order %s has %d allocatable addresses, Capacity says %d", last, segString(order), allocatable, capacity)
		}
		if uint64(len(seen)) != total {
			t.Errorf("last %v: %d addresses, distance sum %d", last, len(seen), total)
		}
	}
}

// fuzzSet builds a small valid range set from bytes, or false.
func fuzzSet(cfg []byte) (RangeSet, bool) {
	b := func(i int) int {
		if i < len(cfg) {
			return int(cfg[i])
		}
		return 0
	}
	v6 := b(0)&0x80 != 0
	n := 1 + b(0)%3
	specs := make([]RangeSpec, n)
	for i := range specs {
		o := 1 + 4*i
		bits := 26 + b(o)%5 // 64 down to 4 addresses
		size := 1 << (32 - bits)
		base := fmt.Sprintf("10.0.%d.", i)
		spec := RangeSpec{Subnet: fmt.Sprintf("10.0.%d.0/%d", i, bits)}
		addr := func(off int) string { return fmt.Sprintf("%s%d", base, off) }
		if v6 {
			bits = 122 + b(o)%5
			size = 1 << (128 - bits)
			spec.Subnet = fmt.Sprintf("2001:db8:%x::/%d", i, bits)
			addr = func(off int) string { return fmt.Sprintf("2001:db8:%x::%x", i, off) }
		}
		if x := b(o + 1); x < 200 {
			start := x % size
			spec.RangeStart = addr(start)
			if y := b(o + 2); y < 200 {
				spec.RangeEnd = addr(start + y%(size-start))
			}
		}
		switch g := b(o + 3); {
		case g < 150:
			spec.Gateway = addr(g % size)
		case g < 200: // outside the subnet
			if v6 {
				spec.Gateway = fmt.Sprintf("2001:db8:%x::1", i+8)
			} else {
				spec.Gateway = fmt.Sprintf("10.0.%d.1", i+8)
			}
		}
		specs[i] = spec
	}
	sets, err := CanonicalizeRangeSets([][]RangeSpec{specs})
	if err != nil {
		return nil, false
	}
	return sets[0], true
}

func FuzzChoose(f *testing.F) {
	f.Add([]byte{0}, []byte{}, uint16(0), 0, uint8(0))
	f.Add([]byte{2, 4, 255, 255, 255, 4, 255, 255, 255, 4, 255, 255, 255}, []byte{0x0f, 0xf0}, uint16(3), 0, uint8(3))
	f.Add([]byte{1, 3, 3, 10, 5, 4, 0, 3, 0}, []byte{0xff, 0x7f, 0xaa}, uint16(7), 2, uint8(1))
	f.Add([]byte{0x82, 4, 1, 20, 100, 3, 255, 255, 170}, []byte{0x55, 0x55, 0x55}, uint16(1), 1, uint8(6))
	f.Add([]byte{0x81, 0, 255, 255, 255}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, uint16(100), 5, uint8(2))
	f.Add([]byte{0, 4, 255, 255, 255}, []byte{0xfc}, uint16(2), -3, uint8(0))
	f.Fuzz(func(t *testing.T, cfg, takenBits []byte, lastSel uint16, pick int, limitSel uint8) {
		s, ok := fuzzSet(cfg)
		if !ok {
			return
		}
		if pick > 100 || pick < -100 {
			pick %= 100
		}
		all := enumerate(s)
		taken := map[netip.Addr]bool{}
		for k, a := range all {
			if k/8 < len(takenBits) && takenBits[k/8]&(1<<(k%8)) != 0 {
				taken[a] = true
			}
		}
		var last netip.Addr
		if k := int(lastSel) % (len(all) + 2); k < len(all) {
			last = all[k]
		} else if k == len(all) {
			last = ip("192.0.2.1")
		}
		// The free addresses in host-local order, by brute force.
		var free []netip.Addr
		for _, seg := range s.SearchOrder(last) {
			for a := seg.From; ; a = a.Next() {
				if !taken[a] && a != s[seg.Range].Gateway {
					free = append(free, a)
				}
				if a == seg.To {
					break
				}
			}
		}
		position := map[netip.Addr]int{}
		for i, a := range free {
			position[a] = i
		}
		want := max(pick, 0)
		if want >= len(free) {
			want = len(free) - 1
		}
		hostLocal, hostLocalOK := hostLocalNext(s, last, taken)
		if hostLocalOK != (len(free) > 0) || (hostLocalOK && hostLocal != free[0]) {
			t.Fatalf("host-local transliteration gives %v,%v; brute force %v", hostLocal, hostLocalOK, free)
		}

		limit := int(limitSel % 5) // 0: complete observations
		uncertain := limitSel&0x80 != 0
		sorted := sortedTaken(taken)
		segs := s.SearchOrder(last)
		for round := 0; ; round++ {
			if round > len(all)+2 {
				t.Fatalf("no decision after %d rounds", round)
			}
			obs := make([]Observation, len(segs))
			for i, sg := range segs {
				obs[i] = observe(sg, sorted, limit, uncertain)
			}
			c := s.Choose(obs, pick)
			if c.Found {
				if c.Exhausted || c.Resume != nil {
					t.Fatalf("inconsistent choice %+v", c)
				}
				i, in := s.RangeFor(c.Addr)
				if !in || i != c.Range {
					t.Fatalf("found %v in r%d, not in that range of %s", c.Addr, c.Range, s)
				}
				if taken[c.Addr] || c.Addr == s[i].Gateway {
					t.Fatalf("found %v, which is taken or the gateway", c.Addr)
				}
				p, isFree := position[c.Addr]
				if !isFree || p > max(pick, 0) {
					t.Fatalf("found %v at position %d of %v (pick %d)", c.Addr, p, free, pick)
				}
				if (limit == 0 || pick <= 0) && c.Addr != free[want] {
					t.Fatalf("found %v, want %v (pick %d, limit %d)", c.Addr, free[want], pick, limit)
				}
				return
			}
			if c.Exhausted {
				if len(free) > 0 {
					t.Fatalf("exhausted, but %v are free", free)
				}
				return
			}
			if limit == 0 {
				t.Fatalf("complete observations gave no decision: %+v", c)
			}
			if len(c.Resume) == 0 {
				t.Fatalf("no decision and nothing to resume: %+v", c)
			}
			for _, sg := range c.Resume {
				if sg.To.Less(sg.From) || !s[sg.Range].Contains(sg.From) || !s[sg.Range].Contains(sg.To) {
					t.Fatalf("bad resume segment %+v", sg)
				}
			}
			segs = c.Resume
		}
	})
}
