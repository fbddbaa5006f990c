package store

import (
	"context"
	"fmt"
	"net/netip"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The reads of CHECK and STATUS: whether an attachment still holds its
// addresses, and whether etcd answers at all.

// Missing returns the addresses of att that it no longer holds: their
// allocation key is gone or another attachment's (see ownedBy).
func (n *Network) Missing(ctx context.Context, att StoredAttachment) ([]netip.Addr, error) {
	ops := make([]clientv3.Op, 0, len(att.IPs))
	for _, ip := range att.IPs {
		ops = append(ops, clientv3.OpGet(n.keys.ip(ip.Address.Addr()), clientv3.WithKeysOnly()))
	}
	responses, err := n.readTxn(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("reading allocations of container %q in network %q: %w", att.ContainerID, n.name, err)
	}
	var missing []netip.Addr
	for i, r := range responses {
		if len(r.Kvs) == 0 || !ownedBy(r.Kvs[0].CreateRevision, r.Kvs[0].ModRevision, att.CreateRevision) {
			missing = append(missing, att.IPs[i].Address.Addr())
		}
	}
	return missing, nil
}

// Ping checks that etcd answers, with one small read.
func (n *Network) Ping(ctx context.Context) error {
	if _, err := n.cli.Get(ctx, n.keys.lastReserved(0)); err != nil {
		return fmt.Errorf("etcd does not answer: %w", err)
	}
	return nil
}
