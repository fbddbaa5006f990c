package config

import "testing"

// orderExample has a range set in each of the three places, written in the
// opposite of host-local's order.
const orderExample = `{"cniVersion": "1.0.0", "name": "order",
	"ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://127.0.0.1:2379"},
		"ranges": [[{"subnet": "10.3.0.0/16"}], [{"subnet": "10.4.0.0/16"}]],
		"subnet": "10.2.0.0/16", "rangeStart": "10.2.0.10", "rangeEnd": "10.2.0.20", "gateway": "10.2.0.1"},
	"runtimeConfig": {"ipRanges": [[{"subnet": "10.1.0.0/16"}]]}}`

// TestRangeSetOrder: Load and ReadRangeSets both give runtimeConfig.ipRanges,
// then the deprecated top-level range, then "ranges".
func TestRangeSetOrder(t *testing.T) {
	const want = "10.1.0.0/16 - gw  | 10.2.0.0/16 10.2.0.10-10.2.0.20 gw 10.2.0.1 | 10.3.0.0/16 - gw  | 10.4.0.0/16 - gw "
	n, err := Load([]byte(orderExample), "")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "Load", rangeSets(n), want)
	sets, err := ReadRangeSets([]byte(orderExample))
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "ReadRangeSets", rangeSets(&Network{RangeSets: sets}), want)
}

// TestReadRangeSetsOfRejected: ReadRangeSets reads the ranges of a
// configuration Load rejects for something else, and fails only when the
// ranges themselves cannot be read.
func TestReadRangeSetsOfRejected(t *testing.T) {
	for _, tc := range []struct{ name, stdin, sets string }{
		{"no name", `{"ipam": {"ranges": [[{"subnet": "192.0.2.0/24"}]]}}`, "192.0.2.0/24 - gw "},
		{"bad route and no etcdConfig", `{"name": "n", "ipam": {"routes": [{"dst": "nowhere"}], "subnet": "192.0.2.0/33"}}`, "192.0.2.0/33 - gw "},
		{"no ranges", `{"name": "n", "ipam": {}}`, ""},
	} {
		if _, err := Load([]byte(tc.stdin), ""); err == nil {
			t.Errorf("%s: Load accepted it", tc.name)
		}
		sets, err := ReadRangeSets([]byte(tc.stdin))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		expect(t, tc.name, rangeSets(&Network{RangeSets: sets}), tc.sets)
	}
	for _, tc := range []struct {
		name, stdin string
		kind        Kind
	}{
		{"no ipam", `{"name": "n"}`, Invalid},
		{"ipam null", `{"name": "n", "ipam": null}`, Invalid},
		{"ranges a string", `{"ipam": {"ranges": "x"}}`, Undecodable},
		{"ipRanges a number", `{"ipam": {}, "runtimeConfig": {"ipRanges": 1}}`, Undecodable},
		{"not JSON", `{"ipam": `, Undecodable},
	} {
		_, err := ReadRangeSets([]byte(tc.stdin))
		expectError(t, tc.name, err, tc.kind)
	}
}
