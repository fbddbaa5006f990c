package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Outcome says how a Reserve transaction ended.
type Outcome struct {
	// Committed is true when every address is now held by the attachment.
	Committed bool
	// Existing is set when the attachment itself appeared meanwhile (a
	// concurrent ADD for the same container and interface won).
	Existing *StoredAttachment
	// Lost lists the addresses another allocator took meanwhile.
	Lost []netip.Addr
}

// Reserve creates the attachment and one allocation key per address in a
// single transaction, which commits only if none of those keys exists yet:
// an ADD reserves all of its addresses or none. It also records each
// address as its range set's last reserved one.
func (n *Network) Reserve(ctx context.Context, att Attachment) (Outcome, error) {
	if err := errors.Join(checkName("container ID", att.ContainerID), checkName("interface name", att.IfName)); err != nil {
		return Outcome{}, err
	}
	attKey := n.keys.container(att.ContainerID, att.IfName)
	attValue, err := json.Marshal(att)
	if err != nil {
		return Outcome{}, fmt.Errorf("encoding attachment: %w", err)
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(attKey), "=", 0)}
	puts := []clientv3.Op{clientv3.OpPut(attKey, string(attValue))}
	elseOps := []clientv3.Op{clientv3.OpGet(attKey)}
	for _, ip := range att.IPs {
		addr := ip.Address.Addr()
		value, err := json.Marshal(Allocation{
			ContainerID: att.ContainerID, IfName: att.IfName, Node: att.Node,
			RangeSet: ip.RangeSet, Created: att.Created,
		})
		if err != nil {
			return Outcome{}, fmt.Errorf("encoding allocation: %w", err)
		}
		position, err := json.Marshal(Position{Addr: addr, Node: att.Node, At: att.Created})
		if err != nil {
			return Outcome{}, fmt.Errorf("encoding round-robin position: %w", err)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(n.keys.ip(addr)), "=", 0))
		puts = append(puts,
			clientv3.OpPut(n.keys.ip(addr), string(value)),
			clientv3.OpPut(n.keys.lastReserved(ip.RangeSet), string(position)))
		elseOps = append(elseOps, clientv3.OpGet(n.keys.ip(addr), clientv3.WithKeysOnly()))
	}
	resp, err := n.cli.Txn(ctx).If(cmps...).Then(puts...).Else(elseOps...).Commit()
	if err != nil {
		return Outcome{}, fmt.Errorf("reserving addresses in network %q: %w", n.name, err)
	}
	if resp.Succeeded {
		return Outcome{Committed: true}, nil
	}
	var out Outcome
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		existing, err := decodeStored(kvs[0])
		if err != nil {
			return Outcome{}, err
		}
		out.Existing = &existing
	}
	for i, ip := range att.IPs {
		if len(resp.Responses[1+i].GetResponseRange().Kvs) > 0 {
			out.Lost = append(out.Lost, ip.Address.Addr())
		}
	}
	return out, nil
}

// AdvanceLastReserved records round-robin positions without reserving
// anything. host-local leaves a range set's position advanced when a later
// range set of the same ADD fails; doing the same keeps the two plugins'
// address sequences identical.
func (n *Network) AdvanceLastReserved(ctx context.Context, last map[int]Position) error {
	if len(last) == 0 {
		return nil
	}
	ops := make([]clientv3.Op, 0, len(last))
	for set, pos := range last {
		value, err := json.Marshal(pos)
		if err != nil {
			return fmt.Errorf("encoding round-robin position: %w", err)
		}
		ops = append(ops, clientv3.OpPut(n.keys.lastReserved(set), string(value)))
	}
	if _, err := n.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		return fmt.Errorf("recording round-robin position in network %q: %w", n.name, err)
	}
	return nil
}
