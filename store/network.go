package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
)

// Network is the etcd state of one CNI network.
type Network struct {
	cli  *clientv3.Client
	keys keys
	name string
}

// Open returns the state of the named network. It does no I/O.
func Open(cli *clientv3.Client, network string) (*Network, error) {
	k, err := newKeys(network)
	if err != nil {
		return nil, err
	}
	return &Network{cli: cli, keys: k, name: network}, nil
}

// Prefix is the key prefix of this network.
func (n *Network) Prefix() string { return n.keys.prefix }

// Snapshot is what an ADD reads first, in one round trip.
type Snapshot struct {
	// Attachment is the container's current attachment, nil if none.
	Attachment *StoredAttachment
	// LastReserved holds each range set's round-robin position (a zero
	// Addr when the set has reserved nothing yet or the value is
	// unreadable).
	LastReserved []Position
	// Seen is the node's liveness record, nil if none.
	Seen *Sighting
	// Held is what the pod interface holds, nil if nothing (or no pod).
	Held *StoredHeldSet
	// PodAttached is the pod interface's attachment on a sticky network,
	// nil if none (or no pod).
	PodAttached *PodAttachment
}

// Snapshot reads the attachment of (containerID, ifName), the round-robin
// state of rangeSets range sets, node's liveness record and, given a pod
// identity, what it holds and its attachment on a sticky network, in one
// transaction.
func (n *Network) Snapshot(ctx context.Context, containerID, ifName string, rangeSets int, node string, id *Identity) (Snapshot, error) {
	ops := []clientv3.Op{clientv3.OpGet(n.keys.container(containerID, ifName))}
	for i := 0; i < rangeSets; i++ {
		ops = append(ops, clientv3.OpGet(n.keys.lastReserved(i)))
	}
	ops = append(ops, clientv3.OpGet(n.keys.seen(node)))
	if id != nil {
		if err := CheckIdentity(*id); err != nil {
			return Snapshot{}, err
		}
		ops = append(ops, clientv3.OpGet(n.keys.holds(*id)), clientv3.OpGet(n.keys.pods(*id)))
	}
	resp, err := n.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading the state of network %q: %w", n.name, err)
	}
	var snap Snapshot
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		att, err := decodeStored(kvs[0])
		if err != nil {
			return Snapshot{}, err
		}
		snap.Attachment = &att
	}
	snap.LastReserved = make([]Position, rangeSets)
	for i := 0; i < rangeSets; i++ {
		if kvs := resp.Responses[1+i].GetResponseRange().Kvs; len(kvs) > 0 {
			snap.LastReserved[i] = decodePosition(kvs[0].Value)
		}
	}
	if kvs := resp.Responses[1+rangeSets].GetResponseRange().Kvs; len(kvs) > 0 {
		snap.Seen = decodeSighting(node, kvs[0].Value, kvs[0].ModRevision)
	}
	if id != nil {
		if kvs := resp.Responses[2+rangeSets].GetResponseRange().Kvs; len(kvs) > 0 {
			snap.Held = decodeHeldSet(*id, kvs[0])
		}
		if kvs := resp.Responses[3+rangeSets].GetResponseRange().Kvs; len(kvs) > 0 {
			var other PodAttachment
			if json.Unmarshal(kvs[0].Value, &other) == nil {
				snap.PodAttached = &other
			}
		}
	}
	return snap, nil
}

// Observe reads, in one transaction, the taken addresses of each range
// set's search segments (core.ReadLimit per segment, keys only) and
// whether each requested address is taken.
func (n *Network) Observe(ctx context.Context, searches [][]core.Segment, requested []netip.Addr) ([][]core.Observation, []bool, error) {
	ops, slots := n.observeOps(searches)
	for _, a := range requested {
		ops = append(ops, clientv3.OpGet(n.keys.ip(a), clientv3.WithKeysOnly()))
	}
	responses, err := n.readTxn(ctx, ops)
	if err != nil {
		return nil, nil, fmt.Errorf("reading allocated addresses of network %q: %w", n.name, err)
	}
	observed := n.observed(searches, slots, responses)
	taken := make([]bool, len(requested))
	for k := range requested {
		taken[k] = len(responses[len(slots)+k].Kvs) > 0
	}
	return observed, taken, nil
}

// observeSlot says which segment of which range set a read belongs to.
type observeSlot struct{ set, seg, limit int }

// observeOps returns the reads of Observe for searches.
func (n *Network) observeOps(searches [][]core.Segment) ([]clientv3.Op, []observeSlot) {
	var ops []clientv3.Op
	var slots []observeSlot
	for i, segs := range searches {
		for j, seg := range segs {
			limit := core.ReadLimit(j) // the core's rule, which plan's simulation follows too
			from, end := n.keys.ipSpan(seg.From, seg.To)
			ops = append(ops, clientv3.OpGet(from, clientv3.WithRange(end), clientv3.WithKeysOnly(),
				clientv3.WithLimit(int64(limit)), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)))
			slots = append(slots, observeSlot{i, j, limit})
		}
	}
	return ops, slots
}

// observed turns the responses to observeOps (the first len(slots) of
// responses) into observations.
func (n *Network) observed(searches [][]core.Segment, slots []observeSlot, responses []*clientv3.GetResponse) [][]core.Observation {
	observed := make([][]core.Observation, len(searches))
	for i, segs := range searches {
		observed[i] = make([]core.Observation, len(segs))
	}
	for k, s := range slots {
		r := responses[k]
		obs := core.Observation{Segment: searches[s.set][s.seg], Complete: !r.More && len(r.Kvs) < s.limit}
		for _, kv := range r.Kvs {
			a, err := ParseAddrKey(strings.TrimPrefix(string(kv.Key), n.keys.ips()))
			if err != nil {
				// A key that is not an address is not an allocation;
				// skipping it never makes a taken address look free,
				// because ReserveFirst's transaction checks the real key.
				continue
			}
			obs.Taken = append(obs.Taken, a)
		}
		observed[s.set][s.seg] = obs
	}
	return observed
}

// maxTxnOps is etcd's default --max-txn-ops: the operations one level of a
// transaction may hold.
const maxTxnOps = 128

// readTxn runs read-only Gets in as few transactions as etcd's per-request
// operation limit allows (one, for any ordinary configuration).
func (n *Network) readTxn(ctx context.Context, ops []clientv3.Op) ([]*clientv3.GetResponse, error) {
	out := make([]*clientv3.GetResponse, 0, len(ops))
	for start := 0; start < len(ops); start += maxTxnOps {
		chunk := ops[start:min(start+maxTxnOps, len(ops))]
		resp, err := n.cli.Txn(ctx).Then(chunk...).Commit()
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Responses {
			out = append(out, (*clientv3.GetResponse)(r.GetResponseRange()))
		}
	}
	return out, nil
}

// decodePosition reads a round-robin position: JSON as ReserveFirst writes it,
// or a bare address as an operator may write it by hand. An unreadable
// value only costs round-robin order once, as in host-local; it never
// affects which addresses are free.
func decodePosition(b []byte) Position {
	var p Position
	if json.Unmarshal(b, &p) == nil && p.Addr.IsValid() {
		return p
	}
	if a, err := netip.ParseAddr(strings.TrimSpace(string(b))); err == nil {
		return Position{Addr: a.Unmap()}
	}
	return Position{}
}

// decodeStored reads an attachment key with the revisions that let a later
// transaction check it is unchanged.
func decodeStored(kv *mvccpb.KeyValue) (StoredAttachment, error) {
	var att Attachment
	if err := json.Unmarshal(kv.Value, &att); err != nil {
		return StoredAttachment{}, damagedError(kv.Key, err)
	}
	if err := checkRecord(kv, att); err != nil {
		return StoredAttachment{}, damagedError(kv.Key, err)
	}
	return StoredAttachment{Attachment: att, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}, nil
}
