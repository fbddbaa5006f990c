package core

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func span(from, to string) Span { return Span{From: ip(from), To: ip(to)} }

func TestExcludeCanonical(t *testing.T) {
	tests := []struct {
		name  string
		spec  RangeSpec
		want  []Span
		spec2 []string // Spec().Exclude
	}{
		{"none", RangeSpec{Subnet: "10.0.0.0/24"}, nil, nil},
		{"empty list", RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{}}, nil, nil},
		{"address and cidr sorted", RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.30", "10.0.0.16/28", " 10.0.0.200 "}},
			[]Span{span("10.0.0.16", "10.0.0.31"), span("10.0.0.200", "10.0.0.200")}, []string{"10.0.0.16/28", "10.0.0.200"}},
		{"adjacent merge", RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.8/30", "10.0.0.12", "10.0.0.13/32", "10.0.0.9"}},
			[]Span{span("10.0.0.8", "10.0.0.13")}, []string{"10.0.0.8/30", "10.0.0.12/31"}},
		{"clipped to range", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.20", Exclude: []string{"10.0.0.0/28", "10.0.0.100", "10.0.0.20/30"}},
			[]Span{span("10.0.0.10", "10.0.0.15"), span("10.0.0.20", "10.0.0.20")}, []string{"10.0.0.10/31", "10.0.0.12/30", "10.0.0.20"}},
		{"outside the range only", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", Exclude: []string{"10.0.0.5", "10.0.0.255"}}, nil, nil},
		{"ipv4-mapped entry", RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"::ffff:10.0.0.7"}}, []Span{span("10.0.0.7", "10.0.0.7")}, []string{"10.0.0.7"}},
		{"ipv6 half", RangeSpec{Subnet: "2001:db8::/64", Exclude: []string{"2001:db8::8000:0:0:0/65"}},
			[]Span{span("2001:db8::8000:0:0:0", "2001:db8::ffff:ffff:ffff:ffff")}, []string{"2001:db8:0:0:8000::/65"}},
	}
	for _, tc := range tests {
		r, err := CanonicalizeRange(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, r.Exclude, netipEqual); diff != "" {
			t.Errorf("%s: Exclude (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.spec2, r.Spec().Exclude); diff != "" {
			t.Errorf("%s: Spec().Exclude (-want +got):\n%s", tc.name, diff)
		}
		again, err := CanonicalizeRange(r.Spec())
		if err != nil || !cmp.Equal(again, r, netipEqual) {
			t.Errorf("%s: Spec() does not round-trip: %+v, %v", tc.name, again, err)
		}
	}
}

func TestExcludeCapacity(t *testing.T) {
	tests := []struct {
		name           string
		spec           RangeSpec
		capacity, excl uint64
	}{
		{"/29 less two", RangeSpec{Subnet: "10.0.0.0/29", Exclude: []string{"10.0.0.3", "10.0.0.5"}}, 3, 2},
		{"gateway excluded counts once", RangeSpec{Subnet: "10.0.0.0/29", Exclude: []string{"10.0.0.0/30"}}, 3, 2},
		{"/24 less a /28", RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.16/28"}}, 253 - 16, 16},
		{"ipv6 /64 less /65", RangeSpec{Subnet: "2001:db8::/64", Exclude: []string{"2001:db8::8000:0:0:0/65"}}, 1<<63 - 2, 1 << 63},
		{"ipv6 /48 less /49 saturates", RangeSpec{Subnet: "2001:db8::/48", Exclude: []string{"2001:db8:0:8000::/49"}}, ^uint64(0), ^uint64(0)},
	}
	for _, tc := range tests {
		r, err := CanonicalizeRange(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := r.Capacity(); got != tc.capacity {
			t.Errorf("%s: Capacity = %d, want %d", tc.name, got, tc.capacity)
		}
		if got := r.ExcludedCount(); got != tc.excl {
			t.Errorf("%s: ExcludedCount = %d, want %d", tc.name, got, tc.excl)
		}
		set := RangeSet{r}
		if got := set.SegmentCapacity(Segment{From: r.RangeStart, To: r.RangeEnd}); got != tc.capacity {
			t.Errorf("%s: SegmentCapacity of the whole range = %d, want %d", tc.name, got, tc.capacity)
		}
	}
	r := mustRange(t, RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.16/28"}})
	if got := (RangeSet{r}).SegmentCapacity(Segment{From: ip("10.0.0.1"), To: ip("10.0.0.20")}); got != 14 {
		t.Errorf("SegmentCapacity(.1-.20) = %d, want 14 (20 less the gateway and .16-.20)", got)
	}
}

func TestChooseSkipsExcluded(t *testing.T) {
	set := RangeSet{mustRange(t, RangeSpec{Subnet: "10.0.0.0/29", Exclude: []string{"10.0.0.3", "10.0.0.5"}})}
	whole := []Observation{{Segment: Segment{From: ip("10.0.0.1"), To: ip("10.0.0.6")}, Complete: true}}
	var got []string
	for pick := 0; pick < 5; pick++ {
		c := set.Choose(whole, pick)
		got = append(got, c.Addr.String())
	}
	if want := []string{"10.0.0.2", "10.0.0.4", "10.0.0.6", "10.0.0.6", "10.0.0.6"}; !slices.Equal(got, want) {
		t.Errorf("picks = %v, want %v", got, want)
	}
	// Round robin after .2: .4, .6, wraps to .2.
	var order []string
	last := netip.Addr{}
	var taken []netip.Addr
	for range 4 {
		var obs []Observation
		for _, seg := range set.SearchOrder(last) {
			var in []netip.Addr
			for _, a := range taken {
				if !a.Less(seg.From) && !seg.To.Less(a) {
					in = append(in, a)
				}
			}
			obs = append(obs, Observation{Segment: seg, Taken: in, Complete: true})
		}
		c := set.Choose(obs, 0)
		if !c.Found {
			order = append(order, "exhausted")
			break
		}
		order = append(order, c.Addr.String())
		taken = append(taken, c.Addr)
		slices.SortFunc(taken, netip.Addr.Compare)
		last = c.Addr
	}
	if want := []string{"10.0.0.2", "10.0.0.4", "10.0.0.6", "exhausted"}; !slices.Equal(order, want) {
		t.Errorf("allocation order = %v, want %v", order, want)
	}

	// An exclusion running to the segment's end, after a taken address.
	c := set.Choose([]Observation{{Segment: Segment{From: ip("10.0.0.4"), To: ip("10.0.0.5")}, Taken: []netip.Addr{ip("10.0.0.4")}, Complete: false}}, 0)
	if !c.Exhausted {
		t.Errorf("segment ending excluded: %+v, want exhausted", c)
	}
	// An incomplete read stopping before an exclusion resumes after it.
	c = set.Choose([]Observation{{Segment: Segment{From: ip("10.0.0.2"), To: ip("10.0.0.6")}, Taken: []netip.Addr{ip("10.0.0.2")}, Complete: false}}, 0)
	if want := []Segment{{From: ip("10.0.0.4"), To: ip("10.0.0.6")}}; !cmp.Equal(c.Resume, want, netipEqual) {
		t.Errorf("resume = %+v, want %+v", c, want)
	}
	// A huge IPv6 exclusion is stepped over at once.
	v6 := RangeSet{mustRange(t, RangeSpec{Subnet: "2001:db8::/64", Exclude: []string{"2001:db8::/65"}})}
	c = v6.Choose([]Observation{{Segment: Segment{From: ip("2001:db8::1"), To: ip("2001:db8::ffff:ffff:ffff:ffff")}, Complete: true}}, 0)
	if !c.Found || c.Addr != ip("2001:db8::8000:0:0:0") {
		t.Errorf("ipv6: %+v, want 2001:db8::8000:0:0:0", c)
	}
}

func TestCheckRequestedExcluded(t *testing.T) {
	set := RangeSet{mustRange(t, RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.1", "10.0.0.16/28"}})}
	for _, a := range []string{"10.0.0.16", "10.0.0.31", "::ffff:10.0.0.20"} {
		_, err := set.CheckRequested(ip(a))
		re, ok := err.(*RequestedError)
		if !ok || !re.Excluded || re.Gateway || re.Subnet != netip.MustParsePrefix("10.0.0.0/24") || re.Addr != ip(a).Unmap() {
			t.Errorf("%s: %#v", a, err)
		}
	}
	// The gateway, excluded too, is reported as the gateway.
	if _, err := set.CheckRequested(ip("10.0.0.1")); err == nil || !err.(*RequestedError).Gateway {
		t.Errorf("gateway: %v", err)
	}
	if i, err := set.CheckRequested(ip("10.0.0.32")); i != 0 || err != nil {
		t.Errorf("10.0.0.32: %d, %v", i, err)
	}
}

func TestSpotNeverExcluded(t *testing.T) {
	set := RangeSet{
		mustRange(t, RangeSpec{Subnet: "10.0.0.0/28", Exclude: []string{"10.0.0.1", "10.0.0.4/30", "10.0.0.14"}}),
		mustRange(t, RangeSpec{Subnet: "10.0.1.0/29", Exclude: []string{"10.0.1.4/30"}}),
	}
	// 14 addresses less 6 excluded, then 6 less 3 excluded (.4-.6): 11.
	seen := map[netip.Addr]bool{}
	for seed := uint64(0); seed < 22; seed++ {
		a := set.Spot(seed)
		if set[0].IsExcluded(a) || set[1].IsExcluded(a) || !set.Contains(a) {
			t.Errorf("Spot(%d) = %s, excluded or outside", seed, a)
		}
		seen[a] = true
	}
	if len(seen) != 11 {
		t.Errorf("spots cover %d addresses, want 11: %v", len(seen), seen)
	}
	if got := set.Spot(0); got != ip("10.0.0.2") {
		t.Errorf("Spot(0) = %s", got)
	}
	if got := set.Spot(8); got != ip("10.0.1.1") {
		t.Errorf("Spot(8) = %s", got)
	}
}

func TestWithoutExcluded(t *testing.T) {
	set := RangeSet{
		mustRange(t, RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.5", "10.0.0.16/28", "10.0.0.254"}}),
		mustRange(t, RangeSpec{Subnet: "10.0.1.0/24"}),
	}
	seg := func(r int, from, to string) Segment { return Segment{Range: r, From: ip(from), To: ip(to)} }
	got := set.WithoutExcluded([]Segment{seg(0, "10.0.0.3", "10.0.0.254"), seg(1, "10.0.1.1", "10.0.1.9"), seg(0, "10.0.0.16", "10.0.0.20"), seg(0, "10.0.0.1", "10.0.0.4")})
	want := []Segment{
		seg(0, "10.0.0.3", "10.0.0.4"), seg(0, "10.0.0.6", "10.0.0.15"), seg(0, "10.0.0.32", "10.0.0.253"),
		seg(1, "10.0.1.1", "10.0.1.9"),
		seg(0, "10.0.0.1", "10.0.0.4"),
	}
	if diff := cmp.Diff(want, got, netipEqual); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
