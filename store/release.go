package store

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// releaseOp deletes an attachment if it is unchanged since it was read,
// and with it each address key and node index key that the same
// transaction created (equal create revision): an address that was released and handed to another
// container since then is left alone, however late this release runs.
func (n *Network) releaseOp(att StoredAttachment) (clientv3.Cmp, clientv3.Op) {
	attKey := n.keys.container(att.ContainerID, att.IfName)
	ops := []clientv3.Op{clientv3.OpDelete(attKey)}
	for _, ip := range att.IPs {
		ops = append(ops, n.deleteIfCreatedOp(n.keys.ip(ip.Address.Addr()), att.CreateRevision),
			n.deleteIfCreatedOp(n.keys.nodeAddr(att.Node, ip.Address.Addr()), att.CreateRevision))
	}
	return clientv3.Compare(clientv3.ModRevision(attKey), "=", att.ModRevision),
		clientv3.OpTxn(nil, ops, nil)
}

// deleteIfCreatedOp deletes key if the transaction of revision created
// wrote it, and leaves alone a later key of the same name.
func (n *Network) deleteIfCreatedOp(key string, created int64) clientv3.Op {
	return clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", created)},
		[]clientv3.Op{clientv3.OpDelete(key)}, nil)
}

// Release frees every address of (containerID, ifName) and returns the
// attachment it removed, or nil when there was none. It reads once and
// writes once, retrying only if the attachment changed in between. A
// non-nil sighting is recorded as the node's liveness in the same write
// when the recorded one is due (see Due), read in the same read.
func (n *Network) Release(ctx context.Context, containerID, ifName string, sighting *Sighting) (*StoredAttachment, error) {
	for attempt := 0; attempt < changedAttempts; attempt++ {
		att, recorded, err := n.attachmentSeen(ctx, containerID, ifName, sighting)
		if errors.Is(err, ErrDamagedAttachment) {
			return n.releaseDamaged(ctx, containerID, ifName)
		}
		if err != nil || att == nil {
			return nil, err
		}
		cmp, op := n.releaseOp(*att)
		ops := []clientv3.Op{op}
		if sighting != nil && Due(recorded, sighting.At) {
			seen, err := n.sightingOp(*sighting)
			if err != nil {
				return nil, err
			}
			ops = append(ops, seen)
		}
		resp, err := n.cli.Txn(ctx).If(cmp).Then(ops...).Commit()
		if errors.Is(err, rpctypes.ErrNoSpace) && len(ops) > 1 {
			// Under etcd's NOSPACE alarm only deletes pass, and a DEL
			// must still free addresses: without the liveness record.
			resp, err = n.cli.Txn(ctx).If(cmp).Then(op).Commit()
		}
		if err != nil {
			return nil, fmt.Errorf("releasing container %q interface %q in network %q: %w", containerID, ifName, n.name, err)
		}
		if resp.Succeeded {
			return att, nil
		}
	}
	return nil, fmt.Errorf("releasing container %q interface %q in network %q: the attachment %w during %d attempts", containerID, ifName, n.name, ErrKeptChanging, changedAttempts)
}

// attachmentSeen reads the attachment of (containerID, ifName) and, when
// sighting is given, its node's liveness record, in one round trip.
func (n *Network) attachmentSeen(ctx context.Context, containerID, ifName string, sighting *Sighting) (*StoredAttachment, *Sighting, error) {
	if sighting == nil {
		att, err := n.Attachment(ctx, containerID, ifName)
		return att, nil, err
	}
	resp, err := n.cli.Txn(ctx).Then(
		clientv3.OpGet(n.keys.container(containerID, ifName)),
		clientv3.OpGet(n.keys.seen(sighting.Node)),
	).Commit()
	if err != nil {
		return nil, nil, fmt.Errorf("reading attachment of container %q interface %q in network %q: %w", containerID, ifName, n.name, err)
	}
	var recorded *Sighting
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		recorded = decodeSighting(sighting.Node, kvs[0].Value, kvs[0].ModRevision)
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, recorded, nil
	}
	att, err := decodeStored(kvs[0])
	if err != nil {
		return nil, nil, err
	}
	return &att, recorded, nil
}

// ReleaseBatch is how many attachments one release transaction carries:
// each takes a few operations, within etcd's 128 per transaction.
const ReleaseBatch = 64

// ReleaseAttachments frees the given attachments, each only if unchanged
// since it was listed, batching many into one transaction. It returns the
// number released.
func (n *Network) ReleaseAttachments(ctx context.Context, atts []StoredAttachment) (int, error) {
	released := 0
	for start := 0; start < len(atts); start += ReleaseBatch {
		var ops []clientv3.Op
		for _, att := range atts[start:min(start+ReleaseBatch, len(atts))] {
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
