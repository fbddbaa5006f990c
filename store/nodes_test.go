package store

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// onNode reserves a dual-stack attachment for id on node, as an ADD does.
func onNode(t *testing.T, n *Network, node, id string, v4, v6 string) Attachment {
	t.Helper()
	att := dualStack(id, netip.MustParseAddr(v4), netip.MustParseAddr(v6), time.Now().UTC().Truncate(time.Millisecond))
	att.Node = node
	out, err := n.ReserveFirst(repairCtx(t), att, [][]AttachedAddr{att.IPs}, nil, nil)
	if err != nil || out.IPs == nil {
		t.Fatalf("ReserveFirst %s: %+v, %v", id, out, err)
	}
	return att
}

func nodeCounts(t *testing.T, n *Network, nodes ...string) []int64 {
	t.Helper()
	counts, err := n.CountNodeAddresses(repairCtx(t), nodes)
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

func nodeContainers(t *testing.T, n *Network, node string) []string {
	t.Helper()
	atts, err := n.NodeAttachments(repairCtx(t), node)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range atts {
		ids = append(ids, a.ContainerID)
	}
	slices.Sort(ids)
	return ids
}

// TestNodeIndexFollowsItsAddresses checks that every way an address is
// allocated or released keeps the node index exact: it is what GC, reclaim
// and the per-node counts read instead of the whole network.
func TestNodeIndexFollowsItsAddresses(t *testing.T) {
	n, cli := openTestNetwork(t, "index")
	ctx := repairCtx(t)
	onNode(t, n, "node-a", "a1", "192.0.2.2", "2001:db8::2")
	onNode(t, n, "node-a", "a2", "192.0.2.3", "2001:db8::3")
	onNode(t, n, "node-b", "b1", "192.0.2.4", "2001:db8::4")
	if err := n.Record(ctx, []Attachment{dualStack("r1", netip.MustParseAddr("192.0.2.5"), netip.MustParseAddr("2001:db8::5"), time.Now().UTC())}); err != nil {
		t.Fatal(err)
	}

	if got := nodeCounts(t, n, "node-a", "node-b", "node-c"); !slices.Equal(got, []int64{6, 2, 0}) {
		t.Fatalf("addresses per node %v, want [6 2 0] (node-a made a1, a2 and the recorded r1)", got)
	}
	if got := nodeContainers(t, n, "node-a"); !slices.Equal(got, []string{"a1", "a2", "r1"}) {
		t.Fatalf("node-a's attachments %v", got)
	}

	// DEL, releasing one address, and GC's batch release.
	if was, err := n.Release(ctx, "a1", "eth0", nil); err != nil || was == nil {
		t.Fatalf("Release a1: %v, %v", was, err)
	}
	if _, err := n.ReleaseAddress(ctx, *lookup(t, n, "2001:db8::3")); err != nil {
		t.Fatal(err)
	}
	b, err := n.NodeAttachments(ctx, "node-b")
	if err != nil || len(b) != 1 {
		t.Fatalf("node-b: %v, %v", b, err)
	}
	if released, _, err := n.ReleaseAttachments(ctx, b, nil); err != nil || released != 1 {
		t.Fatalf("ReleaseAttachments: %d, %v", released, err)
	}
	if got := nodeCounts(t, n, "node-a", "node-b"); !slices.Equal(got, []int64{3, 0}) {
		t.Fatalf("addresses per node after the releases %v, want [3 0]", got)
	}
	// Exactly the index keys of what is still allocated.
	resp, err := cli.Get(ctx, n.Prefix()+nodesDir, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)[len(n.Prefix()):]] = string(kv.Value)
	}
	want := map[string]string{
		"nodes/node-a/192.000.002.003":                         "a2/eth0",
		"nodes/node-a/192.000.002.005":                         "r1/eth0",
		"nodes/node-a/2001:0db8:0000:0000:0000:0000:0000:0005": "r1/eth0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("node index (-want +got):\n%s", diff)
	}
}

// TestLivenessIsWrittenWhenDueAndForgotten checks the liveness record's
// rules: ADD and DEL carry it in their transactions, other commands write
// it only when it is a SightingInterval old, and a reclaimed node is
// forgotten only when it holds nothing and was not seen again.
func TestLivenessIsWrittenWhenDueAndForgotten(t *testing.T) {
	n, _ := openTestNetwork(t, "liveness")
	ctx := repairCtx(t)
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	att := attachment("c1")
	if out, err := n.ReserveFirst(ctx, att, [][]AttachedAddr{candidate("192.0.2.2")}, nil, &ReserveExtras{Sighting: &Sighting{Node: "node-a", At: t0, By: "ADD"}}); err != nil || out.IPs == nil {
		t.Fatalf("ReserveFirst: %+v, %v", out, err)
	}
	seen := func() Sighting {
		t.Helper()
		all, err := n.Sightings(ctx)
		if err != nil || len(all) != 1 {
			t.Fatalf("sightings %+v, %v; want node-a's alone", all, err)
		}
		return all[0]
	}
	first := seen()
	if first.Node != "node-a" || !first.At.Equal(t0) || first.By != "ADD" {
		t.Fatalf("after ADD: %+v", first)
	}
	// Within the interval: no write.
	if err := n.Sight(ctx, Sighting{Node: "node-a", At: t0.Add(30 * time.Second), By: "STATUS"}); err != nil {
		t.Fatal(err)
	}
	if again := seen(); again.ModRevision != first.ModRevision {
		t.Fatalf("STATUS 30 s after ADD rewrote the record: %+v", again)
	}
	if err := n.Sight(ctx, Sighting{Node: "node-a", At: t0.Add(2 * time.Minute), By: "STATUS"}); err != nil {
		t.Fatal(err)
	}
	status := seen()
	if status.By != "STATUS" || !status.At.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("STATUS 2 min after ADD: %+v", status)
	}

	// Not forgotten while it holds an address.
	if ok, err := n.ForgetNode(ctx, status); err != nil || ok {
		t.Fatalf("ForgetNode of a node holding an address: %v, %v", ok, err)
	}
	// DEL writes liveness in its own transaction, when due.
	if _, err := n.Release(ctx, "c1", "eth0", &ReleasePolicy{Sighting: &Sighting{Node: "node-a", At: t0.Add(4 * time.Minute), By: "DEL"}}); err != nil {
		t.Fatal(err)
	}
	del := seen()
	if del.By != "DEL" {
		t.Fatalf("after DEL: %+v", del)
	}
	// Not forgotten with a stale listing (the node came back).
	if ok, err := n.ForgetNode(ctx, status); err != nil || ok {
		t.Fatalf("ForgetNode with a stale record: %v, %v", ok, err)
	}
	if ok, err := n.ForgetNode(ctx, del); err != nil || !ok {
		t.Fatalf("ForgetNode of an empty node: %v, %v", ok, err)
	}
	if all, err := n.Sightings(ctx); err != nil || len(all) != 0 {
		t.Fatalf("after ForgetNode: %+v, %v", all, err)
	}
}
