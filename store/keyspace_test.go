package store

import (
	"context"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// hostileNames are network names, container IDs and interface names that
// would escape or alias a key if they were pasted into it unencoded.
var hostileNames = []string{
	"..", ".", "../other", "/", "a/b", "a/", "/a", "a\x00b", "a\nb", "a b", "\u2028", "\U0001F600",
	"%2F", "a%2Fb", "%", "ips", "containers", "last-reserved", "other/containers/x",
	strings.Repeat("y", MaxNameLength),
}

// TestHostileNamesStayInTheirNetwork writes an attachment for every pair
// of hostile network name and hostile container ID (and interface name)
// into a real etcd, then checks the whole key space: every key lies under
// its own network's prefix, each network lists exactly its own
// attachments with their names intact, and releasing them all leaves only
// the round-robin positions.
func TestHostileNamesStayInTheirNetwork(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	prefixes := map[string]string{}
	for _, netName := range hostileNames {
		n, err := Open(cli, netName)
		if err != nil {
			t.Fatalf("Open(%q): %v", netName, err)
		}
		prefixes[netName] = n.Prefix()
		for i, id := range hostileNames {
			att := Attachment{
				ContainerID: id, IfName: hostileNames[len(hostileNames)-1-i], Node: "node\n1",
				Created: time.Unix(1, 0).UTC(),
				IPs:     []AttachedAddr{{Address: netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 24)}},
			}
			out, err := n.ReserveFirst(ctx, att, [][]AttachedAddr{att.IPs}, nil, nil)
			if err != nil || out.IPs == nil {
				t.Fatalf("ReserveFirst(%q, %q) = %+v, %v", netName, id, out, err)
			}
		}
	}
	// No network's prefix may contain another's.
	for a, pa := range prefixes {
		for b, pb := range prefixes {
			if a != b && strings.HasPrefix(pb, pa) {
				t.Errorf("network %q's keys (%q) lie inside network %q's (%q)", b, pb, a, pa)
			}
		}
	}
	resp, err := cli.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	perNetwork := len(hostileNames)*3 + 1 // attachments, addresses, their index keys, one position
	if want := len(hostileNames) * perNetwork; len(resp.Kvs) != want {
		t.Fatalf("etcd holds %d keys, want %d", len(resp.Kvs), want)
	}
	for _, kv := range resp.Kvs {
		owners := 0
		for _, p := range prefixes {
			if strings.HasPrefix(string(kv.Key), p) {
				owners++
			}
		}
		if owners != 1 {
			t.Errorf("key %q belongs to %d networks", kv.Key, owners)
		}
	}
	for netName := range prefixes {
		n, _ := Open(cli, netName)
		atts, err := n.Attachments(ctx)
		if err != nil {
			t.Fatalf("Attachments(%q): %v", netName, err)
		}
		var got []string
		for _, a := range atts {
			got = append(got, a.ContainerID)
			if _, err := n.Release(ctx, a.ContainerID, a.IfName, nil); err != nil {
				t.Fatalf("Release(%q, %q): %v", a.ContainerID, a.IfName, err)
			}
		}
		want := append([]string(nil), hostileNames...)
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, "\x01") != strings.Join(want, "\x01") {
			t.Errorf("network %q lists %q, want %q", netName, got, want)
		}
	}
	resp, err = cli.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if !strings.Contains(string(kv.Key), "/"+lastReservedDir) {
			t.Errorf("key %q survived releasing everything", kv.Key)
		}
	}
}

// TestUnstorableNamesAreRejected covers the names that keys could encode
// but JSON values could not hold (invalid UTF-8), and overlong ones: they
// are refused before anything is written.
func TestUnstorableNamesAreRejected(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	long := strings.Repeat("n", MaxNameLength+1)
	for _, name := range []string{long, "\xff\xfe", "a\x80"} {
		if _, err := Open(cli, name); err == nil {
			t.Errorf("network name %q was accepted", name)
		}
	}
	n, err := Open(cli, "ok")
	if err != nil {
		t.Fatal(err)
	}
	addr := []AttachedAddr{{Address: netip.MustParsePrefix("192.0.2.5/24")}}
	for _, att := range []Attachment{
		{ContainerID: long, IfName: "eth0", IPs: addr},
		{ContainerID: "\xff\xfe", IfName: "eth0", IPs: addr},
		{ContainerID: "c", IfName: "eth\xff", IPs: addr},
		{ContainerID: "", IfName: "eth0", IPs: addr},
	} {
		if out, err := n.ReserveFirst(ctx, att, [][]AttachedAddr{att.IPs}, nil, nil); err == nil {
			t.Errorf("ReserveFirst(%q, %q) = %+v, want an error", att.ContainerID, att.IfName, out)
		}
	}
	resp, err := cli.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 {
		t.Errorf("rejected names left %d keys", resp.Count)
	}
}
