package core

import (
	"errors"
	"net/netip"
	"testing"
)

// TestMessages pins every message core builds, whole and byte for byte:
// they are user-facing, and core builds them without fmt so that the
// WebAssembly guest need not link it.
func TestMessages(t *testing.T) {
	t.Run("ParseAddr", func(t *testing.T) {
		tests := []struct{ in, want string }{
			{"nope", `"nope" is not an IPv4 or IPv6 address`},
			{"\"a\"\t\x00é\u2028", `"\"a\"\t\x00é\u2028" is not an IPv4 or IPv6 address`},
			{"\xff", `"\xff" is not an IPv4 or IPv6 address`},
			{"fe80::1%eth0", `"fe80::1%eth0" has an IPv6 zone; give the address without %zone`},
			{" fe80::1%eth0 ", `" fe80::1%eth0 " has an IPv6 zone; give the address without %zone`},
		}
		for _, tt := range tests {
			if _, err := ParseAddr(tt.in); err == nil || err.Error() != tt.want {
				t.Errorf("ParseAddr(%q) = %v, want %s", tt.in, err, tt.want)
			}
		}
		if _, err := ParseRequestedAddr("1.2.3.4/x"); err == nil || err.Error() != `"1.2.3.4/x" is not an IP address or CIDR` {
			t.Errorf("ParseRequestedAddr: %v", err)
		}
	})

	t.Run("CanonicalizeRange", func(t *testing.T) {
		tests := []struct {
			spec RangeSpec
			want string
		}{
			{RangeSpec{}, `"subnet" is missing; give a CIDR such as "203.0.113.0/24"`},
			{RangeSpec{Subnet: "10.0.0.0"}, `subnet "10.0.0.0" is not a CIDR; write it as address/prefix-length, e.g. "203.0.113.0/24"`},
			{RangeSpec{Subnet: "::ffff:10.0.0.0/120"}, `subnet "::ffff:10.0.0.0/120" must be a plain IPv4 or IPv6 prefix (no zone, no IPv4-mapped IPv6)`},
			{RangeSpec{Subnet: "10.0.0.0/31"}, `subnet 10.0.0.0/31 is too small to allocate from; use a prefix of /30 or shorter`},
			{RangeSpec{Subnet: "2001:db8::/127"}, `subnet 2001:db8::/127 is too small to allocate from; use a prefix of /126 or shorter`},
			{RangeSpec{Subnet: "10.0.0.1/24"}, `subnet 10.0.0.1/24 has host bits set; for a /24 the network address is 10.0.0.0, so write "10.0.0.0/24"`},
			{RangeSpec{Subnet: "10.0.0.0/24", Gateway: "x"}, `gateway: "x" is not an IPv4 or IPv6 address`},
			{RangeSpec{Subnet: "10.0.0.0/24", Gateway: "2001:db8::1"}, `gateway 2001:db8::1 is not in the address family of subnet 10.0.0.0/24`},
			{RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "fe80::1%eth0"}, `rangeStart: "fe80::1%eth0" has an IPv6 zone; give the address without %zone`},
			{RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.1.1"}, `rangeStart 10.0.1.1 is not in subnet 10.0.0.0/24; pick an address inside the subnet`},
			{RangeSpec{Subnet: "10.0.0.0/24", RangeEnd: "y"}, `rangeEnd: "y" is not an IPv4 or IPv6 address`},
			{RangeSpec{Subnet: "10.0.0.0/24", RangeEnd: "10.0.1.1"}, `rangeEnd 10.0.1.1 is not in subnet 10.0.0.0/24; pick an address inside the subnet`},
			{RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.9", RangeEnd: "10.0.0.8"}, `rangeStart 10.0.0.9 is after rangeEnd 10.0.0.8; swap them`},
			{RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.x"}}, `exclude entry "10.0.0.x" is not an address or CIDR; write an address such as "203.0.113.30" or a CIDR such as "203.0.113.16/28"`},
			{RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.0/33"}}, `exclude entry "10.0.0.0/33" is not an address or CIDR; write an address such as "203.0.113.30" or a CIDR such as "203.0.113.16/28"`},
			{RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.5/28"}}, `exclude entry "10.0.0.5/28" has host bits set; for a /28 the network address is 10.0.0.0, so write "10.0.0.0/28"`},
			{RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.1.30"}}, `exclude entry "10.0.1.30" is not inside subnet 10.0.0.0/24; list only addresses and CIDRs of this range's subnet, or move the entry to the range whose subnet holds it`},
			{RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.0/23"}}, `exclude entry "10.0.0.0/23" is not inside subnet 10.0.0.0/24; list only addresses and CIDRs of this range's subnet, or move the entry to the range whose subnet holds it`},
			{RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"2001:db8::1"}}, `exclude entry "2001:db8::1" is not inside subnet 10.0.0.0/24; list only addresses and CIDRs of this range's subnet, or move the entry to the range whose subnet holds it`},
			{RangeSpec{Subnet: "10.0.0.0/29", Exclude: []string{"10.0.0.2", "10.0.0.3/32", "10.0.0.4/30"}}, `every address of range 10.0.0.1-10.0.0.6 is excluded or the gateway, so it has none to hand out; remove entries from "exclude" or widen the range`},
		}
		for _, tt := range tests {
			if _, err := CanonicalizeRange(tt.spec); err == nil || err.Error() != tt.want {
				t.Errorf("CanonicalizeRange(%+v) = %v, want %s", tt.spec, err, tt.want)
			}
		}
	})

	t.Run("wrapped parse errors unwrap", func(t *testing.T) {
		_, inner := ParseAddr("x")
		for _, spec := range []RangeSpec{
			{Subnet: "10.0.0.0/24", Gateway: "x"},
			{Subnet: "10.0.0.0/24", RangeStart: "x"},
			{Subnet: "10.0.0.0/24", RangeEnd: "x"},
		} {
			_, err := CanonicalizeRange(spec)
			if u := errors.Unwrap(err); u == nil || u.Error() != inner.Error() {
				t.Errorf("CanonicalizeRange(%+v): Unwrap = %v, want %v", spec, u, inner)
			}
		}
	})

	t.Run("ValidateRangeSets", func(t *testing.T) {
		specs := [][]RangeSpec{
			{{Subnet: "10.0.0.0/24"}, {Subnet: "2001:db8::/64"}},
			{},
			{{Subnet: "10.1.0.0/24"}, {Subnet: "10.1.0.0/25"}},
			{{Subnet: "10.0.0.0/16"}},
			{{Subnet: "10.9.0.0/24"}, {Subnet: "10.9.1.0/24"}, {Subnet: "10.9.2.1/24"}},
			{{Subnet: "10.8.0.0/24", Exclude: []string{"10.8.1.0/24"}}},
		}
		want := []string{
			"range set 0, range 1: mixed address families: subnet 2001:db8::/64 is IPv6 but the set's first range is IPv4; put IPv4 and IPv6 ranges in separate range sets",
			"range set 1: empty range set; give at least one range with a subnet",
			"range set 2, range 1: subnets 10.1.0.1-10.1.0.254 and 10.1.0.1-10.1.0.126 overlap; make the ranges of a set disjoint",
			`range set 4, range 2: subnet 10.9.2.1/24 has host bits set; for a /24 the network address is 10.9.2.0, so write "10.9.2.0/24"`,
			`range set 5, range 0: exclude entry "10.8.1.0/24" is not inside subnet 10.8.0.0/24; list only addresses and CIDRs of this range's subnet, or move the entry to the range whose subnet holds it`,
		}
		got := ValidateRangeSets(specs)
		if len(got) != len(want) {
			t.Fatalf("ValidateRangeSets: %d problems %v, want %d", len(got), got, len(want))
		}
		for i := range want {
			if got[i].Error() != want[i] {
				t.Errorf("problem %d = %s, want %s", i, got[i], want[i])
			}
		}
		if got := ValidateRangeSets(nil); len(got) != 1 || got[0].Error() != `no IP ranges specified; add "ranges": [[{"subnet": "203.0.113.0/24"}]] to the ipam configuration` {
			t.Errorf("ValidateRangeSets(nil) = %v", got)
		}
		got = ValidateRangeSets([][]RangeSpec{{{Subnet: "10.0.0.0/16"}}, {{Subnet: "10.0.3.0/24"}}, {{Subnet: "10.0.4.0/24"}}})
		if len(got) != 2 || got[0].Error() != "range set 0 overlaps with range set 1; an address can belong to one range set only" ||
			got[1].Error() != "range set 0 overlaps with range set 2; an address can belong to one range set only" {
			t.Errorf("overlapping range sets = %v", got)
		}
	})

	t.Run("RequestedError", func(t *testing.T) {
		set := RangeSet{mustRange(t, RangeSpec{Subnet: "10.0.0.0/24", RangeEnd: "10.0.0.9"}), mustRange(t, RangeSpec{Subnet: "10.0.1.0/24", RangeStart: "10.0.1.5"})}
		_, err := set.CheckRequested(netip.MustParseAddr("10.0.0.1"))
		if want := "requested address 10.0.0.1 is the gateway of subnet 10.0.0.0/24; gateways are never handed out"; err == nil || err.Error() != want {
			t.Errorf("gateway: %v, want %s", err, want)
		}
		excl := RangeSet{mustRange(t, RangeSpec{Subnet: "10.0.0.0/24", Exclude: []string{"10.0.0.30"}})}
		_, err = excl.CheckRequested(netip.MustParseAddr("10.0.0.30"))
		if want := `requested address 10.0.0.30 is excluded ("exclude") from its range in subnet 10.0.0.0/24; excluded addresses are never handed out: request another address, or remove it from the range's "exclude" list`; err == nil || err.Error() != want {
			t.Errorf("excluded: %v, want %s", err, want)
		}
		_, err = set.CheckRequested(netip.MustParseAddr("::ffff:10.0.0.77"))
		if want := "requested address 10.0.0.77 is not in range set 10.0.0.1-10.0.0.9,10.0.1.5-10.0.1.254"; err == nil || err.Error() != want {
			t.Errorf("outside: %v, want %s", err, want)
		}
	})
}

// TestRangeStrings pins how ranges and range sets name themselves in
// messages.
func TestRangeStrings(t *testing.T) {
	set := RangeSet{
		{RangeStart: netip.MustParseAddr("10.0.0.2"), RangeEnd: netip.MustParseAddr("10.0.0.9")},
		{RangeStart: netip.MustParseAddr("2001:db8::1"), RangeEnd: netip.MustParseAddr("2001:db8::ff")},
		{},
	}
	if got, want := set.String(), "10.0.0.2-10.0.0.9,2001:db8::1-2001:db8::ff,invalid IP-invalid IP"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (RangeSet{}).String(); got != "" {
		t.Errorf("empty String() = %q", got)
	}
}
