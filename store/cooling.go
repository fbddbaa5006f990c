package store

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
)

// Cooling addresses (ipam "cooldown", NOTES 28): an address that a
// release gives back to nobody stays taken for a while, so that stale ARP
// entries, conntrack state and endpoints that still name the old pod
// drain before another pod has it. The release writes, instead of
// deleting the ips/ key, a hold for nobody of kind HoldCooling, and a
// mark cooling/<address> whose value is when the cooling ends; both are
// bound to the releasing node's cooling lease (cooling-leases/<node>,
// reused as sticky holds' is, see leaser), so that etcd frees the address
// when the lease ends, with no plugin running. An operator's reservation
// and a sticky hold take precedence (planRelease); under etcd's NOSPACE
// alarm the release is a plain delete (planFree).

// coolingLayout writes the end of a cooling in fixed width, UTC, so that
// the byte order of cooling/ values is time order (etcd sorts by value).
const coolingLayout = "2006-01-02T15:04:05.000Z"

// coolingValue is the value of a cooling/ mark: when the cooling ends.
func coolingValue(until time.Time) string { return until.UTC().Format(coolingLayout) }

// Cooling is what the cooling addresses of some segments are: how many,
// and when the first of them is free again.
type Cooling struct {
	Count int64
	// FirstFree is the earliest end of their cooling; zero when Count
	// is 0 (or the marks' values are unreadable).
	FirstFree time.Time
}

// CountCooling counts the cooling addresses of segs and finds the
// earliest end of their cooling, in one round trip that transfers one
// mark per segment at most: a count over each segment's cooling/ marks,
// sorted by value (the end) and limited to the first.
func (n *Network) CountCooling(ctx context.Context, segs []core.Segment) (Cooling, error) {
	ops := make([]clientv3.Op, 0, len(segs))
	for _, s := range segs {
		from, end := n.keys.coolingSpan(s.From, s.To)
		ops = append(ops, clientv3.OpGet(from, clientv3.WithRange(end), clientv3.WithLimit(1),
			clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend)))
	}
	responses, err := n.readTxn(ctx, ops)
	if err != nil {
		return Cooling{}, fmt.Errorf("counting the cooling addresses of network %q: %w", n.name, err)
	}
	var out Cooling
	for _, r := range responses {
		out.Count += r.Count
		if len(r.Kvs) == 0 {
			continue
		}
		if t, err := time.Parse(coolingLayout, string(r.Kvs[0].Value)); err == nil && (out.FirstFree.IsZero() || t.Before(out.FirstFree)) {
			out.FirstFree = t
		}
	}
	return out, nil
}

// coolingOps write a cooling hold of h's address (its ips/ value given)
// and its cooling/ mark under lease.
func (n *Network) coolingOps(h HeldAddr, value string, lease clientv3.LeaseID) []clientv3.Op {
	return []clientv3.Op{
		clientv3.OpPut(n.keys.ip(h.Addr), value, clientv3.WithLease(lease)),
		clientv3.OpPut(n.keys.coolingMark(h.Addr), coolingValue(h.Hold.Until), clientv3.WithLease(lease)),
	}
}
