package store

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

func repairCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// reserve makes an attachment of containerID holding addrs (one per range
// set, in order), as an ADD does.
func reserve(t *testing.T, n *Network, containerID string, addrs ...string) {
	t.Helper()
	att := Attachment{ContainerID: containerID, IfName: "eth0", Node: "node-a", Created: time.Now().UTC()}
	for i, a := range addrs {
		att.IPs = append(att.IPs, AttachedAddr{Address: netip.MustParsePrefix(a), RangeSet: i})
	}
	out, err := n.ReserveFirst(repairCtx(t), att, [][]AttachedAddr{att.IPs}, nil, nil)
	if err != nil || out.IPs == nil {
		t.Fatalf("ReserveFirst %s: %+v, %v", containerID, out, err)
	}
}

func lookup(t *testing.T, n *Network, addr string) *StoredAllocation {
	t.Helper()
	held, err := n.LookupAddress(repairCtx(t), netip.MustParseAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	return held
}

func TestReleaseAddressUpdatesItsAttachment(t *testing.T) {
	srv := etcdtest.Start(t)
	n, err := Open(srv.Client(t), "repair")
	if err != nil {
		t.Fatal(err)
	}
	ctx := repairCtx(t)
	reserve(t, n, "c1", "192.0.2.2/24", "2001:db8::2/64")
	before, _ := n.Attachment(ctx, "c1", "eth0")

	was, err := n.ReleaseAddress(ctx, *lookup(t, n, "192.0.2.2"))
	if err != nil || was == nil || len(was.IPs) != 2 {
		t.Fatalf("ReleaseAddress: %+v, %v; want the attachment as it was", was, err)
	}
	if lookup(t, n, "192.0.2.2") != nil {
		t.Fatal("the address is still allocated")
	}
	after, err := n.Attachment(ctx, "c1", "eth0")
	if err != nil || after == nil || len(after.IPs) != 1 || after.IPs[0].Address.String() != "2001:db8::2/64" {
		t.Fatalf("attachment after release: %+v, %v", after, err)
	}
	// The remaining address is still recognised as the attachment's.
	if after.CreateRevision != before.CreateRevision {
		t.Fatalf("create revision changed from %d to %d", before.CreateRevision, after.CreateRevision)
	}
	if missing, err := n.Missing(ctx, *after); err != nil || len(missing) != 0 {
		t.Fatalf("Missing after release: %v, %v", missing, err)
	}
	// The last address takes the attachment with it.
	if _, err := n.ReleaseAddress(ctx, *lookup(t, n, "2001:db8::2")); err != nil {
		t.Fatal(err)
	}
	if att, err := n.Attachment(ctx, "c1", "eth0"); err != nil || att != nil {
		t.Fatalf("attachment after its last address went: %+v, %v", att, err)
	}
}

func TestReleaseAddressRefusesANewOwner(t *testing.T) {
	srv := etcdtest.Start(t)
	n, err := Open(srv.Client(t), "repair")
	if err != nil {
		t.Fatal(err)
	}
	ctx := repairCtx(t)
	reserve(t, n, "c1", "192.0.2.2/24")
	shown := *lookup(t, n, "192.0.2.2")
	// Between the read and the release, c1 goes and c2 takes the address.
	if _, err := n.Release(ctx, "c1", "eth0", nil); err != nil {
		t.Fatal(err)
	}
	reserve(t, n, "c2", "192.0.2.2/24")
	if _, err := n.ReleaseAddress(ctx, shown); !errors.Is(err, ErrOwnerChanged) {
		t.Fatalf("ReleaseAddress of a re-allocated address: %v, want ErrOwnerChanged", err)
	}
	if held := lookup(t, n, "192.0.2.2"); held == nil || held.ContainerID != "c2" {
		t.Fatalf("the new owner's allocation: %+v", held)
	}
	if att, _ := n.Attachment(ctx, "c2", "eth0"); att == nil || len(att.IPs) != 1 {
		t.Fatalf("the new owner's attachment: %+v", att)
	}
	// Released meanwhile: refused too.
	shown = *lookup(t, n, "192.0.2.2")
	if _, err := n.Release(ctx, "c2", "eth0", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ReleaseAddress(ctx, shown); !errors.Is(err, ErrOwnerChanged) {
		t.Fatalf("ReleaseAddress of a released address: %v, want ErrOwnerChanged", err)
	}
}

func TestReleaseAddressWithoutAttachment(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	n, err := Open(cli, "repair")
	if err != nil {
		t.Fatal(err)
	}
	ctx := repairCtx(t)
	// An allocation left behind without its attachment (written by hand,
	// or by an older version) and one whose owner is unreadable.
	for _, kv := range [][2]string{
		{n.keys.ip(netip.MustParseAddr("192.0.2.7")), `{"containerID":"gone","ifName":"eth0","node":"node-b"}`},
		{n.keys.ip(netip.MustParseAddr("192.0.2.8")), `not json`},
	} {
		if _, err := cli.Put(ctx, kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if was, err := n.ReleaseAddress(ctx, *lookup(t, n, "192.0.2.7")); err != nil || was != nil {
		t.Fatalf("ReleaseAddress of an orphan: %+v, %v", was, err)
	}
	all, err := n.Allocations(ctx)
	if err != nil || len(all) != 1 || all[0].Addr.String() != "192.0.2.8" || all[0].ContainerID != "" {
		t.Fatalf("Allocations: %+v, %v; want only the unreadable one, listed", all, err)
	}
	if held := lookup(t, n, "192.0.2.8"); held.ContainerID != "" || held.CreateRevision != all[0].CreateRevision {
		t.Fatalf("LookupAddress of an unreadable allocation: %+v", held)
	}
	if _, err := n.ReleaseAddress(ctx, all[0]); err != nil {
		t.Fatal(err)
	}
	if all, _ := n.Allocations(ctx); len(all) != 0 {
		t.Fatalf("left: %+v", all)
	}
}
