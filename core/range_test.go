package core

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mustRange canonicalises a range or fails the test.
func mustRange(t testing.TB, spec RangeSpec) Range {
	t.Helper()
	r, err := CanonicalizeRange(spec)
	if err != nil {
		t.Fatalf("CanonicalizeRange(%+v): %v", spec, err)
	}
	return r
}

func TestCanonicalizeRangeDefaults(t *testing.T) {
	tests := []struct {
		name             string
		spec             RangeSpec
		subnet           string
		start, end, gate string
	}{
		// host-local: "should generate sane defaults for ipv4 with a clean prefix"
		{"ipv4 /24", RangeSpec{Subnet: "192.0.2.0/24"},
			"192.0.2.0/24", "192.0.2.1", "192.0.2.254", "192.0.2.1"},
		// host-local: "should generate sane defaults for a smaller ipv4 subnet"
		{"ipv4 /25", RangeSpec{Subnet: "192.0.2.0/25"},
			"192.0.2.0/25", "192.0.2.1", "192.0.2.126", "192.0.2.1"},
		{"ipv4 upper /25", RangeSpec{Subnet: "192.0.2.128/25"},
			"192.0.2.128/25", "192.0.2.129", "192.0.2.254", "192.0.2.129"},
		{"ipv4 /29", RangeSpec{Subnet: "192.168.1.0/29"},
			"192.168.1.0/29", "192.168.1.1", "192.168.1.6", "192.168.1.1"},
		{"ipv4 /30 smallest", RangeSpec{Subnet: "10.0.0.0/30"},
			"10.0.0.0/30", "10.0.0.1", "10.0.0.2", "10.0.0.1"},
		{"ipv4 /23", RangeSpec{Subnet: "192.168.126.0/23"},
			"192.168.126.0/23", "192.168.126.1", "192.168.127.254", "192.168.126.1"},
		{"ipv4 /8", RangeSpec{Subnet: "10.0.0.0/8"},
			"10.0.0.0/8", "10.0.0.1", "10.255.255.254", "10.0.0.1"},
		{"ipv4 /0", RangeSpec{Subnet: "0.0.0.0/0"},
			"0.0.0.0/0", "0.0.0.1", "255.255.255.254", "0.0.0.1"},
		// host-local: "should generate sane defaults for ipv6 with a clean prefix"
		{"ipv6 /64", RangeSpec{Subnet: "2001:DB8:1::/64"},
			"2001:db8:1::/64", "2001:db8:1::1", "2001:db8:1::ffff:ffff:ffff:ffff", "2001:db8:1::1"},
		{"ipv6 /126 smallest", RangeSpec{Subnet: "2001:db8::/126"},
			"2001:db8::/126", "2001:db8::1", "2001:db8::3", "2001:db8::1"},
		{"ipv6 /48", RangeSpec{Subnet: "2001:db8:5::/48"},
			"2001:db8:5::/48", "2001:db8:5::1", "2001:db8:5:ffff:ffff:ffff:ffff:ffff", "2001:db8:5::1"},
		{"ipv6 top of the address space", RangeSpec{Subnet: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"},
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff1",
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff1"},
		{"ipv6 /0", RangeSpec{Subnet: "::/0"},
			"::/0", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1"},
		// host-local: "should parse all fields correctly"
		{"ipv4 all fields", RangeSpec{Subnet: "192.0.2.0/24", RangeStart: "192.0.2.40", RangeEnd: "192.0.2.50", Gateway: "192.0.2.254"},
			"192.0.2.0/24", "192.0.2.40", "192.0.2.50", "192.0.2.254"},
		// host-local config_test: old-style config
		{"ipv4 gateway after range", RangeSpec{Subnet: "10.1.2.0/24", RangeStart: "10.1.2.9", RangeEnd: "10.1.2.20", Gateway: "10.1.2.30"},
			"10.1.2.0/24", "10.1.2.9", "10.1.2.20", "10.1.2.30"},
		{"ipv6 all fields", RangeSpec{Subnet: "2001:db8:1::/64", RangeStart: "2001:db8:1::40", RangeEnd: "2001:db8:1::50", Gateway: "2001:db8:1::45"},
			"2001:db8:1::/64", "2001:db8:1::40", "2001:db8:1::50", "2001:db8:1::45"},
		{"ipv6 start only", RangeSpec{Subnet: "2001:db8:1::/64", RangeStart: "2001:db8:1::40"},
			"2001:db8:1::/64", "2001:db8:1::40", "2001:db8:1::ffff:ffff:ffff:ffff", "2001:db8:1::1"},
		{"ipv4 end only", RangeSpec{Subnet: "10.0.0.0/24", RangeEnd: "10.0.0.127"},
			"10.0.0.0/24", "10.0.0.1", "10.0.0.127", "10.0.0.1"},
		{"ipv4 start only", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.128"},
			"10.0.0.0/24", "10.0.0.128", "10.0.0.254", "10.0.0.1"},
		// Like host-local, an explicit range may include the network and
		// broadcast addresses.
		{"ipv4 network and broadcast explicit", RangeSpec{Subnet: "192.168.1.0/30", RangeStart: "192.168.1.0", RangeEnd: "192.168.1.3"},
			"192.168.1.0/30", "192.168.1.0", "192.168.1.3", "192.168.1.1"},
		{"ipv4 single address", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.9", RangeEnd: "10.0.0.9"},
			"10.0.0.0/24", "10.0.0.9", "10.0.0.9", "10.0.0.1"},
		{"ipv4 single address is the gateway", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.1", RangeEnd: "10.0.0.1"},
			"10.0.0.0/24", "10.0.0.1", "10.0.0.1", "10.0.0.1"},
		// Like host-local, the gateway need not be in the subnet.
		{"ipv4 gateway outside subnet", RangeSpec{Subnet: "10.0.0.0/24", Gateway: "10.9.9.9"},
			"10.0.0.0/24", "10.0.0.1", "10.0.0.254", "10.9.9.9"},
		// IPv4-mapped forms are taken as IPv4, as host-local's To4 does.
		{"ipv4 mapped fields", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "::ffff:10.0.0.5", RangeEnd: "::ffff:10.0.0.6", Gateway: "::ffff:10.0.0.254"},
			"10.0.0.0/24", "10.0.0.5", "10.0.0.6", "10.0.0.254"},
	}
	for _, tc := range tests {
		r, err := CanonicalizeRange(tc.spec)
		if err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
			continue
		}
		want := Range{
			Subnet:     netip.MustParsePrefix(tc.subnet),
			RangeStart: ip(tc.start),
			RangeEnd:   ip(tc.end),
			Gateway:    ip(tc.gate),
		}
		if diff := cmp.Diff(want, r, netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		// The canonical form written back canonicalises to itself.
		again, err := CanonicalizeRange(r.Spec())
		if err != nil {
			t.Errorf("%s: Spec() %+v does not canonicalise: %v", tc.name, r.Spec(), err)
		} else {
			if diff := cmp.Diff(r, again, netipEqual); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.name+" round trip", diff)
			}
		}
	}
}

func TestCanonicalizeRangeErrors(t *testing.T) {
	tests := []struct {
		name    string
		spec    RangeSpec
		wantErr string
	}{
		{"missing subnet", RangeSpec{}, `"subnet" is missing`},
		{"missing subnet with other fields", RangeSpec{RangeStart: "10.0.0.1"}, `"subnet" is missing`},
		{"not a CIDR: bare address", RangeSpec{Subnet: "192.0.2.0"}, `subnet "192.0.2.0" is not a CIDR`},
		{"not a CIDR: bad length", RangeSpec{Subnet: "192.0.2.0/33"}, "is not a CIDR"},
		{"not a CIDR: ipv6 bad length", RangeSpec{Subnet: "2001:db8::/129"}, "is not a CIDR"},
		{"not a CIDR: garbage", RangeSpec{Subnet: "bogus"}, "is not a CIDR"},
		{"not a CIDR: leading zero", RangeSpec{Subnet: "010.0.0.0/8"}, "is not a CIDR"},
		// host-local: "Should reject a network that's too small"
		{"ipv4 /31 too small", RangeSpec{Subnet: "192.0.2.0/31"}, "subnet 192.0.2.0/31 is too small to allocate from; use a prefix of /30 or shorter"},
		{"ipv4 /32 too small", RangeSpec{Subnet: "192.0.2.7/32"}, "too small"},
		{"ipv6 /127 too small", RangeSpec{Subnet: "2001:db8::/127"}, "subnet 2001:db8::/127 is too small to allocate from; use a prefix of /126 or shorter"},
		{"ipv6 /128 too small", RangeSpec{Subnet: "2001:db8::1/128"}, "too small"},
		// host-local checks the size before the host bits.
		{"ipv4 /31 with host bits is too small", RangeSpec{Subnet: "192.0.2.1/31"}, "too small"},
		// host-local: "should reject ipv4 subnet using a masked address"
		{"ipv4 host bits", RangeSpec{Subnet: "192.0.2.12/24"},
			`subnet 192.0.2.12/24 has host bits set; for a /24 the network address is 192.0.2.0, so write "192.0.2.0/24"`},
		// host-local: "should reject ipv6 subnet using a masked address"
		{"ipv6 host bits", RangeSpec{Subnet: "2001:DB8:1::24:19ff:fee1:c44a/64"},
			`for a /64 the network address is 2001:db8:1::, so write "2001:db8:1::/64"`},
		// host-local: "should reject ipv6 prefix with host bit set"
		{"ipv6 prefix host bit", RangeSpec{Subnet: "2001:DB8:24:19ff::/63"},
			`for a /63 the network address is 2001:db8:24:19fe::, so write "2001:db8:24:19fe::/63"`},
		// host-local: "should reject ipv4 network with host bit set"
		{"ipv4 network host bit", RangeSpec{Subnet: "192.168.127.0/23"},
			`for a /23 the network address is 192.168.126.0, so write "192.168.126.0/23"`},
		{"ipv4 /8 host bits", RangeSpec{Subnet: "10.1.0.0/8"}, "host bits set"},
		// Deliberate difference: no IPv4-mapped IPv6 subnet, no zone.
		{"ipv4-mapped subnet", RangeSpec{Subnet: "::ffff:10.0.0.0/104"}, "must be a plain IPv4 or IPv6 prefix"},
		{"ipv4-mapped subnet /120", RangeSpec{Subnet: "::ffff:192.0.2.0/120"}, "must be a plain IPv4 or IPv6 prefix"},
		{"zone in subnet", RangeSpec{Subnet: "fe80::%eth0/64"}, `subnet "fe80::%eth0/64"`},
		// host-local: "should reject invalid RangeStart and RangeEnd specifications"
		{"rangeStart outside", RangeSpec{Subnet: "192.0.2.0/24", RangeStart: "192.0.3.0"},
			"rangeStart 192.0.3.0 is not in subnet 192.0.2.0/24"},
		{"rangeEnd outside", RangeSpec{Subnet: "192.0.2.0/24", RangeEnd: "192.0.4.0"},
			"rangeEnd 192.0.4.0 is not in subnet 192.0.2.0/24"},
		{"rangeStart after rangeEnd", RangeSpec{Subnet: "192.0.2.0/24", RangeStart: "192.0.2.50", RangeEnd: "192.0.2.40"},
			"rangeStart 192.0.2.50 is after rangeEnd 192.0.2.40"},
		// Deliberate difference: host-local accepts these and builds a
		// range whose start is after its end.
		{"rangeStart is the ipv4 broadcast", RangeSpec{Subnet: "192.0.2.0/24", RangeStart: "192.0.2.255"},
			"rangeStart 192.0.2.255 is after rangeEnd 192.0.2.254"},
		{"rangeEnd is the network", RangeSpec{Subnet: "192.0.2.0/24", RangeEnd: "192.0.2.0"},
			"rangeStart 192.0.2.1 is after rangeEnd 192.0.2.0"},
		{"ipv6 rangeStart after rangeEnd", RangeSpec{Subnet: "2001:db8::/64", RangeStart: "2001:db8::50", RangeEnd: "2001:db8::40"},
			"rangeStart 2001:db8::50 is after rangeEnd 2001:db8::40"},
		{"ipv6 rangeStart outside", RangeSpec{Subnet: "2001:db8:1::/64", RangeStart: "2001:db8:2::"},
			"rangeStart 2001:db8:2:: is not in subnet 2001:db8:1::/64"},
		{"ipv6 rangeEnd outside", RangeSpec{Subnet: "2001:db8:1::/64", RangeEnd: "2001:db8::ffff"},
			"rangeEnd 2001:db8::ffff is not in subnet 2001:db8:1::/64"},
		{"rangeStart of the other family", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "2001:db8::1"}, "rangeStart 2001:db8::1 is not in subnet 10.0.0.0/24"},
		{"rangeEnd of the other family", RangeSpec{Subnet: "2001:db8::/64", RangeEnd: "10.0.0.1"}, "rangeEnd 10.0.0.1 is not in subnet 2001:db8::/64"},
		{"rangeStart garbage", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.x"}, `rangeStart: "10.0.0.x" is not an IPv4 or IPv6 address`},
		{"rangeEnd garbage", RangeSpec{Subnet: "10.0.0.0/24", RangeEnd: "10.0.0.0/25"}, `rangeEnd: "10.0.0.0/25" is not an IPv4 or IPv6 address`},
		{"gateway garbage", RangeSpec{Subnet: "10.0.0.0/24", Gateway: "gw"}, `gateway: "gw" is not an IPv4 or IPv6 address`},
		{"gateway with zone", RangeSpec{Subnet: "fe80::/64", Gateway: "fe80::1%eth0"}, "gateway: "},
		// Deliberate difference: a gateway of the other family is an error.
		{"ipv6 gateway for ipv4 subnet", RangeSpec{Subnet: "10.0.0.0/24", Gateway: "2001:db8::1"},
			"gateway 2001:db8::1 is not in the address family of subnet 10.0.0.0/24"},
		{"ipv4 gateway for ipv6 subnet", RangeSpec{Subnet: "2001:db8::/64", Gateway: "10.0.0.1"},
			"gateway 10.0.0.1 is not in the address family of subnet 2001:db8::/64"},
		{"ipv4-mapped gateway for ipv6 subnet", RangeSpec{Subnet: "2001:db8::/64", Gateway: "::ffff:10.0.0.1"},
			"is not in the address family"},
	}
	for _, tc := range tests {
		r, err := CanonicalizeRange(tc.spec)
		errContains(t, tc.name, err, tc.wantErr)
		if diff := cmp.Diff(Range{}, r, netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+": range on error", diff)
		}
	}
}

func TestRangeContains(t *testing.T) {
	v4 := mustRange(t, RangeSpec{Subnet: "192.0.2.0/24", RangeStart: "192.0.2.40", RangeEnd: "192.0.2.50", Gateway: "192.0.2.254"})
	v6 := mustRange(t, RangeSpec{Subnet: "2001:DB8:1::/64", RangeStart: "2001:db8:1::40", RangeEnd: "2001:db8:1::50"})
	def4 := mustRange(t, RangeSpec{Subnet: "10.0.0.0/29"})
	def6 := mustRange(t, RangeSpec{Subnet: "2001:db8::/126"})
	top := mustRange(t, RangeSpec{Subnet: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124"})
	tests := []struct {
		name string
		r    Range
		addr netip.Addr
		want bool
	}{
		// host-local: "should accept v4 IPs in range and reject IPs out of range"
		{"v4 other subnet", v4, ip("192.0.3.0"), false},
		{"v4 before start", v4, ip("192.0.2.39"), false},
		{"v4 start", v4, ip("192.0.2.40"), true},
		{"v4 middle", v4, ip("192.0.2.45"), true},
		{"v4 end", v4, ip("192.0.2.50"), true},
		{"v4 after end", v4, ip("192.0.2.51"), false},
		{"v4 gateway outside range", v4, ip("192.0.2.254"), false},
		{"v4 mapped start", v4, ip("::ffff:192.0.2.40"), true},
		{"v4 range, v6 address", v4, ip("::c000:228"), false},
		{"v4 zero address", v4, netip.Addr{}, false},
		// host-local: "should accept v6 IPs in range and reject IPs out of range"
		{"v6 other subnet", v6, ip("2001:db8:2::"), false},
		{"v6 before start", v6, ip("2001:db8:1::39"), false},
		{"v6 start", v6, ip("2001:db8:1::40"), true},
		{"v6 end", v6, ip("2001:db8:1::50"), true},
		{"v6 after end", v6, ip("2001:db8:1::51"), false},
		{"v6 range, v4 address", v6, ip("0.0.0.64"), false},
		{"v6 zero address", v6, netip.Addr{}, false},
		{"default v4 network", def4, ip("10.0.0.0"), false},
		{"default v4 gateway", def4, ip("10.0.0.1"), true},
		{"default v4 last", def4, ip("10.0.0.6"), true},
		{"default v4 broadcast", def4, ip("10.0.0.7"), false},
		{"default v6 network", def6, ip("2001:db8::"), false},
		{"default v6 gateway", def6, ip("2001:db8::1"), true},
		{"default v6 last", def6, ip("2001:db8::3"), true},
		{"default v6 next subnet", def6, ip("2001:db8::4"), false},
		{"top of v6 space", top, ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), true},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.r.Contains(tc.addr), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestRangeOverlaps(t *testing.T) {
	tests := []struct {
		name   string
		a, b   RangeSpec
		expect bool
	}{
		// host-local's "Detecting overlap" table.
		{"non-overlapping", RangeSpec{Subnet: "10.0.0.0/24"}, RangeSpec{Subnet: "10.0.1.0/24"}, false},
		{"different families", RangeSpec{Subnet: "0.0.0.0/24"}, RangeSpec{Subnet: "::/24"}, false},
		{"identical", RangeSpec{Subnet: "10.0.0.0/24"}, RangeSpec{Subnet: "10.0.0.0/24"}, true},
		{"containing", RangeSpec{Subnet: "10.0.0.0/20"}, RangeSpec{Subnet: "10.0.1.0/24"}, true},
		{"same subnet, non overlapping start + end",
			RangeSpec{Subnet: "10.0.0.0/24", RangeEnd: "10.0.0.127"},
			RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.128"}, false},
		{"same subnet, overlapping start + end",
			RangeSpec{Subnet: "10.0.0.0/24", RangeEnd: "10.0.0.127"},
			RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.127"}, true},
		// More.
		{"one strictly inside the other",
			RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.200"},
			RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.50", RangeEnd: "10.0.0.60"}, true},
		{"same subnet, disjoint middles",
			RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.20"},
			RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.21", RangeEnd: "10.0.0.30"}, false},
		{"subnets overlap, ranges do not",
			RangeSpec{Subnet: "10.0.0.0/16", RangeEnd: "10.0.0.255"},
			RangeSpec{Subnet: "10.0.1.0/24"}, false},
		{"different subnets, shared gateway only",
			RangeSpec{Subnet: "10.0.0.0/24", Gateway: "10.0.1.1"},
			RangeSpec{Subnet: "10.0.1.0/24", RangeStart: "10.0.1.2"}, false},
		{"ipv4 /8 and a /30 inside", RangeSpec{Subnet: "10.0.0.0/8"}, RangeSpec{Subnet: "10.200.0.0/30"}, true},
		{"ipv6 identical", RangeSpec{Subnet: "2001:db8::/64"}, RangeSpec{Subnet: "2001:db8::/64"}, true},
		{"ipv6 /48 contains /64", RangeSpec{Subnet: "2001:db8::/48"}, RangeSpec{Subnet: "2001:db8:0:5::/64"}, true},
		{"ipv6 neighbours", RangeSpec{Subnet: "2001:db8::/64"}, RangeSpec{Subnet: "2001:db8:0:1::/64"}, false},
		{"ipv6 split /126",
			RangeSpec{Subnet: "2001:db8::/126", RangeEnd: "2001:db8::1"},
			RangeSpec{Subnet: "2001:db8::/126", RangeStart: "2001:db8::2"}, false},
		{"ipv6 touching /126",
			RangeSpec{Subnet: "2001:db8::/126", RangeEnd: "2001:db8::2"},
			RangeSpec{Subnet: "2001:db8::/126", RangeStart: "2001:db8::2"}, true},
	}
	for _, tc := range tests {
		a, b := mustRange(t, tc.a), mustRange(t, tc.b)
		// The relation is symmetric.
		if diff := cmp.Diff(tc.expect, a.Overlaps(b), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+" (a,b)", diff)
		}
		if diff := cmp.Diff(tc.expect, b.Overlaps(a), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+" (b,a)", diff)
		}
	}
}

func TestRangeCapacity(t *testing.T) {
	const max = ^uint64(0)
	tests := []struct {
		name string
		spec RangeSpec
		want uint64
	}{
		{"ipv4 /30", RangeSpec{Subnet: "10.0.0.0/30"}, 1},
		{"ipv4 /29", RangeSpec{Subnet: "10.0.0.0/29"}, 5},
		{"ipv4 /24", RangeSpec{Subnet: "10.0.0.0/24"}, 253},
		{"ipv4 /8", RangeSpec{Subnet: "10.0.0.0/8"}, 1<<24 - 3},
		{"ipv4 /0", RangeSpec{Subnet: "0.0.0.0/0"}, 1<<32 - 3},
		{"ipv4 gateway outside range", RangeSpec{Subnet: "192.0.2.0/24", RangeStart: "192.0.2.40", RangeEnd: "192.0.2.50", Gateway: "192.0.2.254"}, 11},
		{"ipv4 gateway inside range", RangeSpec{Subnet: "192.0.2.0/24", RangeStart: "192.0.2.40", RangeEnd: "192.0.2.50", Gateway: "192.0.2.45"}, 10},
		{"ipv4 default gateway before custom start", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.128"}, 127},
		{"ipv4 whole /30 explicit", RangeSpec{Subnet: "192.168.1.0/30", RangeStart: "192.168.1.0", RangeEnd: "192.168.1.3"}, 3},
		{"single address", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.9", RangeEnd: "10.0.0.9"}, 1},
		{"single address is the gateway", RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.1", RangeEnd: "10.0.0.1"}, 0},
		{"ipv6 /126", RangeSpec{Subnet: "2001:db8::/126"}, 2},
		{"ipv6 /120", RangeSpec{Subnet: "2001:db8::/120"}, 254},
		{"ipv6 /65", RangeSpec{Subnet: "2001:db8::/65"}, 1<<63 - 2},
		// A default /64 holds 2^64-1 addresses (::1 to ::ffff:ffff:ffff:ffff)
		// of which one is the gateway: 2^64-2 fits and must not saturate.
		{"ipv6 /64 default", RangeSpec{Subnet: "2001:db8::/64"}, max - 1},
		{"ipv6 /64 gateway outside range", RangeSpec{Subnet: "2001:db8::/64", RangeStart: "2001:db8::2"}, max - 1},
		{"ipv6 /64 last address is gateway", RangeSpec{Subnet: "2001:db8::/64", Gateway: "2001:db8::ffff:ffff:ffff:ffff"}, max - 1},
		{"ipv6 /64 gateway elsewhere", RangeSpec{Subnet: "2001:db8::/64", Gateway: "2001:db8:1::1"}, max},
		// 2^64 addresses less the gateway is exactly the largest uint64.
		{"ipv6 whole /64 with gateway", RangeSpec{Subnet: "2001:db8::/64", RangeStart: "2001:db8::"}, max},
		// 2^64 addresses without a gateway saturates.
		{"ipv6 whole /64 without gateway", RangeSpec{Subnet: "2001:db8::/64", RangeStart: "2001:db8::", Gateway: "2001:db8:1::1"}, max},
		{"ipv6 /48 saturates", RangeSpec{Subnet: "2001:db8::/48"}, max},
		{"ipv6 /0 saturates", RangeSpec{Subnet: "::/0"}, max},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, mustRange(t, tc.spec).Capacity(), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestRangeStringFamilySpec(t *testing.T) {
	tests := []struct {
		spec   RangeSpec
		str    string
		family int
		out    RangeSpec
	}{
		{RangeSpec{Subnet: "192.0.2.0/24"}, "192.0.2.1-192.0.2.254", 4,
			RangeSpec{Subnet: "192.0.2.0/24", RangeStart: "192.0.2.1", RangeEnd: "192.0.2.254", Gateway: "192.0.2.1"}},
		{RangeSpec{Subnet: "192.168.1.0/29"}, "192.168.1.1-192.168.1.6", 4,
			RangeSpec{Subnet: "192.168.1.0/29", RangeStart: "192.168.1.1", RangeEnd: "192.168.1.6", Gateway: "192.168.1.1"}},
		{RangeSpec{Subnet: "2001:DB8:1::/64", RangeStart: "2001:db8:1::40", Gateway: "2001:db8:1::fffe"}, "2001:db8:1::40-2001:db8:1:0:ffff:ffff:ffff:ffff", 6,
			RangeSpec{Subnet: "2001:db8:1::/64", RangeStart: "2001:db8:1::40", RangeEnd: "2001:db8:1:0:ffff:ffff:ffff:ffff", Gateway: "2001:db8:1::fffe"}},
	}
	for _, tc := range tests {
		r := mustRange(t, tc.spec)
		if diff := cmp.Diff(tc.str, r.String(), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "String", diff)
		}
		if diff := cmp.Diff(tc.family, r.Family(), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "Family", diff)
		}
		if diff := cmp.Diff(tc.out, r.Spec(), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "Spec", diff)
		}
	}
}
