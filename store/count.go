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
		ops = append(ops, countOp(n.keys.ipSpan(s.From, s.To)))
	}
	counts, err := n.countTxn(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("counting allocations of network %q: %w", n.name, err)
	}
	return counts, nil
}

// CountUsage returns, per segment, how many addresses are allocated (held
// and cooling ones included), how many of those are held and how many are
// cooling, in one round trip that transfers counts only.
func (n *Network) CountUsage(ctx context.Context, segs []core.Segment) (taken, held, cooling []int64, err error) {
	ops := make([]clientv3.Op, 0, 3*len(segs))
	for _, s := range segs {
		ops = append(ops, countOp(n.keys.ipSpan(s.From, s.To)), countOp(n.keys.heldSpan(s.From, s.To)),
			countOp(n.keys.coolingSpan(s.From, s.To)))
	}
	counts, err := n.countTxn(ctx, ops)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("counting allocations of network %q: %w", n.name, err)
	}
	taken, held, cooling = make([]int64, len(segs)), make([]int64, len(segs)), make([]int64, len(segs))
	for i := range segs {
		taken[i], held[i], cooling[i] = counts[3*i], counts[3*i+1], counts[3*i+2]
	}
	return taken, held, cooling, nil
}

// countOp counts the keys in [from, end) without transferring them.
func countOp(from, end string) clientv3.Op {
	return clientv3.OpGet(from, clientv3.WithRange(end), clientv3.WithCountOnly())
}

// countTxn runs count-only reads (readTxn) and returns their counts.
func (n *Network) countTxn(ctx context.Context, ops []clientv3.Op) ([]int64, error) {
	responses, err := n.readTxn(ctx, ops)
	if err != nil {
		return nil, err
	}
	counts := make([]int64, len(responses))
	for i, r := range responses {
		counts[i] = r.Count
	}
	return counts, nil
}
