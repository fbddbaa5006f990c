package store

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
)

// CountTaken returns how many addresses of each segment are allocated, in
// one round trip that transfers counts only.
func (n *Network) CountTaken(ctx context.Context, segs []core.Segment) ([]int64, error) {
	ops := make([]clientv3.Op, 0, len(segs))
	for _, s := range segs {
		from, end := n.keys.ipSpan(s.From, s.To)
		ops = append(ops, clientv3.OpGet(from, clientv3.WithRange(end), clientv3.WithCountOnly()))
	}
	responses, err := n.readTxn(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("counting allocations of network %q: %w", n.name, err)
	}
	counts := make([]int64, len(responses))
	for i, r := range responses {
		counts[i] = r.Count
	}
	return counts, nil
}

// CountUsage returns, per segment, how many addresses are allocated (held
// ones included) and how many of those are held, in one round trip that
// transfers counts only.
func (n *Network) CountUsage(ctx context.Context, segs []core.Segment) (taken, held []int64, err error) {
	ops := make([]clientv3.Op, 0, 2*len(segs))
	for _, s := range segs {
		from, end := n.keys.ipSpan(s.From, s.To)
		ops = append(ops, clientv3.OpGet(from, clientv3.WithRange(end), clientv3.WithCountOnly()))
		from, end = n.keys.heldSpan(s.From, s.To)
		ops = append(ops, clientv3.OpGet(from, clientv3.WithRange(end), clientv3.WithCountOnly()))
	}
	responses, err := n.readTxn(ctx, ops)
	if err != nil {
		return nil, nil, fmt.Errorf("counting allocations of network %q: %w", n.name, err)
	}
	taken, held = make([]int64, len(segs)), make([]int64, len(segs))
	for i := range segs {
		taken[i], held[i] = responses[2*i].Count, responses[2*i+1].Count
	}
	return taken, held, nil
}
