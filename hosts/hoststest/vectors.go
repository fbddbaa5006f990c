package hoststest

import (
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func seg(rng int, from, to string) core.Segment {
	return core.Segment{Range: rng, From: addr(from), To: addr(to)}
}

// Vectors returns the table. It is built fresh for each caller, so that no
// test can change another's inputs.
func Vectors() []Vector {
	v4 := Set(core.RangeSpec{Subnet: "203.0.113.0/24"})
	v6 := Set(core.RangeSpec{Subnet: "2001:db8::/64"})
	two := Set(
		core.RangeSpec{Subnet: "203.0.113.0/24", RangeStart: "203.0.113.10", RangeEnd: "203.0.113.19"},
		core.RangeSpec{Subnet: "198.51.100.0/24", RangeStart: "198.51.100.10", RangeEnd: "198.51.100.19"},
	)
	// A /29 whose .3 and .5 are excluded hands out .2, .4 and .6 only.
	holes := Set(core.RangeSpec{Subnet: "192.0.2.0/29", Exclude: []string{"192.0.2.5", "192.0.2.3/32"}})
	return append([]Vector{
		{
			Name: "canonicalize/defaults-v4",
			Call: func(c hosts.Core) any {
				s, err := c.CanonicalizeRangeSets([][]core.RangeSpec{{{Subnet: "203.0.113.0/24"}}})
				return Canonicalized{s, err}
			},
			Want: Canonicalized{Sets: []core.RangeSet{{{
				Subnet: prefix("203.0.113.0/24"), RangeStart: addr("203.0.113.1"),
				RangeEnd: addr("203.0.113.254"), Gateway: addr("203.0.113.1"),
			}}}},
		},
		{
			Name: "canonicalize/defaults-v6",
			Call: func(c hosts.Core) any {
				s, err := c.CanonicalizeRangeSets([][]core.RangeSpec{{{Subnet: "2001:db8::/64"}}})
				return Canonicalized{s, err}
			},
			Want: Canonicalized{Sets: []core.RangeSet{{{
				Subnet: prefix("2001:db8::/64"), RangeStart: addr("2001:db8::1"),
				RangeEnd: addr("2001:db8::ffff:ffff:ffff:ffff"), Gateway: addr("2001:db8::1"),
			}}}},
		},
		{
			Name: "canonicalize/explicit-bounds-and-gateway",
			Call: func(c hosts.Core) any {
				s, err := c.CanonicalizeRangeSets([][]core.RangeSpec{{{
					Subnet: "198.51.100.0/24", RangeStart: "198.51.100.10", RangeEnd: "198.51.100.20", Gateway: "198.51.100.254",
				}}})
				return Canonicalized{s, err}
			},
			Want: Canonicalized{Sets: []core.RangeSet{{{
				Subnet: prefix("198.51.100.0/24"), RangeStart: addr("198.51.100.10"),
				RangeEnd: addr("198.51.100.20"), Gateway: addr("198.51.100.254"),
			}}}},
		},
		{
			Name: "canonicalize/no-ranges",
			Call: func(c hosts.Core) any {
				s, err := c.CanonicalizeRangeSets(nil)
				return Canonicalized{s, err}
			},
			Want: Canonicalized{Err: &core.ConfigError{RangeSet: -1, Range: -1,
				Reason: `no IP ranges specified; add "ranges": [[{"subnet": "203.0.113.0/24"}]] to the ipam configuration`}},
		},
		{
			Name: "canonicalize/host-bits",
			Call: func(c hosts.Core) any {
				s, err := c.CanonicalizeRangeSets([][]core.RangeSpec{{{Subnet: "203.0.113.5/24"}}})
				return Canonicalized{s, err}
			},
			Want: Canonicalized{Err: &core.ConfigError{RangeSet: 0, Range: 0,
				Reason: `subnet 203.0.113.5/24 has host bits set; for a /24 the network address is 203.0.113.0, so write "203.0.113.0/24"`}},
		},
		{
			Name: "canonicalize/sets-overlap",
			Call: func(c hosts.Core) any {
				s, err := c.CanonicalizeRangeSets([][]core.RangeSpec{
					{{Subnet: "203.0.113.0/24"}}, {{Subnet: "203.0.113.0/25"}},
				})
				return Canonicalized{s, err}
			},
			Want: Canonicalized{Err: &core.ConfigError{RangeSet: -1, Range: -1,
				Reason: "range set 0 overlaps with range set 1; an address can belong to one range set only"}},
		},
		{
			Name: "validate/every-problem",
			Call: func(c hosts.Core) any {
				return c.ValidateRangeSets([][]core.RangeSpec{
					{{Subnet: "203.0.113.0/31"}},
					{},
				})
			},
			Want: []*core.ConfigError{
				{RangeSet: 0, Range: 0, Reason: "subnet 203.0.113.0/31 is too small to allocate from; use a prefix of /30 or shorter"},
				{RangeSet: 1, Range: -1, Reason: "empty range set; give at least one range with a subnet"},
			},
		},
		{
			Name: "canonicalize/exclude-sorted-merged-clipped",
			Call: func(c hosts.Core) any {
				s, err := c.CanonicalizeRangeSets([][]core.RangeSpec{{{
					Subnet: "198.51.100.0/24", RangeStart: "198.51.100.10", RangeEnd: "198.51.100.40",
					Exclude: []string{"198.51.100.32/28", "198.51.100.30", "198.51.100.31", "198.51.100.0/29"},
				}}})
				return Canonicalized{s, err}
			},
			Want: Canonicalized{Sets: []core.RangeSet{{{
				Subnet: prefix("198.51.100.0/24"), RangeStart: addr("198.51.100.10"),
				RangeEnd: addr("198.51.100.40"), Gateway: addr("198.51.100.1"),
				Exclude: []core.Span{{From: addr("198.51.100.30"), To: addr("198.51.100.40")}},
			}}}},
		},
		{
			Name: "canonicalize/exclude-outside-subnet",
			Call: func(c hosts.Core) any {
				s, err := c.CanonicalizeRangeSets([][]core.RangeSpec{{{Subnet: "203.0.113.0/24", Exclude: []string{"203.0.113.9", "198.51.100.0/28"}}}})
				return Canonicalized{s, err}
			},
			Want: Canonicalized{Err: &core.ConfigError{RangeSet: 0, Range: 0,
				Reason: `exclude entry "198.51.100.0/28" is not inside subnet 203.0.113.0/24; list only addresses and CIDRs of this range's subnet, or move the entry to the range whose subnet holds it`}},
		},
		{
			Name: "canonicalize/exclude-everything",
			Call: func(c hosts.Core) any {
				s, err := c.CanonicalizeRangeSets([][]core.RangeSpec{{{Subnet: "203.0.113.0/30", Exclude: []string{"203.0.113.2"}}}})
				return Canonicalized{s, err}
			},
			Want: Canonicalized{Err: &core.ConfigError{RangeSet: 0, Range: 0,
				Reason: `every address of range 203.0.113.1-203.0.113.2 is excluded or the gateway, so it has none to hand out; remove entries from "exclude" or widen the range`}},
		},
		{
			Name: "validate/none",
			Call: func(c hosts.Core) any {
				return c.ValidateRangeSets([][]core.RangeSpec{{{Subnet: "203.0.113.0/24"}}})
			},
			Want: []*core.ConfigError(nil),
		},
		{
			Name: "check-requested/in-second-range",
			Call: func(c hosts.Core) any {
				i, err := c.CheckRequested(two, addr("198.51.100.12"))
				return Checked{i, err}
			},
			Want: Checked{Range: 1},
		},
		{
			Name: "check-requested/gateway",
			Call: func(c hosts.Core) any {
				i, err := c.CheckRequested(v4, addr("::ffff:203.0.113.1"))
				return Checked{i, err}
			},
			Want: Checked{Range: -1, Err: &core.RequestedError{Addr: addr("203.0.113.1"), Set: v4, Gateway: true, Subnet: prefix("203.0.113.0/24")}},
		},
		{
			Name: "check-requested/errors-as-gateway",
			Call: func(c hosts.Core) any {
				_, err := c.CheckRequested(v6, addr("2001:db8::1"))
				return As(err)
			},
			Want: Requested{As: true,
				Err:     core.RequestedError{Addr: addr("2001:db8::1"), Set: v6, Gateway: true, Subnet: prefix("2001:db8::/64")},
				Message: "requested address 2001:db8::1 is the gateway of subnet 2001:db8::/64; gateways are never handed out"},
		},
		{
			Name: "check-requested/errors-as-excluded",
			Call: func(c hosts.Core) any {
				_, err := c.CheckRequested(holes, addr("192.0.2.5"))
				return As(err)
			},
			Want: Requested{As: true,
				Err: core.RequestedError{Addr: addr("192.0.2.5"), Set: holes, Excluded: true, Subnet: prefix("192.0.2.0/29")},
				Message: `requested address 192.0.2.5 is excluded ("exclude") from its range in subnet 192.0.2.0/29; ` +
					`excluded addresses are never handed out: request another address, or remove it from the range's "exclude" list`},
		},
		{
			Name: "check-requested/outside",
			Call: func(c hosts.Core) any {
				i, err := c.CheckRequested(v4, addr("192.0.2.9"))
				return Checked{i, err}
			},
			Want: Checked{Range: -1, Err: &core.RequestedError{Addr: addr("192.0.2.9"), Set: v4}},
		},
		{
			Name: "check-requested/errors-as-outside",
			Call: func(c hosts.Core) any {
				_, err := c.CheckRequested(two, addr("198.51.100.1"))
				return As(err)
			},
			Want: Requested{As: true,
				Err:     core.RequestedError{Addr: addr("198.51.100.1"), Set: two},
				Message: "requested address 198.51.100.1 is not in range set 203.0.113.10-203.0.113.19,198.51.100.10-198.51.100.19"},
		},
		{
			Name: "range-capacities",
			Call: func(c hosts.Core) any { return capacitiesOf(c, two) },
			Want: []uint64{10, 10},
		},
		{
			Name: "range-capacities/gateway-inside",
			Call: func(c hosts.Core) any { return capacitiesOf(c, v4) },
			Want: []uint64{253},
		},
		{
			Name: "range-capacities/ipv6-saturates",
			Call: func(c hosts.Core) any {
				return capacitiesOf(c, Set(core.RangeSpec{Subnet: "2001:db8::/32"}))
			},
			Want: []uint64{^uint64(0)},
		},
		{
			Name: "range-capacities/excluded",
			Call: func(c hosts.Core) any { return capacitiesOf(c, holes) },
			Want: []uint64{3},
		},
		{
			Name: "range-exclusions",
			Call: func(c hosts.Core) any { return exclusionsOf(c, holes) },
			Want: []uint64{2},
		},
		{
			Name: "range-exclusions/none",
			Call: func(c hosts.Core) any { return exclusionsOf(c, two) },
			Want: []uint64{0, 0},
		},
		{
			Name: "without-excluded",
			Call: func(c hosts.Core) any {
				return c.Capacities([]core.RangeSet{holes})[0].Count // its range: 192.0.2.1-192.0.2.6
			},
			Want: []core.Segment{seg(0, "192.0.2.1", "192.0.2.2"), seg(0, "192.0.2.4", "192.0.2.4"), seg(0, "192.0.2.6", "192.0.2.6")},
		},
		{
			Name: "without-excluded/none",
			Call: func(c hosts.Core) any {
				return c.Capacities([]core.RangeSet{two})[1].Count
			},
			Want: []core.Segment{seg(1, "198.51.100.10", "198.51.100.19")},
		},
	}, stepVectors()...)
}

// capacitiesOf is each range's capacity, from Capacities.
func capacitiesOf(c hosts.Core, set core.RangeSet) []uint64 {
	var out []uint64
	for _, rc := range c.Capacities([]core.RangeSet{set}) {
		out = append(out, rc.Capacity)
	}
	return out
}

// exclusionsOf is how many addresses each range excludes, from Capacities.
func exclusionsOf(c hosts.Core, set core.RangeSet) []uint64 {
	var out []uint64
	for _, rc := range c.Capacities([]core.RangeSet{set}) {
		out = append(out, rc.Excluded)
	}
	return out
}
