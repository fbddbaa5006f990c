package store

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Reads of attachment records: one, one container's, or the network's.

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

// ContainerAttachments reads every attachment of one container (each of
// its interfaces), reading only that container's keys. Damaged records are
// listed too, as by Attachments.
func (n *Network) ContainerAttachments(ctx context.Context, containerID string) ([]StoredAttachment, error) {
	resp, err := n.cli.Get(ctx, n.keys.containerDir(containerID), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading attachments of container %q in network %q: %w", containerID, n.name, err)
	}
	return n.decodeAttachments(ctx, resp.Kvs)
}

// Attachments lists every attachment of the network. Damaged records are
// listed too, marked, with the addresses their transaction created.
func (n *Network) Attachments(ctx context.Context) ([]StoredAttachment, error) {
	resp, err := n.cli.Get(ctx, n.keys.containers(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing attachments of network %q: %w", n.name, err)
	}
	return n.decodeAttachments(ctx, resp.Kvs)
}

// decodeAttachments decodes attachment keys; a damaged record is listed,
// not fatal: GC must still collect the rest, and an operator must see the
// damage.
func (n *Network) decodeAttachments(ctx context.Context, kvs []*mvccpb.KeyValue) ([]StoredAttachment, error) {
	out := make([]StoredAttachment, 0, len(kvs))
	for _, kv := range kvs {
		att, err := decodeStored(kv)
		if err != nil {
			att = damagedAttachment(kv)
		}
		out = append(out, att)
	}
	if err := n.recoverAddresses(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}
