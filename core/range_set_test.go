package core

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sub is shorthand for a range spec that has only a subnet.
func sub(s string) RangeSpec { return RangeSpec{Subnet: s} }

// mustSets canonicalises range sets or fails the test.
func mustSets(t testing.TB, specs ...[]RangeSpec) []RangeSet {
	t.Helper()
	sets, err := CanonicalizeRangeSets(specs)
	if err != nil {
		t.Fatalf("CanonicalizeRangeSets(%+v): %v", specs, err)
	}
	return sets
}

// mustSet canonicalises a single range set.
func mustSet(t testing.TB, specs ...RangeSpec) RangeSet {
	t.Helper()
	return mustSets(t, specs)[0]
}

func TestCanonicalizeRangeSetsValid(t *testing.T) {
	tests := []struct {
		name  string
		specs [][]RangeSpec
		want  []string // RangeSet.String() of each set
	}{
		// host-local: "should detect set membership correctly"
		{"two ipv4 ranges",
			[][]RangeSpec{{sub("192.168.0.0/24"), sub("172.16.1.0/24")}},
			[]string{"192.168.0.1-192.168.0.254,172.16.1.1-172.16.1.254"}},
		// host-local config_test: "Should parse a new-style config"
		{"new-style config",
			[][]RangeSpec{
				{{Subnet: "10.1.2.0/24", RangeStart: "10.1.2.9", RangeEnd: "10.1.2.20", Gateway: "10.1.2.30"}, sub("10.1.4.0/24")},
				{{Subnet: "11.1.2.0/24", RangeStart: "11.1.2.9", RangeEnd: "11.1.2.20", Gateway: "11.1.2.30"}},
			},
			[]string{"10.1.2.9-10.1.2.20,10.1.4.1-10.1.4.254", "11.1.2.9-11.1.2.20"}},
		// host-local config_test: "Should allow one v4 and v6 range"
		{"dual stack",
			[][]RangeSpec{{sub("10.1.2.0/24")}, {sub("2001:db8:1::/48")}},
			[]string{"10.1.2.1-10.1.2.254", "2001:db8:1::1-2001:db8:1:ffff:ffff:ffff:ffff:ffff"}},
		{"same subnet split in two ranges",
			[][]RangeSpec{{{Subnet: "10.0.0.0/24", RangeEnd: "10.0.0.127"}, {Subnet: "10.0.0.0/24", RangeStart: "10.0.0.128"}}},
			[]string{"10.0.0.1-10.0.0.127,10.0.0.128-10.0.0.254"}},
		{"two sets of one family",
			[][]RangeSpec{{sub("10.0.0.0/30")}, {sub("10.0.1.0/30")}, {sub("2001:db8::/126"), sub("2001:db8:1::/126")}},
			[]string{"10.0.0.1-10.0.0.2", "10.0.1.1-10.0.1.2", "2001:db8::1-2001:db8::3,2001:db8:1::1-2001:db8:1::3"}},
		{"huge sets",
			[][]RangeSpec{{sub("10.0.0.0/8")}, {sub("2001:db8::/64"), sub("2001:db8:1::/48")}},
			[]string{"10.0.0.1-10.255.255.254", "2001:db8::1-2001:db8::ffff:ffff:ffff:ffff,2001:db8:1::1-2001:db8:1:ffff:ffff:ffff:ffff:ffff"}},
	}
	for _, tc := range tests {
		sets, err := CanonicalizeRangeSets(tc.specs)
		if err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
			continue
		}
		problems := ValidateRangeSets(tc.specs)
		if diff := cmp.Diff(0, len(problems), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+": ValidateRangeSets problems", diff)
		}
		if len(sets) != len(tc.want) {
			t.Errorf("%s: got %d sets, want %d", tc.name, len(sets), len(tc.want))
			continue
		}
		for i, s := range sets {
			if diff := cmp.Diff(tc.want[i], s.String(), netipEqual); diff != "" {
				t.Errorf("%s (-want +got):\n%s", fmt.Sprintf("%s: set %d", tc.name, i), diff)
			}
			if diff := cmp.Diff(len(tc.specs[i]), len(s), netipEqual); diff != "" {
				t.Errorf("%s (-want +got):\n%s", fmt.Sprintf("%s: set %d ranges", tc.name, i), diff)
			}
			for j, r := range s {
				if diff := cmp.Diff(mustRange(t, tc.specs[i][j]), r, netipEqual); diff != "" {
					t.Errorf("%s (-want +got):\n%s", fmt.Sprintf("%s: set %d range %d", tc.name, i, j), diff)
				}
			}
		}
	}
}

func TestRangeSetMembership(t *testing.T) {
	// host-local: "should detect set membership correctly"
	s := mustSet(t, sub("192.168.0.0/24"), sub("172.16.1.0/24"))
	tests := []struct {
		addr  string
		index int
	}{
		{"192.168.0.55", 0},
		{"::ffff:192.168.0.55", 0},
		{"192.168.0.1", 0}, // the gateway belongs to the range
		{"192.168.0.254", 0},
		{"192.168.0.255", -1},
		{"192.168.0.0", -1},
		{"172.16.1.1", 1},
		{"172.16.1.200", 1},
		{"192.168.99.99", -1},
		{"2001:db8::1", -1},
	}
	for _, tc := range tests {
		i, ok := s.RangeFor(ip(tc.addr))
		if diff := cmp.Diff(tc.index, i, netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "RangeFor("+tc.addr+")", diff)
		}
		if diff := cmp.Diff(tc.index >= 0, ok, netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "RangeFor("+tc.addr+") ok", diff)
		}
		if diff := cmp.Diff(tc.index >= 0, s.Contains(ip(tc.addr)), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "Contains("+tc.addr+")", diff)
		}
	}
	if diff := cmp.Diff(4, s.Family(), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "Family", diff)
	}
	if diff := cmp.Diff(6, mustSet(t, sub("2001:db8::/64")).Family(), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "Family v6", diff)
	}
}

func TestRangeSetOverlaps(t *testing.T) {
	// host-local: "should discover overlaps outside a set"
	p1 := mustSet(t, sub("192.168.0.0/20"))
	p2 := mustSet(t, sub("192.168.2.0/24"))
	p3 := mustSet(t, sub("192.168.16.0/24"), sub("10.0.0.0/8"))
	p4 := mustSet(t, sub("10.20.0.0/16"))
	v6 := mustSet(t, sub("::/24"))
	v4 := mustSet(t, sub("0.0.0.0/24"))
	tests := []struct {
		name string
		a, b RangeSet
		want bool
	}{
		{"containing", p1, p2, true},
		{"disjoint", p1, p3, false},
		{"second range of a set", p3, p4, true},
		{"families", v4, v6, false},
		{"itself", p3, p3, true},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.a.Overlaps(tc.b), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+" (a,b)", diff)
		}
		if diff := cmp.Diff(tc.want, tc.b.Overlaps(tc.a), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+" (b,a)", diff)
		}
	}
}

func TestRangeSetCapacity(t *testing.T) {
	const max = ^uint64(0)
	tests := []struct {
		name  string
		specs []RangeSpec
		want  uint64
	}{
		{"one /29", []RangeSpec{sub("10.0.0.0/29")}, 5},
		{"three /30", []RangeSpec{sub("10.0.0.0/30"), sub("10.0.1.0/30"), sub("10.0.2.0/30")}, 3},
		{"custom gateways", []RangeSpec{
			{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.19", Gateway: "10.0.0.15"},
			{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.20", RangeEnd: "10.0.0.29", Gateway: "10.0.0.15"},
		}, 9 + 10},
		{"ipv4 /8 and /16", []RangeSpec{sub("10.0.0.0/8"), sub("172.16.0.0/16")}, 1<<24 - 3 + 1<<16 - 3},
		{"two ipv6 /65", []RangeSpec{sub("2001:db8::/65"), sub("2001:db8::8000:0:0:0/65")}, 2 * (1<<63 - 2)},
		{"ipv6 /64", []RangeSpec{sub("2001:db8::/64")}, max - 1},
		{"two ipv6 /64 saturate", []RangeSpec{sub("2001:db8::/64"), sub("2001:db8:0:1::/64")}, max},
		{"ipv6 /48 and /126", []RangeSpec{sub("2001:db8::/48"), sub("2001:db8:1::/126")}, max},
		{"ipv6 /126 and /48", []RangeSpec{sub("2001:db8:1::/126"), sub("2001:db8::/48")}, max},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, mustSet(t, tc.specs...).Capacity(), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestRangeSetCapacities(t *testing.T) {
	const max = ^uint64(0)
	tests := []struct {
		name  string
		specs []RangeSpec
		want  []uint64
	}{
		{"custom gateways", []RangeSpec{
			{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.19", Gateway: "10.0.0.15"},
			{Subnet: "10.0.0.0/24", RangeStart: "10.0.0.20", RangeEnd: "10.0.0.29", Gateway: "10.0.0.15"},
		}, []uint64{9, 10}},
		{"ipv6 /48 and /126", []RangeSpec{sub("2001:db8::/48"), sub("2001:db8:1::/126")}, []uint64{max, 2}},
		{"two ipv6 /64", []RangeSpec{sub("2001:db8::/64"), sub("2001:db8:0:1::/64")}, []uint64{max - 1, max - 1}},
	}
	for _, tc := range tests {
		got := mustSet(t, tc.specs...).Capacities()
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: Capacities() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// wantProblem is one expected ConfigError.
type wantProblem struct {
	set, rng int
	reason   string // a substring of Reason
}

func checkProblem(t *testing.T, what string, got *ConfigError, want wantProblem) {
	t.Helper()
	if diff := cmp.Diff(want.set, got.RangeSet, netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what+": RangeSet", diff)
	}
	if diff := cmp.Diff(want.rng, got.Range, netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what+": Range", diff)
	}
	if !strings.Contains(got.Reason, want.reason) {
		t.Errorf("%s: reason %q does not contain %q", what, got.Reason, want.reason)
	}
	msg := got.Error()
	switch {
	case want.set < 0:
		if diff := cmp.Diff(got.Reason, msg, netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what+": Error()", diff)
		}
	case want.rng < 0:
		if diff := cmp.Diff(fmt.Sprintf("range set %d: %s", want.set, got.Reason), msg, netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what+": Error()", diff)
		}
	default:
		if diff := cmp.Diff(fmt.Sprintf("range set %d, range %d: %s", want.set, want.rng, got.Reason), msg, netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", what+": Error()", diff)
		}
	}
}

func TestCanonicalizeRangeSetsErrors(t *testing.T) {
	tests := []struct {
		name  string
		specs [][]RangeSpec
		want  wantProblem
	}{
		{"nil", nil, wantProblem{-1, -1, "no IP ranges specified"}},
		{"no sets", [][]RangeSpec{}, wantProblem{-1, -1, "no IP ranges specified"}},
		{"empty first set", [][]RangeSpec{{}}, wantProblem{0, -1, "empty range set"}},
		{"empty second set", [][]RangeSpec{{sub("10.0.0.0/24")}, nil}, wantProblem{1, -1, "empty range set"}},
		{"bad range", [][]RangeSpec{{sub("10.0.0.0/24")}, {sub("10.0.1.0/24"), sub("10.0.2.0/24"), sub("10.0.3.7/24")}},
			wantProblem{1, 2, "host bits set"}},
		{"too small", [][]RangeSpec{{sub("192.0.2.0/31")}}, wantProblem{0, 0, "too small"}},
		{"missing subnet", [][]RangeSpec{{sub("10.0.0.0/24"), {Gateway: "10.0.0.1"}}}, wantProblem{0, 1, `"subnet" is missing`}},
		// host-local config_test: "should error on rangesets with different families"
		{"mixed families", [][]RangeSpec{{sub("10.1.0.0/22"), sub("2001:db8:5::/64")}},
			wantProblem{0, 1, "mixed address families: subnet 2001:db8:5::/64 is IPv6 but the set's first range is IPv4"}},
		{"mixed families v6 first", [][]RangeSpec{{sub("2001:db8:5::/64"), sub("10.1.0.0/22")}},
			wantProblem{0, 1, "subnet 10.1.0.0/22 is IPv4 but the set's first range is IPv6"}},
		// host-local config_test: "Should detect overlap within rangeset"
		{"overlap within set", [][]RangeSpec{{sub("10.1.0.0/22"), sub("10.1.2.0/24")}},
			wantProblem{0, 1, "subnets 10.1.0.1-10.1.3.254 and 10.1.2.1-10.1.2.254 overlap"}},
		// host-local range_set_test: "should discover overlaps within a set"
		{"overlap within set 2", [][]RangeSpec{{sub("192.168.0.0/20"), sub("192.168.2.0/24")}},
			wantProblem{0, 1, "subnets 192.168.0.1-192.168.15.254 and 192.168.2.1-192.168.2.254 overlap"}},
		{"overlap of third range with first", [][]RangeSpec{{sub("10.0.0.0/24"), sub("10.0.1.0/24"), {Subnet: "10.0.0.0/24", RangeStart: "10.0.0.254", RangeEnd: "10.0.0.255"}}},
			wantProblem{0, 2, "subnets 10.0.0.1-10.0.0.254 and 10.0.0.254-10.0.0.255 overlap"}},
		{"ipv6 overlap within set", [][]RangeSpec{{sub("2001:db8::/64"), sub("2001:db8::/48")}},
			wantProblem{0, 1, "overlap"}},
		// host-local config_test: "Should detect overlap between rangesets"
		{"overlap between sets", [][]RangeSpec{
			{sub("10.1.2.0/24"), sub("10.2.2.0/24")},
			{sub("10.1.4.0/24"), sub("10.1.6.0/24"), sub("10.1.8.0/24"), sub("10.1.2.0/24")},
		}, wantProblem{-1, -1, "range set 0 overlaps with range set 1"}},
		{"overlap between sets 1 and 2", [][]RangeSpec{
			{sub("2001:db8::/64")}, {sub("10.0.0.0/8")}, {sub("10.9.0.0/16")},
		}, wantProblem{-1, -1, "range set 1 overlaps with range set 2"}},
		// The first problem is the one returned.
		{"first of several", [][]RangeSpec{{sub("10.0.0.0/24"), sub("10.0.0.1/24")}, {}},
			wantProblem{0, 1, "host bits"}},
	}
	for _, tc := range tests {
		sets, err := CanonicalizeRangeSets(tc.specs)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !(sets == nil) {
			t.Errorf("%s: sets returned with an error: %v", tc.name, sets)
		}
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: error %T is not a *ConfigError", tc.name, err)
			continue
		}
		checkProblem(t, tc.name, ce, tc.want)
		// ValidateRangeSets reports the same problem first.
		problems := ValidateRangeSets(tc.specs)
		if len(problems) == 0 {
			t.Errorf("%s: ValidateRangeSets found nothing", tc.name)
			continue
		}
		if diff := cmp.Diff(*ce, *problems[0], netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name+": first problem", diff)
		}
	}
}

func TestValidateRangeSetsReportsAll(t *testing.T) {
	specs := [][]RangeSpec{
		// set 0: two bad ranges around a good one
		{sub("10.0.0.1/24"), sub("10.1.0.0/24"), sub("10.2.0.0/31")},
		// set 1: empty
		{},
		// set 2: two ranges of the wrong family
		{sub("2001:db8::/64"), sub("10.3.0.0/24"), sub("10.4.0.0/24"), sub("2001:db8:1::/64")},
		// set 3: three mutually overlapping ranges
		{sub("10.5.0.0/16"), sub("10.5.1.0/24"), sub("10.5.2.0/24")},
		// set 4, 5 and 6 overlap pairwise
		{sub("10.6.0.0/16")},
		{sub("10.6.1.0/24")},
		{sub("10.6.2.0/24"), sub("10.7.0.0/24")},
		// set 7 is fine
		{sub("2001:db8:9::/64")},
		// set 8: a bad range and an overlap with set 7 (not checked: the
		// set is invalid already)
		{sub("2001:db8:9::/64"), {Subnet: "2001:db8:a::/64", RangeStart: "2001:db8:b::"}},
		// set 9: bad gateway, bad start, bad end
		{{Subnet: "10.8.0.0/24", Gateway: "2001:db8::1"}, {Subnet: "10.9.0.0/24", RangeStart: "10.10.0.1"}, {Subnet: "10.11.0.0/24", RangeEnd: "x"}},
	}
	want := []wantProblem{
		{0, 0, "host bits"},
		{0, 2, "too small"},
		{1, -1, "empty range set"},
		{2, 1, "mixed address families"},
		{2, 2, "mixed address families"},
		{3, 1, "subnets 10.5.0.1-10.5.255.254 and 10.5.1.1-10.5.1.254 overlap"},
		{3, 2, "subnets 10.5.0.1-10.5.255.254 and 10.5.2.1-10.5.2.254 overlap"},
		{8, 1, "rangeStart 2001:db8:b:: is not in subnet 2001:db8:a::/64"},
		{9, 0, "gateway 2001:db8::1 is not in the address family"},
		{9, 1, "rangeStart 10.10.0.1 is not in subnet 10.9.0.0/24"},
		{9, 2, `rangeEnd: "x"`},
		{-1, -1, "range set 4 overlaps with range set 5"},
		{-1, -1, "range set 4 overlaps with range set 6"},
	}
	problems := ValidateRangeSets(specs)
	if len(problems) != len(want) {
		for _, p := range problems {
			t.Logf("problem: %v", p)
		}
		t.Fatalf("got %d problems, want %d", len(problems), len(want))
	}
	for i, w := range want {
		checkProblem(t, fmt.Sprintf("problem %d", i), problems[i], w)
	}
	// CanonicalizeRangeSets stops at the first.
	_, err := CanonicalizeRangeSets(specs)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("CanonicalizeRangeSets error %v is not a *ConfigError", err)
	}
	if diff := cmp.Diff(*problems[0], *ce, netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "first problem", diff)
	}
}

func TestValidateRangeSetsValid(t *testing.T) {
	problems := ValidateRangeSets([][]RangeSpec{{sub("10.0.0.0/24")}, {sub("2001:db8::/64")}})
	if !(problems == nil) {
		t.Errorf("problems for a valid config: %v", problems)
	}
}

func TestRangeSetString(t *testing.T) {
	tests := []struct {
		specs []RangeSpec
		want  string
	}{
		{[]RangeSpec{sub("192.168.1.0/29")}, "192.168.1.1-192.168.1.6"},
		{[]RangeSpec{sub("192.168.0.0/24"), sub("172.16.1.0/24")}, "192.168.0.1-192.168.0.254,172.16.1.1-172.16.1.254"},
		{[]RangeSpec{sub("2001:db8::/126"), {Subnet: "2001:db8:1::/64", RangeStart: "2001:db8:1::10", RangeEnd: "2001:db8:1::20"}},
			"2001:db8::1-2001:db8::3,2001:db8:1::10-2001:db8:1::20"},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, mustSet(t, tc.specs...).String(), netipEqual); diff != "" {
			t.Errorf("%s (-want +got):\n%s", "String", diff)
		}
	}
	if diff := cmp.Diff("", RangeSet{}.String(), netipEqual); diff != "" {
		t.Errorf("%s (-want +got):\n%s", "empty String", diff)
	}
}
