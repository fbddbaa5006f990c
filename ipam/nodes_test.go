package ipam

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// TestGCReadsOnlyItsNodesKeys fills a network with 20,000 attachments of
// 1,000 nodes and runs one node's GC: it must read that node's keys only,
// so that a thousand nodes' GCs cost linear, not quadratic, work.
func TestGCReadsOnlyItsNodesKeys(t *testing.T) {
	const nodes, perNode = 1000, 20
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "gc-scale", []core.RangeSpec{{Subnet: "10.30.0.0/16"}})
	w := &wire{calls: map[string]int{}}
	s, err := Open(conf, Options{Core: native.New(), Node: "node-0500", DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(w.interceptor)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	created := time.Now().UTC().Truncate(time.Millisecond)
	atts := make([]store.Attachment, 0, nodes*perNode)
	a := netip.MustParseAddr("10.30.0.2")
	for n := 0; n < nodes; n++ {
		for c := 0; c < perNode; c++ {
			atts = append(atts, store.Attachment{ContainerID: fmt.Sprintf("n%04d-c%02d", n, c), IfName: "eth0",
				Node: fmt.Sprintf("node-%04d", n), Created: created,
				IPs: []store.AttachedAddr{{Address: netip.PrefixFrom(a, 16), RangeSet: 0}}})
			a = a.Next()
		}
	}
	if err := s.net.Record(ctx(t), atts); err != nil {
		t.Fatal(err)
	}
	var keep []types.GCAttachment
	for c := 0; c < perNode; c += 2 {
		keep = append(keep, types.GCAttachment{ContainerID: fmt.Sprintf("n0500-c%02d", c), IfName: "eth0"})
	}

	var released []store.StoredAttachment
	requests, gcBytes := w.measure(func() {
		if released, err = s.GC(ctx(t), keep); err != nil {
			t.Fatal(err)
		}
	})
	if len(released) != perNode/2 {
		t.Fatalf("GC released %d attachments, want %d", len(released), perNode/2)
	}
	for _, r := range released {
		if r.Node != "node-0500" || slices.ContainsFunc(keep, func(k types.GCAttachment) bool { return k.ContainerID == r.ContainerID }) {
			t.Fatalf("GC released %s of %s", r.ContainerID, r.Node)
		}
	}
	_, networkBytes := w.measure(func() {
		if _, err := s.Attachments(ctx(t)); err != nil {
			t.Fatal(err)
		}
	})
	// The node's 20 index keys and 20 attachments are about 6 KB; the
	// network's attachments alone are some 5 MB.
	if gcBytes > 16<<10 || gcBytes*100 > networkBytes {
		t.Fatalf("GC of one node read %d bytes in %d requests; the whole network's attachments are %d bytes", gcBytes, requests, networkBytes)
	}
	t.Logf("GC of one node among %d: %d requests, %d bytes read; all attachments: %d bytes", nodes, requests, gcBytes, networkBytes)

	counts, err := s.net.CountNodeAddresses(ctx(t), []string{"node-0499", "node-0500", "node-0501"})
	if err != nil || !slices.Equal(counts, []int64{perNode, perNode / 2, perNode}) {
		t.Fatalf("addresses per node after GC: %v, %v", counts, err)
	}
}

// clockAt opens a session on node whose clock runs offset from now.
func clockAt(t *testing.T, conf *config.Network, node string, offset time.Duration) *Session {
	t.Helper()
	s, err := Open(conf, Options{Core: native.New(), Node: node, Now: func() time.Time { return time.Now().Add(offset) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestReclaimReleasesOnlyWhatIsStillAsListed: of three nodes one went
// silent; reclaim lists exactly its attachments, and releases them, but a
// DEL that raced it and the address another container took meanwhile are
// left alone, and the node, seen again by that DEL, is not forgotten.
func TestReclaimReleasesOnlyWhatIsStillAsListed(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "reclaim", []core.RangeSpec{{Subnet: "198.51.100.0/24"}}, []core.RangeSpec{{Subnet: "2001:db8:40::/64"}})
	a := clockAt(t, conf, "node-a", 0)
	b := clockAt(t, conf, "node-b", -5*time.Minute)
	c := clockAt(t, conf, "node-c", -2*time.Hour)
	mustAdd(t, a, "a1")
	mustAdd(t, b, "b1")
	var cAddrs [][]store.AttachedAddr
	for _, id := range []string{"c1", "c2", "c3"} {
		ips, err := c.Add(ctx(t), id, "eth0", nil)
		if err != nil {
			t.Fatal(err)
		}
		cAddrs = append(cAddrs, ips)
	}

	if _, err := a.SilentNodes(ctx(t), time.Minute); err == nil {
		t.Fatal("SilentNodes accepted a one-minute silence")
	}
	silent, err := a.SilentNodes(ctx(t), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(silent) != 1 || silent[0].Node != "node-c" || len(silent[0].Attachments) != 3 || silent[0].Addresses != 6 {
		t.Fatalf("silent for an hour: %+v, want node-c with 3 attachments and 6 addresses", silent)
	}

	// Between the listing and the release, node-c comes back and
	// deletes c1, and c1's IPv4 address goes to a new container on
	// node-a.
	back := clockAt(t, conf, "node-c", 0)
	if err := back.Del(ctx(t), "c1", "eth0"); err != nil {
		t.Fatal(err)
	}
	taker, err := a.Add(ctx(t), "a2", "eth0", []netip.Addr{cAddrs[0][0].Address.Addr()})
	if err != nil {
		t.Fatal(err)
	}

	released, forgotten, err := a.Reclaim(ctx(t), silent[0])
	if err != nil {
		t.Fatal(err)
	}
	if released != 2 || forgotten {
		t.Fatalf("Reclaim released %d and forgot the node %v; want 2 (c2, c3) and not forgotten (its DEL was seen)", released, forgotten)
	}
	held, err := a.LookupAddress(ctx(t), taker[0].Address.Addr())
	if err != nil || held == nil || held.ContainerID != "a2" {
		t.Fatalf("c1's old address after reclaim: %+v, %v; want a2's", held, err)
	}
	nodes, err := a.Nodes(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, n := range nodes {
		got[n.Node] = n.Addresses
	}
	if want := map[string]int64{"node-a": 4, "node-b": 2, "node-c": 0}; !maps.Equal(got, want) {
		t.Fatalf("addresses per node after reclaim %v, want %v", got, want)
	}
	allocs, err := a.Allocations(ctx(t))
	if err != nil || len(allocs) != 6 {
		t.Fatalf("%d allocations after reclaim (%v), want a1, a2 and b1's 6", len(allocs), err)
	}
}
