package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
)

// Whole-network reads for the operator's tools (etcd-ipam plan, ls,
// release): unlike an ADD, which reads a bounded number of keys, they read
// every allocation they are about, because an operator asks about all of
// them. They never write.

// StoredAllocation is an Allocation with its address and the etcd
// revisions that let a later transaction check that the address still has
// the same owner.
type StoredAllocation struct {
	Allocation
	Addr           netip.Addr
	CreateRevision int64
	ModRevision    int64
}

// Allocations lists every allocated address of the network in key order,
// which is address order within each family (the families interleave:
// "2001:..." sorts between "192...." and "203...."; callers that show them
// sort again). A key that is not an address, or whose value
// is unreadable, is listed with what could be read, so that an operator
// sees it rather than a tool hiding it.
func (n *Network) Allocations(ctx context.Context) ([]StoredAllocation, error) {
	resp, err := n.cli.Get(ctx, n.keys.ips(), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("listing allocations of network %q: %w", n.name, err)
	}
	out := make([]StoredAllocation, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		a, err := ParseAddrKey(strings.TrimPrefix(string(kv.Key), n.keys.ips()))
		if err != nil {
			continue // not an allocation: ReserveFirst never writes such a key
		}
		sa := StoredAllocation{Addr: a, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
		_ = json.Unmarshal(kv.Value, &sa.Allocation) // an unreadable owner stays empty
		out = append(out, sa)
	}
	return out, nil
}

// LookupAddress reads who holds addr, nil when nobody does.
func (n *Network) LookupAddress(ctx context.Context, addr netip.Addr) (*StoredAllocation, error) {
	resp, err := n.cli.Get(ctx, n.keys.ip(addr))
	if err != nil {
		return nil, fmt.Errorf("reading allocation of %s in network %q: %w", addr, n.name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	kv := resp.Kvs[0]
	sa := StoredAllocation{Addr: addr, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
	// An unreadable owner stays empty: the address is still taken, and an
	// operator must be able to free it.
	_ = json.Unmarshal(kv.Value, &sa.Allocation)
	return &sa, nil
}

// PlanState is what a dry run of ADDs needs: each range set's round-robin
// position and every address taken in it.
type PlanState struct {
	Positions []Position
	// Taken holds, per range set, the allocated addresses inside the
	// set's segments, ascending within each segment's read.
	Taken [][]netip.Addr
}

// ReadPlanState reads, in one transaction, the round-robin position of
// each range set and every allocated address in the given segments of
// each set (all keys, keys only).
func (n *Network) ReadPlanState(ctx context.Context, segments [][]core.Segment) (PlanState, error) {
	var ops []clientv3.Op
	for i := range segments {
		ops = append(ops, clientv3.OpGet(n.keys.lastReserved(i)))
	}
	type slot struct{ set int }
	var slots []slot
	for i, segs := range segments {
		for _, seg := range segs {
			from, end := n.keys.ipSpan(seg.From, seg.To)
			ops = append(ops, clientv3.OpGet(from, clientv3.WithRange(end), clientv3.WithKeysOnly(),
				clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)))
			slots = append(slots, slot{i})
		}
	}
	// One transaction for all of it (when it fits etcd's operation
	// limit), so that positions and taken addresses are one moment's.
	responses, err := n.readTxn(ctx, ops)
	if err != nil {
		return PlanState{}, fmt.Errorf("reading the state of network %q: %w", n.name, err)
	}
	st := PlanState{Positions: make([]Position, len(segments)), Taken: make([][]netip.Addr, len(segments))}
	for i := range segments {
		if kvs := responses[i].Kvs; len(kvs) > 0 {
			st.Positions[i] = decodePosition(kvs[0].Value)
		}
	}
	for k, s := range slots {
		for _, kv := range responses[len(segments)+k].Kvs {
			a, err := ParseAddrKey(strings.TrimPrefix(string(kv.Key), n.keys.ips()))
			if err != nil {
				continue
			}
			st.Taken[s.set] = append(st.Taken[s.set], a)
		}
	}
	return st, nil
}
