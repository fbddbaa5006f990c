package core

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// netipEqual lets cmp compare netip values, whose fields are unexported.
var netipEqual = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

// errContains reports a failure unless err is non-nil and mentions want.
func errContains(t testing.TB, what string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want one containing %q", what, want)
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %q does not contain %q", what, err, want)
	}
}

// ip parses an address literal or fails the test run.
func ip(s string) netip.Addr {
	return netip.MustParseAddr(s)
}

// ---- ParseAddr ----

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    string // canonical form; empty when an error is expected
		wantErr string
	}{
		{in: "192.0.2.1", want: "192.0.2.1"},
		{in: "0.0.0.0", want: "0.0.0.0"},
		{in: "255.255.255.255", want: "255.255.255.255"},
		{in: " 192.0.2.1\t", want: "192.0.2.1"},
		{in: "2001:db8::1", want: "2001:db8::1"},
		{in: "2001:DB8::1", want: "2001:db8::1"},
		{in: "2001:0db8:0000:0000:0000:0000:0000:0001", want: "2001:db8::1"},
		{in: "::", want: "::"},
		// IPv4-mapped IPv6 is the IPv4 address, as net.ParseIP(...).To4() has it.
		{in: "::ffff:192.0.2.1", want: "192.0.2.1"},
		{in: "::ffff:c000:201", want: "192.0.2.1"},
		// IPv4-compatible (deprecated) is not mapped: stays IPv6.
		{in: "::192.0.2.1", want: "::c000:201"},
		{in: "fe80::1%eth0", wantErr: "zone"},
		{in: "", wantErr: "is not an IPv4 or IPv6 address"},
		{in: "192.0.2", wantErr: "is not an IPv4 or IPv6 address"},
		{in: "192.0.2.256", wantErr: "is not an IPv4 or IPv6 address"},
		{in: "192.0.2.1/24", wantErr: "is not an IPv4 or IPv6 address"},
		{in: "010.0.0.1", wantErr: "is not an IPv4 or IPv6 address"},
		{in: "2001:db8:::1", wantErr: "is not an IPv4 or IPv6 address"},
		{in: "example.com", wantErr: `"example.com"`},
	}
	for _, tc := range tests {
		got, err := ParseAddr(tc.in)
		if tc.wantErr != "" {
			errContains(t, "ParseAddr("+tc.in+")", err, tc.wantErr)
			if got.IsValid() {
				t.Errorf("ParseAddr(%q) returned %v together with an error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseAddr(%q): unexpected error %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got.String(), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "ParseAddr("+tc.in+")", diff)
		}
		if got.Is4In6() {
			t.Errorf("ParseAddr(%q) = %v is still IPv4-mapped", tc.in, got)
		}
	}
}

func TestParseRequestedAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "192.0.2.7", want: "192.0.2.7"},
		{in: "192.0.2.7/24", want: "192.0.2.7"},
		{in: "192.0.2.7/32", want: "192.0.2.7"},
		{in: " 192.0.2.7/24 ", want: "192.0.2.7"},
		{in: "2001:db8::7", want: "2001:db8::7"},
		{in: "2001:DB8::7/64", want: "2001:db8::7"},
		{in: "::ffff:192.0.2.7", want: "192.0.2.7"},
		{in: "::ffff:192.0.2.7/120", want: "192.0.2.7"},
		{in: "192.0.2.7/33", wantErr: "is not an IP address or CIDR"},
		{in: "bogus/24", wantErr: "is not an IP address or CIDR"},
		{in: "/24", wantErr: "is not an IP address or CIDR"},
		{in: "fe80::1%eth0/64", wantErr: "is not an IP address or CIDR"},
		{in: "fe80::1%eth0", wantErr: "zone"},
		{in: "", wantErr: "is not an IPv4 or IPv6 address"},
	}
	for _, tc := range tests {
		got, err := ParseRequestedAddr(tc.in)
		if tc.wantErr != "" {
			errContains(t, "ParseRequestedAddr("+tc.in+")", err, tc.wantErr)
			continue
		}
		if err != nil {
			t.Errorf("ParseRequestedAddr(%q): unexpected error %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got.String(), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "ParseRequestedAddr("+tc.in+")", diff)
		}
	}
}

func TestDistance(t *testing.T) {
	const max = ^uint64(0)
	tests := []struct {
		a, b string
		want uint64
	}{
		{"192.0.2.1", "192.0.2.1", 1},
		{"192.0.2.1", "192.0.2.2", 2},
		{"192.0.2.0", "192.0.2.255", 256},
		{"10.0.0.1", "10.255.255.254", 1<<24 - 2},
		{"0.0.0.0", "255.255.255.255", 1 << 32},
		{"2001:db8::", "2001:db8::", 1},
		{"2001:db8::1", "2001:db8::3", 3},
		// Borrow from the high 64 bits.
		{"2001:db8::ffff:ffff:ffff:ffff", "2001:db8:0:1::", 2},
		{"2001:db8::1:0:0:0:5", "2001:db8::2:0:0:0:3", 1<<64 - 1},
		// Exactly representable: 2^64-1 and 2^64-2 addresses.
		{"2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff", max},
		{"2001:db8::", "2001:db8::ffff:ffff:ffff:fffe", max},
		{"2001:db8::1", "2001:db8::ffff:ffff:ffff:fffe", max - 1},
		// 2^64 addresses and more saturate.
		{"2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", max},
		{"2001:db8::", "2001:db8:0:1::", max},
		{"2001:db8::", "2001:db8:0:ffff:ffff:ffff:ffff:ffff", max},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", max},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, distance(ip(tc.a), ip(tc.b)), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "distance("+tc.a+", "+tc.b+")", diff)
		}
	}
}

func TestLastAddr(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"192.0.2.0/24", "192.0.2.255"},
		{"192.0.2.0/25", "192.0.2.127"},
		{"192.0.2.128/25", "192.0.2.255"},
		{"10.0.0.0/8", "10.255.255.255"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"192.168.126.0/23", "192.168.127.255"},
		{"2001:db8::/64", "2001:db8::ffff:ffff:ffff:ffff"},
		{"2001:db8::/126", "2001:db8::3"},
		{"2001:db8:24:19fe::/63", "2001:db8:24:19ff:ffff:ffff:ffff:ffff"},
		{"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(ip(tc.want), lastAddr(netip.MustParsePrefix(tc.prefix)), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "lastAddr("+tc.prefix+")", diff)
		}
	}
}

func TestAddOffset(t *testing.T) {
	for _, tc := range []struct {
		a    string
		n    uint64
		want string
		ok   bool
	}{
		{"192.0.2.250", 5, "192.0.2.255", true},
		{"192.0.2.255", 1, "192.0.3.0", true},
		{"255.255.255.255", 1, "", false},
		{"2001:db8::ffff:ffff:ffff:ffff", 1, "2001:db8:0:1::", true},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, "", false},
	} {
		got, ok := addOffset(netip.MustParseAddr(tc.a), tc.n)
		if ok != tc.ok || (ok && got.String() != tc.want) {
			t.Errorf("addOffset(%s, %d) = %v, %v; want %s, %v", tc.a, tc.n, got, ok, tc.want, tc.ok)
		}
	}
}
