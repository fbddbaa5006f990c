package store

import (
	"net/netip"
	"sort"
	"strings"
	"testing"
)

func TestAddrKeyRoundTripsAndSortsLikeAddresses(t *testing.T) {
	addrs := []string{
		"0.0.0.0", "9.255.255.255", "10.0.0.1", "192.0.2.2", "192.0.2.10", "192.0.2.100", "255.255.255.255",
		"::", "::1", "2001:db8::2", "2001:db8::10", "2001:db8:1::", "fe80::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	}
	var keys []string
	for _, s := range addrs {
		a := netip.MustParseAddr(s)
		k := AddrKey(a)
		back, err := ParseAddrKey(k)
		if err != nil || back != a {
			t.Errorf("ParseAddrKey(AddrKey(%s) = %q) = %v, %v", a, k, back, err)
		}
		keys = append(keys, k)
	}
	// Within one family, key order must be address order, so that a range
	// read over keys is a range of addresses.
	for _, family := range [][]string{keys[:7], keys[7:]} {
		if !sort.StringsAreSorted(family) {
			t.Errorf("keys not in address order: %q", family)
		}
	}
	for _, bad := range []string{"", "1.2.3", "256.0.0.1", "1.2.3.4.5", "x", "fe80::1%eth0", "1.2.3.-4"} {
		if _, err := ParseAddrKey(bad); err == nil {
			t.Errorf("ParseAddrKey(%q) succeeded", bad)
		}
	}
}

func TestNamesCannotLeaveTheirNetworksPrefix(t *testing.T) {
	hostile := []string{"..", "../other", "a/b", "a\x00b", "a\nb", strings.Repeat("x", 1000), "\u2028", "%2F", "ips"}
	for _, name := range hostile {
		k, err := newKeys(name)
		if err != nil {
			t.Fatalf("newKeys(%q): %v", name, err)
		}
		rest := strings.TrimPrefix(k.prefix, Root)
		if strings.Count(rest, "/") != 1 || !strings.HasSuffix(rest, "/") {
			t.Errorf("network %q gives prefix %q: more than one path element", name, k.prefix)
		}
		for _, id := range hostile {
			key := k.container(id, id)
			if !strings.HasPrefix(key, k.prefix+containersDir) || strings.Count(strings.TrimPrefix(key, k.prefix+containersDir), "/") != 1 {
				t.Errorf("container %q in network %q gives key %q outside its place", id, name, key)
			}
		}
	}
	a, _ := newKeys("a")
	ab, _ := newKeys("a/b")
	if strings.HasPrefix(ab.prefix, a.prefix) {
		t.Errorf("network a/b's prefix %q lies inside network a's %q", ab.prefix, a.prefix)
	}
	if _, err := newKeys(""); err == nil {
		t.Error("an empty network name was accepted")
	}
}
