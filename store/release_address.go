package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ReleaseAddress frees one address, provided it is still held exactly as
// held was read (same create and modification revision), and returns the
// attachment it belonged to as it was before, or nil.
//
// When the attachment of held's owner holds the address (created in the
// same transaction), the address leaves the attachment's list in the same
// transaction, and the attachment goes with its last address: a later
// CHECK verifies, a repeated ADD returns, and DEL frees the addresses the
// container still holds, and never the released one, which another
// container may have by then. An address whose attachment is gone or is a
// later one is freed alone. All of it commits or nothing does.
//
// An address the attachment took from an operator's reservation goes back
// to it, as at DEL: its key becomes the hold again (releasing that hold
// ends the reservation). Under etcd's NOSPACE alarm, when only deletes
// pass, the key is deleted instead and the reservation lives on in its
// held set; taking one address of several from an attachment rewrites
// the attachment, which etcd then refuses: the error says to release the
// whole attachment.
func (n *Network) ReleaseAddress(ctx context.Context, held StoredAllocation) (*StoredAttachment, error) {
	return n.ReleaseAddressWith(ctx, held, nil)
}

// ReleaseAddressWith is ReleaseAddress under p (may be nil), of which
// only the cooldown counts: an address that goes back to nobody cools,
// under the node's cooling lease (read, and granted if need be, before
// the write); under etcd's NOSPACE alarm it is deleted, as without.
func (n *Network) ReleaseAddressWith(ctx context.Context, held StoredAllocation, p *ReleasePolicy) (*StoredAttachment, error) {
	ipKey := n.keys.ip(held.Addr)
	var l *leaser
	if p != nil && p.Cooldown > 0 {
		l = newLeaser(n, &ReleasePolicy{Cooldown: p.Cooldown, Now: p.Now, Node: p.Node})
	}
	same := []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(ipKey), "=", held.CreateRevision),
		clientv3.Compare(clientv3.ModRevision(ipKey), "=", held.ModRevision),
	}
	// full: etcd refused a put for lack of space; deletes only.
	full := false
	for attempt := 0; attempt < changedAttempts; attempt++ {
		var att *StoredAttachment
		if held.ContainerID != "" {
			var err error
			if att, err = n.Attachment(ctx, held.ContainerID, held.IfName); err != nil {
				return nil, err
			}
		}
		cmps := append([]clientv3.Cmp(nil), same...)
		// The attachment's transaction created its address keys, or
		// took them from a hold (see ownedBy); its index keys, created
		// with them, go too.
		owned := att != nil && ownedBy(held.CreateRevision, held.ModRevision, att.CreateRevision)
		ops := []clientv3.Op{clientv3.OpDelete(ipKey)}
		reservation := reservedIn(att, held.Addr)
		switch {
		case owned && reservation != nil && !full:
			value, err := heldValue(*reservation)
			if err != nil {
				return nil, err
			}
			ops = []clientv3.Op{clientv3.OpPut(ipKey, value), clientv3.OpPut(n.keys.heldMark(held.Addr), HoldReserved)}
		case l != nil && held.ContainerID != "" && !(owned && reservation != nil) && !full:
			// An address in use goes back to nobody: it cools. (A
			// hold, cooling ones included, is freed at once.)
			if l.cooling.lease == 0 {
				if err := l.obtain(ctx, &l.cooling); err != nil {
					return nil, err
				}
				if l.full {
					full = true
					break
				}
			}
			cool := HeldAddr{Addr: held.Addr, RangeSet: held.RangeSet,
				Hold: Hold{Kind: HoldCooling, Since: p.Now.UTC().Truncate(time.Millisecond), Until: l.cooling.until}}
			value, err := heldValue(cool)
			if err != nil {
				return nil, err
			}
			record, err := l.recordOps()
			if err != nil {
				return nil, err
			}
			ops = append(n.coolingOps(cool, value, l.cooling.lease), record...)
		}
		if owned {
			ops = append(ops, n.deleteIfCreatedOp(n.keys.nodeAddr(att.Node, held.Addr), att.CreateRevision))
		} else if held.Node != "" {
			ops = append(ops, n.deleteIfCreatedOp(n.keys.nodeAddr(held.Node, held.Addr), held.CreateRevision),
				n.deleteIfCreatedOp(n.keys.nodeAddr(held.Node, held.Addr), held.ModRevision))
		}
		if held.ContainerID != "" {
			attKey := n.keys.container(held.ContainerID, held.IfName)
			if att == nil {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(attKey), "=", 0))
			} else {
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(attKey), "=", att.ModRevision))
			}
			if owned {
				op, err := n.dropAddress(attKey, *att, held)
				if err != nil {
					return nil, err
				}
				ops = append(ops, op)
				// With its last address the attachment goes, and so
				// does its pod interface's one-attachment record.
				if id := IdentityOf(att.Attachment); id != nil && len(att.IPs) == 1 {
					ops = append(ops, n.deleteIfCreatedOp(n.keys.pods(*id), att.CreateRevision))
				}
			}
		}
		resp, err := n.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && l != nil && l.lostRecorded() {
			attempt--
			continue
		}
		if err == nil && l != nil {
			l.recorded()
		}
		if errors.Is(err, rpctypes.ErrNoSpace) && !full {
			// Only deletes pass: try again without the puts.
			full = true
			attempt--
			continue
		}
		if errors.Is(err, rpctypes.ErrNoSpace) && owned && len(att.IPs) > 1 {
			return nil, fmt.Errorf("releasing %s in network %q: freeing one of the %d addresses of container %s interface %s rewrites its attachment, and nothing was released; release the whole attachment (etcd-ipam release --container %s --ifname %s), which takes deletes only: %w",
				held.Addr, n.name, len(att.IPs), att.ContainerID, att.IfName, att.ContainerID, att.IfName, err)
		}
		if err != nil {
			return nil, fmt.Errorf("releasing %s in network %q: %w", held.Addr, n.name, err)
		}
		if resp.Succeeded {
			if !owned {
				return nil, nil
			}
			return att, nil
		}
		now, err := n.LookupAddress(ctx, held.Addr)
		if err != nil {
			return nil, err
		}
		if now == nil {
			return nil, fmt.Errorf("releasing %s in network %q: %w: %w; nothing was released", held.Addr, n.name, ErrOwnerChanged, ErrAlreadyFree)
		}
		if h := now.Hold; l != nil && now.ContainerID == "" && h != nil && h.Kind == HoldCooling && h.Since.Equal(p.Now.UTC().Truncate(time.Millisecond)) {
			// This release's own cooling hold (an earlier attempt's
			// reply was lost): released to nobody, as if freed.
			return nil, fmt.Errorf("releasing %s in network %q: %w: %w (cooling since this release)", held.Addr, n.name, ErrOwnerChanged, ErrAlreadyFree)
		}
		if now.CreateRevision != held.CreateRevision || now.ModRevision != held.ModRevision {
			return nil, fmt.Errorf("releasing %s in network %q: %w; nothing was released", held.Addr, n.name, ErrOwnerChanged)
		}
		// Only the attachment changed (its container was DELeted and
		// ADDed again between the reads): read it again.
	}
	return nil, fmt.Errorf("releasing %s in network %q: its attachment %w during %d attempts; nothing was released", held.Addr, n.name, ErrKeptChanging, changedAttempts)
}

// reservedIn returns the reservation att took addr from, as its hold;
// nil when it did not (or att is nil).
func reservedIn(att *StoredAttachment, addr netip.Addr) *HeldAddr {
	if att == nil {
		return nil
	}
	for _, ip := range att.IPs {
		if ip.Address.Addr() == addr && ip.Reserved != nil {
			return &HeldAddr{Addr: addr, RangeSet: ip.RangeSet, Hold: *ip.Reserved}
		}
	}
	return nil
}

// dropAddress rewrites att without held's address, or deletes it when
// that was its last one.
func (n *Network) dropAddress(attKey string, att StoredAttachment, held StoredAllocation) (clientv3.Op, error) {
	rest := att.Attachment
	rest.IPs = nil
	for _, ip := range att.IPs {
		if ip.Address.Addr() != held.Addr {
			rest.IPs = append(rest.IPs, ip)
		}
	}
	if len(rest.IPs) == 0 {
		return clientv3.OpDelete(attKey), nil
	}
	value, err := json.Marshal(rest)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("encoding attachment: %w", err)
	}
	// A put keeps the key's create revision, which the remaining address
	// keys share: CHECK and DEL still recognise them as this attachment's.
	return clientv3.OpPut(attKey, string(value)), nil
}
