package store

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

func recordCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recorded is one key of a network as Record or an ADD leaves it.
type recorded struct {
	value          string
	createRevision int64
}

// networkKeys returns every key of n (relative to its prefix) with its
// value and create revision.
func networkKeys(t *testing.T, cli *clientv3.Client, n *Network) map[string]recorded {
	t.Helper()
	resp, err := cli.Get(recordCtx(t), n.Prefix(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]recorded{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), n.Prefix())] = recorded{string(kv.Value), kv.CreateRevision}
	}
	return out
}

// dualStack is an attachment holding one address in each of two range
// sets, as an ADD on a dual-stack network makes it.
func dualStack(id string, v4, v6 netip.Addr, created time.Time) Attachment {
	return Attachment{ContainerID: id, IfName: "eth0", Node: "node-a", Created: created, IPs: []AttachedAddr{
		{Address: netip.PrefixFrom(v4, 24), Gateway: netip.MustParseAddr("192.0.2.1"), RangeSet: 0},
		{Address: netip.PrefixFrom(v6, 64), RangeSet: 1},
	}}
}

// TestRecordWritesWhatAnAddWrites records an attachment in one network and
// reserves the same one with ReserveFirst, as an ADD does, in another: the
// keys and values must be the same, but for the round-robin positions,
// which Record leaves alone, and the attachment and its addresses must
// share a create revision.
func TestRecordWritesWhatAnAddWrites(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	att := dualStack("c1", netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("2001:db8::7"), created)

	added, err := Open(cli, "added")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := added.ReserveFirst(recordCtx(t), att, [][]AttachedAddr{att.IPs}, nil, nil); err != nil || out.IPs == nil {
		t.Fatalf("ReserveFirst: %+v, %v", out, err)
	}
	rec, err := Open(cli, "recorded")
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(recordCtx(t), []Attachment{att}); err != nil {
		t.Fatal(err)
	}

	want := networkKeys(t, cli, added)
	maps.DeleteFunc(want, func(k string, _ recorded) bool { return strings.HasPrefix(k, lastReservedDir) })
	got := networkKeys(t, cli, rec)
	if len(got) != len(want) || len(got) != 5 {
		t.Fatalf("Record wrote %d keys %v, an ADD wrote %d (not counting positions) %v", len(got), got, len(want), want)
	}
	attRev := got[containersDir+"c1/eth0"].createRevision
	for k, w := range want {
		g, ok := got[k]
		if !ok || g.value != w.value {
			t.Errorf("key %s: Record wrote %q (exists %v), an ADD wrote %q", k, g.value, ok, w.value)
		}
		if g.createRevision != attRev {
			t.Errorf("key %s was created at revision %d, the attachment at %d", k, g.createRevision, attRev)
		}
	}
}

// TestReleaseFreesExactlyARecordedAttachment records more attachments than
// one transaction holds, then releases one: exactly its two addresses must
// become free, and every other attachment must keep its own.
func TestReleaseFreesExactlyARecordedAttachment(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	n, err := Open(cli, "fill")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().UTC()
	const count = 150 // 450 puts: four transactions
	var atts []Attachment
	v4, v6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")
	for i := range count {
		atts = append(atts, dualStack(fmt.Sprintf("c%d", i), v4, v6, created))
		v4, v6 = v4.Next(), v6.Next()
	}
	ctx := recordCtx(t)
	if err := n.Record(ctx, atts); err != nil {
		t.Fatal(err)
	}

	victim := atts[77]
	was, err := n.Release(ctx, victim.ContainerID, victim.IfName, nil)
	if err != nil || was == nil || len(was.IPs) != 2 {
		t.Fatalf("Release %s: %+v, %v; want the recorded attachment", victim.ContainerID, was, err)
	}
	held, err := n.Allocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2*(count-1) {
		t.Fatalf("%d addresses held after releasing one attachment of %d, want %d", len(held), count, 2*(count-1))
	}
	for _, h := range held {
		for _, ip := range victim.IPs {
			if h.Addr == ip.Address.Addr() {
				t.Errorf("released address %s is still held by %q", h.Addr, h.ContainerID)
			}
		}
	}
	listed, err := n.Attachments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != count-1 {
		t.Fatalf("%d attachments after releasing one of %d", len(listed), count)
	}
	for _, a := range listed {
		if a.ContainerID == victim.ContainerID {
			t.Fatalf("released attachment %s is still listed", a.ContainerID)
		}
		if missing, err := n.Missing(ctx, a); err != nil || len(missing) != 0 {
			t.Fatalf("attachment %s lacks addresses %v (%v) after another was released", a.ContainerID, missing, err)
		}
	}
}

// TestRecordRefusesTakenAddresses checks that Record, like an ADD, never
// overwrites an address someone holds: the batch with the taken address
// writes nothing.
func TestRecordRefusesTakenAddresses(t *testing.T) {
	cli := etcdtest.Start(t).Client(t)
	n, err := Open(cli, "taken")
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().UTC()
	ctx := recordCtx(t)
	a, b := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	if err := n.Record(ctx, []Attachment{dualStack("first", a, netip.MustParseAddr("2001:db8::2"), created)}); err != nil {
		t.Fatal(err)
	}
	before := networkKeys(t, cli, n)
	err = n.Record(ctx, []Attachment{
		dualStack("second", b, netip.MustParseAddr("2001:db8::3"), created),
		dualStack("third", a, netip.MustParseAddr("2001:db8::4"), created),
	})
	if err == nil {
		t.Fatal("Record over a taken address succeeded")
	}
	if after := networkKeys(t, cli, n); !maps.Equal(after, before) {
		t.Fatalf("the refused Record changed the network:\nbefore %v\nafter  %v", before, after)
	}
}
