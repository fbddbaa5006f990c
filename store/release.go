package store

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Attachment reads the attachment of (containerID, ifName), nil if none.
func (n *Network) Attachment(ctx context.Context, containerID, ifName string) (*StoredAttachment, error) {
	resp, err := n.cli.Get(ctx, n.keys.container(containerID, ifName))
	if err != nil {
		return nil, fmt.Errorf("reading attachment of container %q interface %q in network %q: %w", containerID, ifName, n.name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	att, err := decodeStored(resp.Kvs[0])
	if err != nil {
		return nil, err
	}
	return &att, nil
}

// Attachments lists every attachment of the network. Damaged records are
// listed too, marked, with the addresses their transaction created.
func (n *Network) Attachments(ctx context.Context) ([]StoredAttachment, error) {
	resp, err := n.cli.Get(ctx, n.keys.containers(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing attachments of network %q: %w", n.name, err)
	}
	out := make([]StoredAttachment, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		att, err := decodeStored(kv)
		if err != nil {
			// Listed, not fatal: GC must still collect the rest, and
			// an operator must see the damage.
			att = damagedAttachment(kv)
		}
		out = append(out, att)
	}
	if err := n.recoverAddresses(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// releaseOp deletes an attachment if it is unchanged since it was read,
// and with it each address key that the same transaction created (equal
// create revision): an address that was released and handed to another
// container since then is left alone, however late this release runs.
func (n *Network) releaseOp(att StoredAttachment) (clientv3.Cmp, clientv3.Op) {
	attKey := n.keys.container(att.ContainerID, att.IfName)
	ops := []clientv3.Op{clientv3.OpDelete(attKey)}
	for _, ip := range att.IPs {
		key := n.keys.ip(ip.Address.Addr())
		ops = append(ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", att.CreateRevision)},
			[]clientv3.Op{clientv3.OpDelete(key)}, nil))
	}
	return clientv3.Compare(clientv3.ModRevision(attKey), "=", att.ModRevision),
		clientv3.OpTxn(nil, ops, nil)
}

// Release frees every address of (containerID, ifName) and returns the
// attachment it removed, or nil when there was none. It reads once and
// writes once, retrying only if the attachment changed in between.
func (n *Network) Release(ctx context.Context, containerID, ifName string) (*StoredAttachment, error) {
	const attempts = 5
	for attempt := 0; attempt < attempts; attempt++ {
		att, err := n.Attachment(ctx, containerID, ifName)
		if errors.Is(err, ErrDamagedAttachment) {
			return n.releaseDamaged(ctx, containerID, ifName)
		}
		if err != nil || att == nil {
			return nil, err
		}
		cmp, op := n.releaseOp(*att)
		resp, err := n.cli.Txn(ctx).If(cmp).Then(op).Commit()
		if err != nil {
			return nil, fmt.Errorf("releasing container %q interface %q in network %q: %w", containerID, ifName, n.name, err)
		}
		if resp.Succeeded {
			return att, nil
		}
	}
	return nil, fmt.Errorf("releasing container %q interface %q in network %q: the attachment kept changing during %d attempts", containerID, ifName, n.name, attempts)
}

// ReleaseAttachments frees the given attachments, each only if unchanged
// since it was listed, batching many into one transaction. It returns the
// number released.
func (n *Network) ReleaseAttachments(ctx context.Context, atts []StoredAttachment) (int, error) {
	const batch = 64
	released := 0
	for start := 0; start < len(atts); start += batch {
		var ops []clientv3.Op
		for _, att := range atts[start:min(start+batch, len(atts))] {
			cmp, op := n.releaseOp(att)
			ops = append(ops, clientv3.OpTxn([]clientv3.Cmp{cmp}, []clientv3.Op{op}, nil))
		}
		resp, err := n.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return released, fmt.Errorf("releasing attachments in network %q: %w", n.name, err)
		}
		for _, r := range resp.Responses {
			if r.GetResponseTxn().GetSucceeded() {
				released++
			}
		}
	}
	return released, nil
}
