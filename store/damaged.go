package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// A damaged attachment is a containers/ key whose value is not an
// attachment record: written by hand, truncated, or by another program.
// Its addresses cannot be read from it, but they can still be found: the
// transaction that created the attachment created its address keys too,
// so they share its create revision. That lets DEL and GC release exactly
// those addresses, and nothing else, instead of failing for ever (which
// would leave a pod stuck terminating) or guessing.

// damagedError says which record is damaged and what clears it.
func damagedError(key []byte, cause error) error {
	return fmt.Errorf("%w: %s holds no valid record (%v); CNI DEL or GC of that container releases it and its addresses", ErrDamagedAttachment, key, cause)
}

// damagedAttachment is the stand-in for an undecodable record: the names
// come from the key, the addresses are found later by recoverAddresses.
func damagedAttachment(kv *mvccpb.KeyValue) StoredAttachment {
	att := StoredAttachment{Damaged: true, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
	parts := strings.Split(string(kv.Key), "/")
	if len(parts) >= 2 {
		// Names are path-escaped, so neither holds a "/".
		att.ContainerID, _ = url.PathUnescape(parts[len(parts)-2])
		att.IfName, _ = url.PathUnescape(parts[len(parts)-1])
	}
	return att
}

// checkRecord catches values that decode but cannot be what ReserveFirst wrote
// ("null", "{}", another key's record): every attachment names its own key
// and holds at least one address.
func checkRecord(kv *mvccpb.KeyValue, att Attachment) error {
	named := damagedAttachment(kv)
	switch {
	case att.ContainerID != named.ContainerID || att.IfName != named.IfName:
		return fmt.Errorf("it names container %q interface %q", att.ContainerID, att.IfName)
	case len(att.IPs) == 0:
		return errors.New("it lists no address")
	}
	for _, ip := range att.IPs {
		if !ip.Address.IsValid() {
			return errors.New("it lists an invalid address")
		}
	}
	return nil
}

// recoverAddresses fills in the addresses of damaged attachments (the
// address keys created in the same transaction) and their node, from the
// first of those keys whose record is readable; without one the node stays
// unknown and GC, which collects only its own node's attachments, leaves
// the record to an operator. It reads the network's address keys once,
// whatever the number of attachments.
func (n *Network) recoverAddresses(ctx context.Context, atts []StoredAttachment) error {
	byRevision := map[int64]int{}
	for i, att := range atts {
		if att.Damaged {
			byRevision[att.CreateRevision] = i
		}
	}
	if len(byRevision) == 0 {
		return nil
	}
	held, err := n.Allocations(ctx)
	if err != nil {
		return fmt.Errorf("finding the addresses of damaged attachments: %w", err)
	}
	for _, a := range held {
		// The attachment's transaction created its address keys, or
		// took them from a hold (see ownedBy).
		i, ok := byRevision[a.CreateRevision]
		if !ok {
			i, ok = byRevision[a.ModRevision]
		}
		if !ok {
			continue
		}
		atts[i].IPs = append(atts[i].IPs, AttachedAddr{Address: netip.PrefixFrom(a.Addr, a.Addr.BitLen()), RangeSet: -1})
		if atts[i].Node == "" && a.ContainerID == atts[i].ContainerID && a.IfName == atts[i].IfName {
			atts[i].Node = a.Node
		}
	}
	return nil
}

// releaseDamaged is Release for an attachment whose record is damaged.
func (n *Network) releaseDamaged(ctx context.Context, containerID, ifName string) (*StoredAttachment, error) {
	resp, err := n.cli.Get(ctx, n.keys.container(containerID, ifName))
	if err != nil {
		return nil, fmt.Errorf("reading attachment of container %q interface %q in network %q: %w", containerID, ifName, n.name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	atts := []StoredAttachment{damagedAttachment(resp.Kvs[0])}
	if err := n.recoverAddresses(ctx, atts); err != nil {
		return nil, err
	}
	op, err := n.releaseOp(planFree(atts[0]), holdLeases{})
	if err != nil {
		return nil, err
	}
	txn, err := n.cli.Txn(ctx).Then(op).Commit()
	if err != nil {
		return nil, fmt.Errorf("releasing damaged attachment of container %q interface %q in network %q: %w", containerID, ifName, n.name, err)
	}
	if !released(txn.Responses[0]) {
		return nil, fmt.Errorf("releasing damaged attachment of container %q interface %q in network %q: it changed meanwhile; retry", containerID, ifName, n.name)
	}
	return &atts[0], nil
}
