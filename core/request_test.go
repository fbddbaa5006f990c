package core

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// addrList renders addresses, the zero Addr as "-".
func addrList(as []netip.Addr) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = "-"
		if a.IsValid() {
			parts[i] = a.String()
		}
	}
	return strings.Join(parts, " ")
}

func TestAssignRequested(t *testing.T) {
	sets := mustSets(t,
		[]RangeSpec{sub("10.0.0.0/24"), {Subnet: "10.0.5.0/24", RangeStart: "10.0.5.10", RangeEnd: "10.0.5.20"}},
		[]RangeSpec{sub("2001:db8::/64")},
		[]RangeSpec{sub("10.0.1.0/24")},
	)
	tests := []struct {
		name      string
		requested []string
		perSet    string
		unmatched string
	}{
		{"nothing requested", nil, "- - -", ""},
		{"one per set, any order", []string{"2001:db8::5", "10.0.1.5", "10.0.0.5"}, "10.0.0.5 2001:db8::5 10.0.1.5", ""},
		{"only some sets", []string{"10.0.1.5"}, "- - 10.0.1.5", ""},
		{"second range of a set", []string{"10.0.5.15"}, "10.0.5.15 - -", ""},
		// A set takes the first requested address it contains; the other is
		// left over and the ADD must fail.
		{"two for one set", []string{"10.0.0.6", "10.0.0.5"}, "10.0.0.6 - -", "10.0.0.5"},
		{"two for one set, across its ranges", []string{"10.0.5.12", "10.0.0.5"}, "10.0.5.12 - -", "10.0.0.5"},
		{"duplicates count once", []string{"10.0.0.5", "10.0.0.5"}, "10.0.0.5 - -", ""},
		{"mapped duplicate counts once", []string{"::ffff:10.0.0.5", "10.0.0.5"}, "10.0.0.5 - -", ""},
		{"mapped address is IPv4", []string{"::ffff:10.0.1.9"}, "- - 10.0.1.9", ""},
		{"unmatched keep their order", []string{"192.0.2.9", "10.0.0.5", "192.0.2.1", "2001:db9::1"}, "10.0.0.5 - -", "192.0.2.9 192.0.2.1 2001:db9::1"},
		{"duplicate unmatched once", []string{"192.0.2.9", "192.0.2.9"}, "- - -", "192.0.2.9"},
		{"in the subnet but not the range", []string{"10.0.5.5"}, "- - -", "10.0.5.5"},
		{"broadcast is not in the range", []string{"10.0.0.255"}, "- - -", "10.0.0.255"},
		// The gateway is contained by its range: it is assigned here and
		// refused by CheckRequested, as host-local's Get does.
		{"gateway is assigned", []string{"10.0.0.1"}, "10.0.0.1 - -", ""},
		{"zero address is unmatched", []string{""}, "- - -", "-"},
		{"three for three plus leftovers", []string{"10.0.1.1", "10.0.0.9", "10.0.1.2", "2001:db8::9", "2001:db8::a", "10.0.0.10"},
			"10.0.0.9 2001:db8::9 10.0.1.1", "10.0.1.2 2001:db8::a 10.0.0.10"},
	}
	for _, tc := range tests {
		req := addrs(tc.requested...)
		before := slices.Clone(req)
		perSet, unmatched := AssignRequested(sets, req)
		if diff := cmp.Diff(tc.perSet, addrList(perSet), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+": per set", diff)
		}
		if diff := cmp.Diff(tc.unmatched, addrList(unmatched), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+": unmatched", diff)
		}
		if !slices.Equal(req, before) {
			t.Errorf("%s: input modified: %v", tc.name, req)
		}
		for i, a := range perSet {
			if !(!a.IsValid() || sets[i].Contains(a)) {
				t.Errorf("%s: %v given to set %d that does not contain it", tc.name, a, i)
			}
		}
	}
	perSet, unmatched := AssignRequested(nil, addrs("10.0.0.1"))
	if diff := cmp.Diff(0, len(perSet), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "no sets: per set", diff)
	}
	if diff := cmp.Diff("10.0.0.1", addrList(unmatched), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "no sets: unmatched", diff)
	}
}

func TestCheckRequested(t *testing.T) {
	// host-local's mkalloc: a /29.
	s29 := mustSet(t, sub("192.168.1.0/29"))
	// host-local: "must return an error when the requested IP is after
	// RangeEnd" / "before RangeStart".
	shortEnd := mustSet(t, RangeSpec{Subnet: "192.168.1.0/29", RangeEnd: "192.168.1.4"})
	lateStart := mustSet(t, RangeSpec{Subnet: "192.168.1.0/29", RangeStart: "192.168.1.3"})
	multi := mustSet(t,
		RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.20", Gateway: "10.0.1.3"},
		RangeSpec{Subnet: "10.0.1.0/24", Gateway: "10.0.1.254"},
	)
	v6 := mustSet(t, sub("2001:db8::/64"))
	tests := []struct {
		name    string
		set     RangeSet
		addr    string
		index   int
		wantErr string
	}{
		// host-local: "must allocate the requested IP"
		{"in range", s29, "192.168.1.5", 0, ""},
		{"mapped in range", s29, "::ffff:192.168.1.5", 0, ""},
		{"range start", s29, "192.168.1.2", 0, ""},
		{"range end", s29, "192.168.1.6", 0, ""},
		{"gateway", s29, "192.168.1.1", -1, "requested address 192.168.1.1 is the gateway of subnet 192.168.1.0/29"},
		{"mapped gateway", s29, "::ffff:192.168.1.1", -1, "is the gateway"},
		{"broadcast", s29, "192.168.1.7", -1, "requested address 192.168.1.7 is not in range set 192.168.1.1-192.168.1.6"},
		{"network", s29, "192.168.1.0", -1, "is not in range set"},
		{"other subnet", s29, "192.168.2.5", -1, "is not in range set"},
		{"other family", s29, "2001:db8::5", -1, "is not in range set"},
		{"after RangeEnd", shortEnd, "192.168.1.5", -1, "requested address 192.168.1.5 is not in range set 192.168.1.1-192.168.1.4"},
		{"before RangeStart", lateStart, "192.168.1.2", -1, "requested address 192.168.1.2 is not in range set 192.168.1.3-192.168.1.6"},
		{"second range", multi, "10.0.1.5", 1, ""},
		// Range 0's gateway lies in range 1, where it is an ordinary address.
		{"another range's gateway", multi, "10.0.1.3", 1, ""},
		{"second range's gateway", multi, "10.0.1.254", -1, "is the gateway of subnet 10.0.1.0/24"},
		{"first range's gateway of range 1", multi, "10.0.1.1", 1, ""},
		{"ipv6", v6, "2001:db8::ffff:ffff:ffff:ffff", 0, ""},
		{"ipv6 gateway", v6, "2001:db8::1", -1, "is the gateway of subnet 2001:db8::/64"},
		{"ipv6 network", v6, "2001:db8::", -1, "is not in range set"},
	}
	for _, tc := range tests {
		i, err := tc.set.CheckRequested(ip(tc.addr))
		if diff := cmp.Diff(tc.index, i, netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+": index", diff)
		}
		if tc.wantErr == "" {
			if !(err == nil) {
				t.Errorf("%s: unexpected error %v", tc.name, err)
			}
		} else {
			errContains(t, tc.name, err, tc.wantErr)
		}
	}
	_, err := s29.CheckRequested(netip.Addr{})
	errContains(t, "zero address", err, "is not in range set")
}

// The error names its case and fields, so that errors.As tells a gateway
// from an address outside the set; its message is the one users see.
func TestCheckRequestedError(t *testing.T) {
	set := mustSet(t,
		RangeSpec{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.20"},
		RangeSpec{Subnet: "10.0.1.0/24"},
	)
	tests := []struct {
		addr string
		want RequestedError
		msg  string
	}{
		{"::ffff:10.0.1.1", RequestedError{Addr: ip("10.0.1.1"), Set: set, Gateway: true, Subnet: netip.MustParsePrefix("10.0.1.0/24")},
			"requested address 10.0.1.1 is the gateway of subnet 10.0.1.0/24; gateways are never handed out"},
		{"10.0.0.9", RequestedError{Addr: ip("10.0.0.9"), Set: set},
			"requested address 10.0.0.9 is not in range set 10.0.0.10-10.0.0.20,10.0.1.1-10.0.1.254"},
	}
	for _, tc := range tests {
		_, err := set.CheckRequested(ip(tc.addr))
		var re *RequestedError
		if !errors.As(err, &re) {
			t.Fatalf("%s: error %T %v is not a *RequestedError", tc.addr, err, err)
		}
		if !reflect.DeepEqual(*re, tc.want) {
			t.Errorf("%s: error fields %+v, want %+v", tc.addr, *re, tc.want)
		}
		if diff := cmp.Diff(tc.msg, err.Error(), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.addr+": message", diff)
		}
	}
	// The error keeps its own copy of the set.
	s := slices.Clone(set)
	_, err := s.CheckRequested(ip("10.0.0.9"))
	s[0].RangeEnd = ip("10.0.0.30")
	if diff := cmp.Diff(tests[1].msg, err.Error(), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "message after the set changed", diff)
	}
}

// Every address of a small set is either accepted by CheckRequested with
// the index of its range, or is that range's gateway.
func TestCheckRequestedAgreesWithRangeFor(t *testing.T) {
	for _, specs := range simulationConfigs {
		s := mustSet(t, specs...)
		for _, a := range enumerate(s) {
			i, err := s.CheckRequested(a)
			r, _ := s.RangeFor(a)
			if a == s[r].Gateway {
				if !(err != nil && i == -1) {
					t.Errorf("%s: gateway %v accepted", s, a)
				}
				continue
			}
			if !(err == nil && i == r) {
				t.Errorf("%s: CheckRequested(%v) = %d, %v; want %d", s, a, i, err, r)
			}
		}
		if !(fmt.Sprint(s) != "") {
			t.Errorf("empty set string")
		}
	}
}
