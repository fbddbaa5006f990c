package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ReleasePolicy is what a release does beside freeing addresses: the
// node's liveness record, and sticky holds.
type ReleasePolicy struct {
	// Sighting, when set, is recorded as the node's liveness in the
	// same write, when the recorded one is due (see Due).
	Sighting *Sighting
	// Sticky, when positive, turns the addresses of an attachment with a
	// pod into holds for its pod interface that expire after Sticky, with
	// an etcd lease: etcd frees them even if no plugin runs again.
	Sticky time.Duration
	// Now stamps the holds.
	Now time.Time
}

// Addresses taken from an operator's reservation always go back to it:
// only releasing the reservation itself (ReleaseHold) ends it.

// releasePlan is how one attachment is released: which of its addresses
// become which holds.
type releasePlan struct {
	att   StoredAttachment
	holds map[netip.Addr]HeldAddr
	// sticky: holds that need the lease (and a held set with it).
	sticky bool
}

func planRelease(att StoredAttachment, p *ReleasePolicy) releasePlan {
	plan := releasePlan{att: att}
	reserved := false
	for _, ip := range att.IPs {
		if ip.Reserved != nil {
			reserved = true
			if plan.holds == nil {
				plan.holds = map[netip.Addr]HeldAddr{}
			}
			plan.holds[ip.Address.Addr()] = HeldAddr{Addr: ip.Address.Addr(), RangeSet: ip.RangeSet, Hold: *ip.Reserved}
		}
	}
	id := IdentityOf(att.Attachment)
	if reserved || p == nil || p.Sticky <= 0 || id == nil || att.Damaged {
		return plan
	}
	now := p.Now.UTC().Truncate(time.Millisecond)
	hold := Hold{For: id, Kind: HoldSticky, Since: now, Until: now.Add(p.Sticky)}
	plan.holds = map[netip.Addr]HeldAddr{}
	for _, ip := range att.IPs {
		plan.holds[ip.Address.Addr()] = HeldAddr{Addr: ip.Address.Addr(), RangeSet: ip.RangeSet, Hold: hold}
	}
	plan.sticky = true
	return plan
}

// releaseOp releases an attachment if it is unchanged since it was read: a
// transaction whose success says so (see released). It deletes the
// attachment and, of each address, the address key that the attachment's
// transaction wrote last (equal revision) and the node index key it
// created: an address that was released and handed to another container
// since is left alone, however late this release runs. With holds, those
// addresses are rewritten as holds instead, provided every one of them is
// still the attachment's; otherwise they are freed as without.
func (n *Network) releaseOp(plan releasePlan, lease clientv3.LeaseID) (clientv3.Op, error) {
	att := plan.att
	attKey := n.keys.container(att.ContainerID, att.IfName)
	unchanged := clientv3.Compare(clientv3.ModRevision(attKey), "=", att.ModRevision)
	// Either way the attachment goes, with its node index keys and its
	// pod interface's attachment record.
	common := []clientv3.Op{clientv3.OpDelete(attKey)}
	for _, ip := range att.IPs {
		common = append(common, n.deleteIfCreatedOp(n.keys.nodeAddr(att.Node, ip.Address.Addr()), att.CreateRevision))
	}
	id := IdentityOf(att.Attachment)
	if id != nil {
		common = append(common, n.deleteIfCreatedOp(n.keys.pods(*id), att.CreateRevision))
	}
	plain := slices.Clone(common)
	for _, ip := range att.IPs {
		plain = append(plain, n.deleteIfWrittenOp(n.keys.ip(ip.Address.Addr()), att.CreateRevision))
	}
	plainOp := clientv3.OpTxn([]clientv3.Cmp{unchanged}, plain, nil)
	if len(plan.holds) == 0 {
		return plainOp, nil
	}
	cmps := []clientv3.Cmp{unchanged}
	ops := slices.Clone(common)
	var set HeldSet
	for _, ip := range att.IPs {
		addr := ip.Address.Addr()
		key := n.keys.ip(addr)
		h, ok := plan.holds[addr]
		if !ok {
			ops = append(ops, n.deleteIfWrittenOp(key, att.CreateRevision))
			continue
		}
		value, err := heldValue(h)
		if err != nil {
			return clientv3.Op{}, err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", att.CreateRevision))
		if h.Hold.Kind == HoldSticky {
			ops = append(ops, clientv3.OpPut(key, value, clientv3.WithLease(lease)),
				clientv3.OpPut(n.keys.heldMark(addr), h.Hold.Kind, clientv3.WithLease(lease)))
			set.Addrs = append(set.Addrs, h)
		} else {
			ops = append(ops, clientv3.OpPut(key, value), clientv3.OpPut(n.keys.heldMark(addr), h.Hold.Kind))
		}
	}
	if plan.sticky {
		value, err := json.Marshal(set)
		if err != nil {
			return clientv3.Op{}, fmt.Errorf("encoding the holds of %s: %w", id, err)
		}
		// Only where the identity holds nothing yet: a set left there
		// (an operator's reservation) is not overwritten; these holds
		// then expire unused.
		holdsKey := n.keys.holds(*id)
		ops = append(ops, clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(holdsKey), "=", 0)},
			[]clientv3.Op{clientv3.OpPut(holdsKey, string(value), clientv3.WithLease(lease))}, nil))
	}
	return clientv3.OpTxn(cmps, ops, []clientv3.Op{plainOp}), nil
}

// released reports whether the answer to a releaseOp released the
// attachment, as holds or not.
func released(r *etcdserverpb.ResponseOp) bool {
	t := r.GetResponseTxn()
	if t.GetSucceeded() {
		return true
	}
	// The fallback, when the holds could not be made.
	rs := t.GetResponses()
	return len(rs) == 1 && rs[0].GetResponseTxn() != nil && rs[0].GetResponseTxn().GetSucceeded()
}

// deleteIfCreatedOp deletes key if the transaction of revision created
// wrote it, and leaves alone a later key of the same name.
func (n *Network) deleteIfCreatedOp(key string, created int64) clientv3.Op {
	return clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", created)},
		[]clientv3.Op{clientv3.OpDelete(key)}, nil)
}

// deleteIfWrittenOp deletes an address key if the attachment's
// transaction (of revision rev) created it or wrote it last (took it from
// a hold). A key the attachment created is its own even if rewritten
// since (damaged by hand, say): it can become anyone else's only through a
// hold, and making the hold deletes the attachment in the same
// transaction.
func (n *Network) deleteIfWrittenOp(key string, rev int64) clientv3.Op {
	return clientv3.OpTxn(
		[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", rev)},
		[]clientv3.Op{clientv3.OpDelete(key)},
		[]clientv3.Op{clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", rev)},
			[]clientv3.Op{clientv3.OpDelete(key)}, nil)})
}

// ownedBy reports whether an address key of these revisions is the
// attachment's of revision rev (see deleteIfWrittenOp).
func ownedBy(createRevision, modRevision, rev int64) bool {
	return createRevision == rev || modRevision == rev
}

// leaser plans the releases of one call, granting the one lease of their
// sticky holds when a plan first needs it.
type leaser struct {
	n     *Network
	p     *ReleasePolicy
	lease clientv3.LeaseID
}

// plan plans att's release. Under etcd's NOSPACE alarm no lease can be
// granted: the plan then frees, without holds, and so do the call's later
// plans.
func (l *leaser) plan(ctx context.Context, att StoredAttachment) (releasePlan, error) {
	plan := planRelease(att, l.p)
	if !plan.sticky || l.lease != 0 {
		return plan, nil
	}
	resp, err := l.n.cli.Grant(ctx, leaseTTL(l.p.Sticky))
	switch {
	case errors.Is(err, rpctypes.ErrNoSpace):
		l.p = nil
		return planRelease(att, nil), nil
	case err != nil:
		return releasePlan{}, fmt.Errorf("granting the lease of sticky holds in network %q: %w", l.n.name, err)
	}
	l.lease = resp.ID
	return plan, nil
}

// leaseTTL is d in whole seconds, rounded up so that a lease never ends
// before the hold it carries says. Written to not overflow: adding a
// second first would turn the longest durations into a TTL of a second.
func leaseTTL(d time.Duration) int64 {
	seconds := int64(d / time.Second)
	if d%time.Second > 0 {
		seconds++
	}
	return seconds
}

// Release frees every address of (containerID, ifName) and returns the
// attachment it removed, or nil when there was none. It reads once and
// writes once (and grants a lease first when it makes sticky holds),
// retrying only if the attachment changed in between. p (may be nil) adds
// the node's liveness record, read with the attachment, and sticky holds.
// Under etcd's NOSPACE alarm, when only deletes pass, it frees the
// addresses without either.
func (n *Network) Release(ctx context.Context, containerID, ifName string, p *ReleasePolicy) (*StoredAttachment, error) {
	var sighting *Sighting
	if p != nil {
		sighting = p.Sighting
	}
	l := &leaser{n: n, p: p}
	for attempt := 0; attempt < changedAttempts; attempt++ {
		att, recorded, err := n.AttachmentSeen(ctx, containerID, ifName, sighting)
		if errors.Is(err, ErrDamagedAttachment) {
			return n.releaseDamaged(ctx, containerID, ifName)
		}
		if err != nil || att == nil {
			return nil, err
		}
		plan, err := l.plan(ctx, *att)
		if err != nil {
			return nil, err
		}
		op, err := n.releaseOp(plan, l.lease)
		if err != nil {
			return nil, err
		}
		ops := []clientv3.Op{op}
		if sighting != nil && Due(recorded, sighting.At) {
			seen, err := n.sightingOp(*sighting)
			if err != nil {
				return nil, err
			}
			ops = append(ops, seen)
		}
		resp, err := n.cli.Txn(ctx).Then(ops...).Commit()
		if errors.Is(err, rpctypes.ErrNoSpace) {
			// Under etcd's NOSPACE alarm only deletes pass, and a DEL
			// must still free addresses: without liveness or holds.
			if op, err = n.releaseOp(planRelease(*att, nil), 0); err != nil {
				return nil, err
			}
			resp, err = n.cli.Txn(ctx).Then(op).Commit()
		}
		if err != nil {
			return nil, fmt.Errorf("releasing container %q interface %q in network %q: %w", containerID, ifName, n.name, err)
		}
		if released(resp.Responses[0]) {
			return att, nil
		}
	}
	return nil, fmt.Errorf("releasing container %q interface %q in network %q: the attachment %w during %d attempts", containerID, ifName, n.name, ErrKeptChanging, changedAttempts)
}

// AttachmentSeen reads the attachment of (containerID, ifName) and, when
// sighting is given, its node's liveness record, in one round trip.
func (n *Network) AttachmentSeen(ctx context.Context, containerID, ifName string, sighting *Sighting) (*StoredAttachment, *Sighting, error) {
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
// number released. p (may be nil) makes sticky holds, with one lease for
// all of them.
func (n *Network) ReleaseAttachments(ctx context.Context, atts []StoredAttachment, p *ReleasePolicy) (int, error) {
	released := 0
	l := &leaser{n: n, p: p}
	for start := 0; start < len(atts); start += ReleaseBatch {
		plans := make([]releasePlan, 0, ReleaseBatch)
		for _, att := range atts[start:min(start+ReleaseBatch, len(atts))] {
			plan, err := l.plan(ctx, att)
			if err != nil {
				return released, err
			}
			plans = append(plans, plan)
		}
		count, err := n.releaseBatch(ctx, plans, l.lease)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			for i := range plans {
				plans[i] = planRelease(plans[i].att, nil)
			}
			count, err = n.releaseBatch(ctx, plans, 0)
		}
		released += count
		if err != nil {
			return released, err
		}
	}
	return released, nil
}

func (n *Network) releaseBatch(ctx context.Context, plans []releasePlan, lease clientv3.LeaseID) (int, error) {
	ops := make([]clientv3.Op, 0, len(plans))
	for _, plan := range plans {
		op, err := n.releaseOp(plan, lease)
		if err != nil {
			return 0, err
		}
		ops = append(ops, op)
	}
	resp, err := n.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return 0, fmt.Errorf("releasing attachments in network %q: %w", n.name, err)
	}
	count := 0
	for _, r := range resp.Responses {
		if released(r) {
			count++
		}
	}
	return count, nil
}
