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
	"go.etcd.io/etcd/api/v3/mvccpb"
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

// Sticky holds expire with an etcd lease. A lease granted per release
// would outlive the holds it was granted for (the ADD that takes them back
// leaves it behind, empty, until its TTL ends), so that a sticky network's
// restarts pile up a lease per DEL. Instead each node reuses one lease
// while it has at least Sticky left: it is granted for Sticky plus a
// slack of an eighth (at least a second), recorded under leases/<node>
// with itself (so the record ends with it), and read by the DEL in the
// read it makes anyway. A node then has at most about nine leases alive
// however many pods restart, a DEL that reuses one makes no grant (one
// round trip less), and a hold lasts at least Sticky and at most an
// eighth longer. No KeepAlive: every lease just runs out. Cooling holds
// work the same way with a lease of their own per node, recorded under
// cooling-leases/<node> and reused while it has at least Cooldown left.

// LeaseRecord is the value of a leases/<node> (or cooling-leases/<node>)
// key: the lease the node's releases put their sticky (or cooling) holds
// under, and when it ends.
type LeaseRecord struct {
	ID    int64     `json:"id"`
	Until time.Time `json:"until"`
}

// leaseSlack is how much longer than the sticky duration, in seconds, a
// node's lease is granted for: the time during which it is reused.
func leaseSlack(seconds int64) int64 { return max(1, seconds/8) }

// maxLeaseTTL is the longest TTL etcd grants, in seconds (config bounds
// sticky by it); the slack is cut to fit within it.
const maxLeaseTTL = 9_000_000_000

func decodeLeaseRecord(kvs []*mvccpb.KeyValue) *LeaseRecord {
	if len(kvs) == 0 {
		return nil
	}
	var rec LeaseRecord
	if json.Unmarshal(kvs[0].Value, &rec) != nil || rec.ID == 0 {
		return nil
	}
	return &rec
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

// holdLeases are the leases a release puts its sticky and its cooling
// holds under (0 where it makes none).
type holdLeases struct{ sticky, cooling clientv3.LeaseID }

// leaseSlot is the node's reused lease for one kind of hold: the
// recorded one while it has long enough to run, else a new one.
type leaseSlot struct {
	// d is how long the holds must last (sticky or cooldown); 0 when
	// the release makes no such holds.
	d time.Duration
	// key is the node's lease record.
	key   string
	lease clientv3.LeaseID
	until time.Time
	// record is the node's lease record; read says it was read (with
	// the attachment, by Release).
	record *LeaseRecord
	read   bool
	// granted: the lease is new, and the call's write records it.
	granted bool
}

// lost forgets a recorded lease that etcd no longer has (revoked by hand,
// or ended early): the next plan grants a new one.
func (s *leaseSlot) lost() {
	s.lease, s.record, s.granted = 0, nil, false
}

// leaser plans the releases of one call, with the node's leases for their
// sticky and cooling holds, each granted when a plan first needs it.
type leaser struct {
	n               *Network
	p               *ReleasePolicy
	sticky, cooling leaseSlot
	// full: etcd refused a lease for lack of space; the call's plans
	// free, with deletes only.
	full bool
}

func newLeaser(n *Network, p *ReleasePolicy) *leaser {
	l := &leaser{n: n, p: p}
	if p != nil {
		l.sticky = leaseSlot{d: p.Sticky, key: n.keys.lease(p.Node)}
		l.cooling = leaseSlot{d: p.Cooldown, key: n.keys.coolingLease(p.Node)}
	}
	return l
}

// leases are the leases obtained so far.
func (l *leaser) leases() holdLeases {
	return holdLeases{sticky: l.sticky.lease, cooling: l.cooling.lease}
}

// slot is the lease plan's holds need, nil for none.
func (l *leaser) slot(plan releasePlan) *leaseSlot {
	switch {
	case plan.sticky:
		return &l.sticky
	case plan.cooling:
		return &l.cooling
	}
	return nil
}

// plan plans att's release. Under etcd's NOSPACE alarm no lease can be
// granted: the plan then frees with deletes only, and so do the call's
// later plans.
func (l *leaser) plan(ctx context.Context, att StoredAttachment) (releasePlan, error) {
	if l.full {
		return planFree(att), nil
	}
	plan := planRelease(att, l.p, l.sticky.until, l.cooling.until)
	slot := l.slot(plan)
	if slot == nil || slot.lease != 0 {
		return plan, nil
	}
	if err := l.obtain(ctx, slot); err != nil {
		return releasePlan{}, err
	}
	if l.full {
		return planFree(att), nil
	}
	return planRelease(att, l.p, l.sticky.until, l.cooling.until), nil
}

// obtain sets slot's lease: the node's recorded one if it has slot.d
// left, else a new one.
func (l *leaser) obtain(ctx context.Context, slot *leaseSlot) error {
	now := l.p.Now.UTC().Truncate(time.Millisecond)
	if !slot.read {
		resp, err := l.n.cli.Get(ctx, slot.key)
		if err != nil {
			return fmt.Errorf("reading the lease record of node %q in network %q: %w", l.p.Node, l.n.name, err)
		}
		slot.record, slot.read = decodeLeaseRecord(resp.Kvs), true
	}
	if rec := slot.record; rec != nil && rec.Until.Sub(now) >= slot.d {
		slot.lease, slot.until = clientv3.LeaseID(rec.ID), rec.Until
		return nil
	}
	seconds := leaseTTL(slot.d)
	// The slack only where etcd can grant it: never a lease shorter
	// than the hold (a TTL etcd cannot grant fails the DEL instead).
	seconds = max(seconds, min(seconds+leaseSlack(seconds), maxLeaseTTL))
	resp, err := l.n.cli.Grant(ctx, seconds)
	switch {
	case errors.Is(err, rpctypes.ErrNoSpace):
		l.full = true
		return nil
	case err != nil:
		return fmt.Errorf("granting the lease of holds in network %q: %w", l.n.name, err)
	}
	// Counted from before the grant: etcd's lease ends no earlier.
	slot.lease, slot.until, slot.granted = resp.ID, now.Add(time.Duration(seconds)*time.Second), true
	return nil
}

// recordOps records each newly granted lease as the node's, with the
// lease itself, in the write that first uses it.
func (l *leaser) recordOps() ([]clientv3.Op, error) {
	var ops []clientv3.Op
	for _, slot := range []*leaseSlot{&l.sticky, &l.cooling} {
		if !slot.granted {
			continue
		}
		value, err := json.Marshal(LeaseRecord{ID: int64(slot.lease), Until: slot.until})
		if err != nil {
			return nil, fmt.Errorf("encoding the lease record: %w", err)
		}
		ops = append(ops, clientv3.OpPut(slot.key, string(value), clientv3.WithLease(slot.lease)))
	}
	return ops, nil
}

// recorded notes that a write recorded the granted leases.
func (l *leaser) recorded() { l.sticky.granted, l.cooling.granted = false, false }

// lostRecorded forgets the recorded (not newly granted) leases in use,
// after etcd answered that a lease of the write is not found; it reports
// whether there was one, so that the caller plans again rather than
// fails.
func (l *leaser) lostRecorded() bool {
	lost := false
	for _, slot := range []*leaseSlot{&l.sticky, &l.cooling} {
		if slot.lease != 0 && !slot.granted {
			slot.lost()
			lost = true
		}
	}
	return lost
}

// readOps are the reads of the lease records Release makes with the
// attachment: those of the kinds of hold the policy makes, not read yet.
func (l *leaser) readOps() ([]clientv3.Op, []*leaseSlot) {
	var ops []clientv3.Op
	var slots []*leaseSlot
	for _, slot := range []*leaseSlot{&l.sticky, &l.cooling} {
		if slot.d > 0 && !slot.read {
			ops, slots = append(ops, clientv3.OpGet(slot.key)), append(slots, slot)
		}
	}
	return ops, slots
}

// coolingOps write a cooling hold of h's address (its ips/ value given)
// and its cooling/ mark under lease.
func (n *Network) coolingOps(h HeldAddr, value string, lease clientv3.LeaseID) []clientv3.Op {
	return []clientv3.Op{
		clientv3.OpPut(n.keys.ip(h.Addr), value, clientv3.WithLease(lease)),
		clientv3.OpPut(n.keys.coolingMark(h.Addr), coolingValue(h.Hold.Until), clientv3.WithLease(lease)),
	}
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
// writes once (and grants a lease first when it makes sticky or cooling
// holds and the node has no lease to reuse), retrying only if the
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
