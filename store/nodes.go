package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Nodes: the per-node index (nodes/<node>/<address>) and liveness records
// (seen/<node>). The index is written and deleted in the same transactions
// as the addresses it points to, so it is exactly as current as they are;
// liveness rides in writes that happen anyway, at most once per
// SightingInterval.

// SightingInterval is how stale a node's liveness record may grow before a
// command that passes by writes it again: often enough to tell a node
// silent for minutes from a live one, rarely enough that a busy node
// writes it once a minute at most.
const SightingInterval = time.Minute

// Sighting is a node's liveness record: when it was last seen, and by
// which CNI command (ADD, DEL, CHECK, GC or STATUS).
type Sighting struct {
	Node string    `json:"-"`
	At   time.Time `json:"at"`
	By   string    `json:"by"`
	// ModRevision lets a later transaction check the record is unchanged.
	ModRevision int64 `json:"-"`
}

// Due reports whether a command seeing the node at now should write a
// new record over recorded (nil when there is none).
func Due(recorded *Sighting, now time.Time) bool {
	return recorded == nil || now.Sub(recorded.At) >= SightingInterval || now.Before(recorded.At.Add(-SightingInterval))
}

// sightingOp writes s as its node's liveness record.
func (n *Network) sightingOp(s Sighting) (clientv3.Op, error) {
	value, err := json.Marshal(s)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("encoding liveness record: %w", err)
	}
	return clientv3.OpPut(n.keys.seen(s.Node), string(value)), nil
}

// decodeSighting reads a liveness record; an unreadable one counts as
// none (the next command writes it again).
func decodeSighting(node string, value []byte, modRevision int64) *Sighting {
	s := Sighting{Node: node, ModRevision: modRevision}
	if json.Unmarshal(value, &s) != nil {
		return nil
	}
	return &s
}

// Sightings lists every node's liveness record, sorted by node.
func (n *Network) Sightings(ctx context.Context) ([]Sighting, error) {
	resp, err := n.cli.Get(ctx, n.keys.seens(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading node liveness of network %q: %w", n.name, err)
	}
	out := make([]Sighting, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		node, err := url.PathUnescape(strings.TrimPrefix(string(kv.Key), n.keys.seens()))
		if err != nil {
			continue // not written by this plugin
		}
		s := decodeSighting(node, kv.Value, kv.ModRevision)
		if s == nil {
			s = &Sighting{Node: node, ModRevision: kv.ModRevision}
		}
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

// Sight records s if the node's record is older than SightingInterval: one
// read, and a small write at most once an interval. GC and STATUS use it;
// ADD and DEL carry the record in their own transactions, and CHECK reads
// it with its attachment (AttachmentSeen) and calls SightIfDue.
func (n *Network) Sight(ctx context.Context, s Sighting) error {
	resp, err := n.cli.Get(ctx, n.keys.seen(s.Node))
	if err != nil {
		return fmt.Errorf("reading liveness of node %q in network %q: %w", s.Node, n.name, err)
	}
	var recorded *Sighting
	if len(resp.Kvs) > 0 {
		recorded = decodeSighting(s.Node, resp.Kvs[0].Value, resp.Kvs[0].ModRevision)
	}
	return n.SightIfDue(ctx, recorded, s)
}

// SightIfDue records s when recorded, the node's record as read, is due
// (see Due): one small write, or none.
func (n *Network) SightIfDue(ctx context.Context, recorded *Sighting, s Sighting) error {
	if !Due(recorded, s.At) {
		return nil
	}
	op, err := n.sightingOp(s)
	if err != nil {
		return err
	}
	if _, err := n.cli.Txn(ctx).Then(op).Commit(); err != nil {
		return fmt.Errorf("recording liveness of node %q in network %q: %w", s.Node, n.name, err)
	}
	return nil
}

// CountNodeAddresses returns how many addresses each node holds, with
// count-only reads of the nodes' indexes.
func (n *Network) CountNodeAddresses(ctx context.Context, nodes []string) ([]int64, error) {
	ops := make([]clientv3.Op, 0, len(nodes))
	for _, node := range nodes {
		ops = append(ops, clientv3.OpGet(n.keys.nodeDir(node), clientv3.WithPrefix(), clientv3.WithCountOnly()))
	}
	counts, err := n.countTxn(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("counting node allocations of network %q: %w", n.name, err)
	}
	return counts, nil
}

// NodeAttachments lists the attachments node made, reading only that
// node's index and the attachments it points to.
func (n *Network) NodeAttachments(ctx context.Context, node string) ([]StoredAttachment, error) {
	resp, err := n.cli.Get(ctx, n.keys.nodeDir(node), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading the index of node %q in network %q: %w", node, n.name, err)
	}
	var ops []clientv3.Op
	listed := make(map[string]bool)
	for _, kv := range resp.Kvs {
		ref := string(kv.Value)
		if listed[ref] {
			continue // the attachment's other addresses
		}
		listed[ref] = true
		containerID, ifName, err := parseAttachmentRef(ref)
		if err != nil {
			continue // not written by this plugin
		}
		ops = append(ops, clientv3.OpGet(n.keys.container(containerID, ifName)))
	}
	responses, err := n.readTxn(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("reading the attachments of node %q in network %q: %w", node, n.name, err)
	}
	var kvs []*mvccpb.KeyValue
	for _, r := range responses {
		// None: released since the index was read.
		kvs = append(kvs, r.Kvs...)
	}
	atts, err := n.decodeAttachments(ctx, kvs)
	if err != nil {
		return nil, err
	}
	var out []StoredAttachment
	for _, att := range atts {
		if att.Node == node || att.Damaged {
			out = append(out, att)
		}
	}
	return out, nil
}

// ForgetNode deletes node's liveness record, provided it is unchanged
// since read (the node has not come back) and the node holds no address
// any more: reclaiming a dead node leaves no trace of it.
func (n *Network) ForgetNode(ctx context.Context, s Sighting) (bool, error) {
	resp, err := n.cli.Txn(ctx).If(
		clientv3.Compare(clientv3.ModRevision(n.keys.seen(s.Node)), "=", s.ModRevision),
		// Over a prefix: true only when no key of the index exists.
		clientv3.Compare(clientv3.CreateRevision(n.keys.nodeDir(s.Node)), "=", 0).WithPrefix(),
	).Then(clientv3.OpDelete(n.keys.seen(s.Node))).Commit()
	if err != nil {
		return false, fmt.Errorf("forgetting node %q in network %q: %w", s.Node, n.name, err)
	}
	return resp.Succeeded, nil
}
