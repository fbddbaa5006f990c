package store

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// Direct tests of the store's transactions against a real etcd: the
// guarantees the rest of the plugin builds on.

// netipEqual lets cmp compare netip values, whose fields are unexported.
var netipEqual = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

func openTestNetwork(t *testing.T, name string) (*Network, *clientv3.Client) {
	t.Helper()
	cli := etcdtest.Start(t).Client(t)
	n, err := Open(cli, name)
	if err != nil {
		t.Fatal(err)
	}
	return n, cli
}

// candidate is one address of range set 0 as a one-set candidate.
func candidate(addr string) []AttachedAddr {
	return []AttachedAddr{{Address: netip.MustParsePrefix(addr + "/24"), RangeSet: 0}}
}

func attachment(id string) Attachment {
	return Attachment{ContainerID: id, IfName: "eth0", Node: "node-a", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestReserveFirstTakesTheFirstFreeCandidate(t *testing.T) {
	n, cli := openTestNetwork(t, "first-free")
	ctx := repairCtx(t)
	reserve(t, n, "holder", "192.0.2.2/24")

	got, err := n.ReserveFirst(ctx, attachment("c1"), [][]AttachedAddr{candidate("192.0.2.2"), candidate("192.0.2.3"), candidate("192.0.2.4")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Reservation{IPs: candidate("192.0.2.3"), Won: 1}, got, netipEqual); diff != "" {
		t.Fatalf("ReserveFirst (-want +got):\n%s", diff)
	}
	// The attachment, its address and the position are one transaction's:
	// the same create revision is what lets DEL free exactly these keys.
	att, err := n.Attachment(ctx, "c1", "eth0")
	if err != nil || att == nil {
		t.Fatalf("attachment: %+v, %v", att, err)
	}
	ip, err := cli.Get(ctx, n.keys.ip(netip.MustParseAddr("192.0.2.3")))
	if err != nil || len(ip.Kvs) != 1 || ip.Kvs[0].CreateRevision != att.CreateRevision {
		t.Fatalf("address key %+v (err %v) not created with attachment revision %d", ip.Kvs, err, att.CreateRevision)
	}
	pos, err := cli.Get(ctx, n.keys.lastReserved(0))
	if err != nil || len(pos.Kvs) != 1 || decodePosition(pos.Kvs[0].Value).Addr != netip.MustParseAddr("192.0.2.3") {
		t.Fatalf("round-robin position after reserving 192.0.2.3: %+v, %v", pos.Kvs, err)
	}
}

func TestReserveFirstAnswersWithAnExistingAttachment(t *testing.T) {
	n, cli := openTestNetwork(t, "existing")
	ctx := repairCtx(t)
	reserve(t, n, "c1", "192.0.2.2/24")

	got, err := n.ReserveFirst(ctx, attachment("c1"), [][]AttachedAddr{candidate("192.0.2.3")}, nil, nil)
	if err != nil || got.Existing == nil || got.IPs != nil {
		t.Fatalf("a second reservation for c1: %+v, %v; want the existing attachment and nothing reserved", got, err)
	}
	if diff := cmp.Diff(candidate("192.0.2.2"), got.Existing.IPs, netipEqual); diff != "" {
		t.Fatalf("existing attachment's addresses (-want +got):\n%s", diff)
	}
	taken, err := cli.Get(ctx, n.keys.ips(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || taken.Count != 1 {
		t.Fatalf("address keys after the refused reservation: %d, %v; want 1", taken.Count, err)
	}
}

func TestReserveFirstWithEveryCandidateTakenReadsTheSearchAndPositions(t *testing.T) {
	n, _ := openTestNetwork(t, "all-taken")
	ctx := repairCtx(t)
	reserve(t, n, "a", "192.0.2.2/24")
	reserve(t, n, "b", "192.0.2.3/24")
	search := [][]core.Segment{{{Range: 0, From: netip.MustParseAddr("192.0.2.2"), To: netip.MustParseAddr("192.0.2.5")}}}

	got, err := n.ReserveFirst(ctx, attachment("c1"), [][]AttachedAddr{candidate("192.0.2.2"), candidate("192.0.2.3")}, search, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Reservation{
		Lost: []netip.Addr{netip.MustParseAddr("192.0.2.2")},
		Observed: [][]core.Observation{{{
			Segment:  search[0][0],
			Taken:    []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")},
			Complete: true,
		}}},
	}
	// The same write read the position, as the last reservation left it:
	// how the core tells another node's move from a busy pool.
	if len(got.Positions) != 1 || got.Positions[0].Addr != netip.MustParseAddr("192.0.2.3") || got.Positions[0].Node != "node-a" || got.Positions[0].At.IsZero() {
		t.Errorf("positions read %+v, want 192.0.2.3 moved by node-a", got.Positions)
	}
	got.Positions = nil
	if diff := cmp.Diff(want, got, netipEqual); diff != "" {
		t.Fatalf("ReserveFirst with every candidate taken (-want +got):\n%s", diff)
	}
	if att, err := n.Attachment(ctx, "c1", "eth0"); err != nil || att != nil {
		t.Fatalf("a failed reservation left an attachment: %+v, %v", att, err)
	}
}

func TestReserveFirstRejectsNamesItCouldNotReadBack(t *testing.T) {
	n, _ := openTestNetwork(t, "names")
	bad := attachment("\xff")
	if _, err := n.ReserveFirst(repairCtx(t), bad, [][]AttachedAddr{candidate("192.0.2.2")}, nil, nil); err == nil {
		t.Fatal("a container ID that is not UTF-8 was reserved")
	}
	if held := lookup(t, n, "192.0.2.2"); held != nil {
		t.Fatalf("the rejected reservation wrote %+v", held)
	}
}

// TestReleaseFreesOnlyWhatItsAttachmentCreated: a release that arrives
// late, after the address was freed and handed to another container, must
// leave the new owner alone; a release of a stale read of an attachment
// that was replaced does nothing.
func TestReleaseFreesOnlyWhatItsAttachmentCreated(t *testing.T) {
	n, _ := openTestNetwork(t, "late-release")
	ctx := repairCtx(t)
	reserve(t, n, "c1", "192.0.2.2/24")
	stale, err := n.Attachment(ctx, "c1", "eth0")
	if err != nil || stale == nil {
		t.Fatal(stale, err)
	}
	if was, err := n.Release(ctx, "c1", "eth0", nil); err != nil || was == nil {
		t.Fatalf("Release c1: %+v, %v", was, err)
	}
	reserve(t, n, "c2", "192.0.2.2/24")
	reserve(t, n, "c1", "192.0.2.3/24") // c1 again, a new attachment

	released, _, err := n.ReleaseAttachments(ctx, []StoredAttachment{*stale}, nil)
	if err != nil || released != 0 {
		t.Fatalf("releasing a stale read of c1: %d released, %v; want 0", released, err)
	}
	if held := lookup(t, n, "192.0.2.2"); held == nil || held.ContainerID != "c2" {
		t.Fatalf("192.0.2.2 after the late release: %+v, want c2's", held)
	}
	if held := lookup(t, n, "192.0.2.3"); held == nil || held.ContainerID != "c1" {
		t.Fatalf("192.0.2.3 after the late release: %+v, want the new c1's", held)
	}
	if was, err := n.Release(ctx, "nobody", "eth0", nil); err != nil || was != nil {
		t.Fatalf("Release of an attachment that does not exist: %+v, %v; want nothing, no error", was, err)
	}
}

func TestCheckAttachmentNamesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		id, ifName string
		want       *NameError
	}{
		{"c1", "eth0", nil},
		{"", "eth0", &NameError{What: ContainerID, Reason: "is empty"}},
		{"c1", "", &NameError{What: IfName, Reason: "is empty"}},
		{string(make([]byte, MaxNameLength+1)), "eth0", &NameError{What: ContainerID, Reason: "is 1025 bytes long; the limit is 1024"}},
	} {
		var got *NameError
		if err := CheckAttachment(tc.id, tc.ifName); err != nil {
			got = err.(*NameError)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("CheckAttachment(%.10q, %q) (-want +got):\n%s", tc.id, tc.ifName, diff)
		}
	}
}
