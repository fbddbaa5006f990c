package store

import (
	"net/netip"
	"testing"
)

// TestKeyNamesAreTheDocumentedLayout pins the exported key names to the
// layout the README documents, which the benchmark's floor relies on to
// write exactly an ADD's keys.
func TestKeyNamesAreTheDocumentedLayout(t *testing.T) {
	n, err := Open(nil, "net/a")
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		n.AttachmentKey("c 1", "eth0"):                              "/etcd-cni/networks/net%2Fa/containers/c%201/eth0",
		n.AddressKey(netip.MustParseAddr("198.18.0.2")):             "/etcd-cni/networks/net%2Fa/ips/198.018.000.002",
		n.PositionKey(1):                                            "/etcd-cni/networks/net%2Fa/last-reserved/1",
		n.NodeIndexKey("node/1", netip.MustParseAddr("198.18.0.2")): "/etcd-cni/networks/net%2Fa/nodes/node%2F1/198.018.000.002",
		n.SeenKey("node/1"):                                         "/etcd-cni/networks/net%2Fa/seen/node%2F1",
		NodeIndexValue("c 1", "eth0"):                               "c%201/eth0",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}
