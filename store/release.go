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
// node's liveness record, sticky holds and cooling.
type ReleasePolicy struct {
	// Sighting, when set, is recorded as the node's liveness in the
	// same write, when the recorded one is due (see Due).
	Sighting *Sighting
	// Sticky, when positive, turns the addresses of an attachment with a
	// pod into holds for its pod interface that expire after Sticky, with
	// an etcd lease: etcd frees them even if no plugin runs again.
	Sticky time.Duration
	// Cooldown, when positive, turns an address that goes back to
	// nobody (not to a reservation, not into a sticky hold) into a
	// cooling hold for nobody that ends after Cooldown, with an etcd
	// lease (see cooling.go).
	Cooldown time.Duration
	// Now stamps the holds.
	Now time.Time
	// Node is whose leases the sticky and cooling holds are put under
	// (see LeaseRecord): the releasing node's.
	Node string
}

// Addresses taken from an operator's reservation always go back to it:
// only releasing the reservation itself (ReleaseHold) ends it. The
// reservation's record is its pod interface's held set (holds/), which
// taking the address leaves in place and no release of the address
// touches; the address key is where the address is taken for everyone
// else. A release turns that key back into the hold, or, under etcd's
// NOSPACE alarm, where only deletes pass, deletes it (planFree): the
// reservation lives on in the held set, and the pod's next ADD takes the
// address from there (ReserveExtras.Vacant).

// releasePlan is how one attachment is released: which of its addresses
// become which holds.
type releasePlan struct {
	att   StoredAttachment
	holds map[netip.Addr]HeldAddr
	// sticky: holds that need the sticky lease (and a held set with it).
	sticky bool
	// cooling: holds that need the cooling lease.
	cooling bool
}

// planRelease plans att's release under p: an address taken from a
// reservation goes back to it; else a pod identity's addresses on a
// sticky network become sticky holds, which last until stickyUntil; else,
// with a cooldown, the addresses cool until coolingUntil; else they are
// freed.
func planRelease(att StoredAttachment, p *ReleasePolicy, stickyUntil, coolingUntil time.Time) releasePlan {
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
	if p == nil || att.Damaged {
		return plan
	}
	now := p.Now.UTC().Truncate(time.Millisecond)
	if !reserved && p.Sticky > 0 && id != nil {
		hold := Hold{For: id, Kind: HoldSticky, Since: now, Until: stickyUntil}
		plan.holds = map[netip.Addr]HeldAddr{}
		for _, ip := range att.IPs {
			plan.holds[ip.Address.Addr()] = HeldAddr{Addr: ip.Address.Addr(), RangeSet: ip.RangeSet, Hold: hold}
		}
		plan.sticky = true
		return plan
	}
	if p.Cooldown <= 0 {
		return plan
	}
	hold := Hold{Kind: HoldCooling, Since: now, Until: coolingUntil}
	for _, ip := range att.IPs {
		if ip.Reserved != nil {
			continue
		}
		if plan.holds == nil {
			plan.holds = map[netip.Addr]HeldAddr{}
		}
		plan.holds[ip.Address.Addr()] = HeldAddr{Addr: ip.Address.Addr(), RangeSet: ip.RangeSet, Hold: hold}
		plan.cooling = true
	}
	return plan
}

// planFree is the release that etcd accepts under its NOSPACE alarm:
// deletes only. Every address key the attachment wrote goes, reserved ones
// too (their reservations stay in their held sets); no sticky hold, no
// liveness record.
func planFree(att StoredAttachment) releasePlan { return releasePlan{att: att} }

// releaseOp releases an attachment if it is unchanged since it was read: a
// transaction whose success says so (see released). It deletes the
// attachment and, of each address, the address key that the attachment's
// transaction wrote last (equal revision) and the node index key it
// created: an address that was released and handed to another container
// since is left alone, however late this release runs. With holds, those
// addresses are rewritten as holds instead, provided every one of them is
// still the attachment's; otherwise they are freed as without.
func (n *Network) releaseOp(plan releasePlan, leases holdLeases) (clientv3.Op, error) {
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
	// Else: whether the attachment is gone (see releaseOutcome).
	plainOp := clientv3.OpTxn([]clientv3.Cmp{unchanged}, plain, []clientv3.Op{clientv3.OpGet(attKey, clientv3.WithCountOnly())})
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
		switch h.Hold.Kind {
		case HoldSticky:
			ops = append(ops, clientv3.OpPut(key, value, clientv3.WithLease(leases.sticky)),
				clientv3.OpPut(n.keys.heldMark(addr), h.Hold.Kind, clientv3.WithLease(leases.sticky)))
			set.Addrs = append(set.Addrs, h)
		case HoldCooling:
			ops = append(ops, n.coolingOps(h, value, leases.cooling)...)
		default:
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
			[]clientv3.Op{clientv3.OpPut(holdsKey, string(value), clientv3.WithLease(leases.sticky))}, nil))
	}
	return clientv3.OpTxn(cmps, ops, []clientv3.Op{plainOp}), nil
}

// released reports whether the answer to a releaseOp released the
// attachment, as holds or not.
func released(r *etcdserverpb.ResponseOp) bool {
	done, _ := releaseOutcome(r)
	return done
}

// releaseOutcome reads the answer to a releaseOp: whether it released the
// attachment, as holds or not, and else whether the attachment was gone
// already (no key of its name).
func releaseOutcome(r *etcdserverpb.ResponseOp) (done, gone bool) {
	t := r.GetResponseTxn()
	if t.GetSucceeded() {
		return true, false
	}
	rs := t.GetResponses()
	if len(rs) == 1 && rs[0].GetResponseTxn() != nil {
		// The fallback, when the holds could not be made.
		plain := rs[0].GetResponseTxn()
		if plain.GetSucceeded() {
			return true, false
		}
		rs = plain.GetResponses()
	}
	return false, len(rs) == 1 && rs[0].GetResponseRange() != nil && rs[0].GetResponseRange().GetCount() == 0
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

// attachment changed in between. p (may be nil) adds the node's liveness
// record and lease records, read with the attachment, sticky holds and
// cooling. Under etcd's NOSPACE alarm, when only deletes pass, it frees
// the addresses without any of them, and without turning reserved
// addresses back into holds (planFree).
func (n *Network) Release(ctx context.Context, containerID, ifName string, p *ReleasePolicy) (*StoredAttachment, error) {
	var sighting *Sighting
	if p != nil {
		sighting = p.Sighting
	}
	l := newLeaser(n, p)
	for attempt := 0; attempt < changedAttempts; attempt++ {
		att, recorded, err := n.attachmentForRelease(ctx, containerID, ifName, sighting, l)
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
		op, err := n.releaseOp(plan, l.leases())
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
		if plan.sticky || plan.cooling {
			record, err := l.recordOps()
			if err != nil {
				return nil, err
			}
			ops = append(ops, record...)
		}
		resp, err := n.cli.Txn(ctx).Then(ops...).Commit()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && l.lostRecorded() {
			continue
		}
		if err == nil {
			l.recorded()
		}
		if errors.Is(err, rpctypes.ErrNoSpace) {
			// Under etcd's NOSPACE alarm only deletes pass, and a DEL
			// must still free addresses: without liveness, holds or
			// cooling.
			if op, err = n.releaseOp(planFree(*att), holdLeases{}); err != nil {
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

// attachmentForRelease is AttachmentSeen that also reads, when l makes
// sticky or cooling holds and has not read them yet, the node's lease
// records, in the same round trip.
func (n *Network) attachmentForRelease(ctx context.Context, containerID, ifName string, sighting *Sighting, l *leaser) (*StoredAttachment, *Sighting, error) {
	reads, slots := l.readOps()
	if len(reads) == 0 {
		return n.AttachmentSeen(ctx, containerID, ifName, sighting)
	}
	att, recorded, extra, err := n.readAttachment(ctx, containerID, ifName, sighting, reads...)
	if err != nil {
		return nil, nil, err
	}
	for i, slot := range slots {
		slot.record, slot.read = decodeLeaseRecord(extra[i].GetResponseRange().Kvs), true
	}
	return att, recorded, nil
}

// AttachmentSeen reads the attachment of (containerID, ifName) and, when
// sighting is given, its node's liveness record, in one round trip.
func (n *Network) AttachmentSeen(ctx context.Context, containerID, ifName string, sighting *Sighting) (*StoredAttachment, *Sighting, error) {
	if sighting == nil {
		att, err := n.Attachment(ctx, containerID, ifName)
		return att, nil, err
	}
	att, recorded, _, err := n.readAttachment(ctx, containerID, ifName, sighting)
	return att, recorded, err
}

// readAttachment reads the attachment of (containerID, ifName), its
// node's liveness record when sighting is given, and the extra reads, in
// one transaction; it returns the extra reads' responses in their order.
func (n *Network) readAttachment(ctx context.Context, containerID, ifName string, sighting *Sighting, extra ...clientv3.Op) (*StoredAttachment, *Sighting, []*etcdserverpb.ResponseOp, error) {
	ops := []clientv3.Op{clientv3.OpGet(n.keys.container(containerID, ifName))}
	if sighting != nil {
		ops = append(ops, clientv3.OpGet(n.keys.seen(sighting.Node)))
	}
	resp, err := n.cli.Txn(ctx).Then(append(ops, extra...)...).Commit()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading attachment of container %q interface %q in network %q: %w", containerID, ifName, n.name, err)
	}
	var recorded *Sighting
	if sighting != nil {
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
			recorded = decodeSighting(sighting.Node, kvs[0].Value, kvs[0].ModRevision)
		}
	}
	extraResponses := resp.Responses[len(ops):]
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return nil, recorded, extraResponses, nil
	}
	att, err := decodeStored(kvs[0])
	if err != nil {
		return nil, nil, nil, err
	}
	return &att, recorded, extraResponses, nil
}

// ReleaseBatch is how many attachments one release transaction carries:
// each takes a few operations, within etcd's 128 per transaction.
const ReleaseBatch = 64

// ReleaseAttachments frees the given attachments, each only if unchanged
// since it was listed, batching many into one transaction. It returns the
// number released, and of the others the number that were gone already
// (released by someone else, or by an earlier attempt of the caller whose
// reply was lost). p (may be nil) makes sticky holds and cooling, with the
// node's one lease for each kind.
func (n *Network) ReleaseAttachments(ctx context.Context, atts []StoredAttachment, p *ReleasePolicy) (released, gone int, err error) {
	l := newLeaser(n, p)
	for start := 0; start < len(atts); start += ReleaseBatch {
		plans := make([]releasePlan, 0, ReleaseBatch)
		for _, att := range atts[start:min(start+ReleaseBatch, len(atts))] {
			plan, err := l.plan(ctx, att)
			if err != nil {
				return released, gone, err
			}
			plans = append(plans, plan)
		}
		record, err := l.recordOps()
		if err != nil {
			return released, gone, err
		}
		count, goneCount, err := n.releaseBatch(ctx, plans, l.leases(), record)
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && l.lostRecorded() {
			// A recorded lease is gone: plan the batch again with
			// a new one.
			start -= ReleaseBatch
			continue
		}
		if err == nil {
			l.recorded()
		}
		if errors.Is(err, rpctypes.ErrNoSpace) {
			for i := range plans {
				plans[i] = planFree(plans[i].att)
			}
			count, goneCount, err = n.releaseBatch(ctx, plans, holdLeases{}, nil)
		}
		released, gone = released+count, gone+goneCount
		if err != nil {
			return released, gone, err
		}
	}
	return released, gone, nil
}

func (n *Network) releaseBatch(ctx context.Context, plans []releasePlan, leases holdLeases, extra []clientv3.Op) (released, gone int, err error) {
	ops := make([]clientv3.Op, 0, len(plans)+len(extra))
	for _, plan := range plans {
		op, err := n.releaseOp(plan, leases)
		if err != nil {
			return 0, 0, err
		}
		ops = append(ops, op)
	}
	ops = append(ops, extra...)
	resp, err := n.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return 0, 0, fmt.Errorf("releasing attachments in network %q: %w", n.name, err)
	}
	for _, r := range resp.Responses[:len(plans)] {
		switch done, wasGone := releaseOutcome(r); {
		case done:
			released++
		case wasGone:
			gone++
		}
	}
	return released, gone, nil
}
