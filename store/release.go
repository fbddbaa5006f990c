package store

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

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
	for attempt := 0; attempt < changedAttempts; attempt++ {
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
	return nil, fmt.Errorf("releasing container %q interface %q in network %q: the attachment %w during %d attempts", containerID, ifName, n.name, ErrKeptChanging, changedAttempts)
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
