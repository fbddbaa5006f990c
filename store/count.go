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
