package store

// The node's reused hold leases: sticky and cooling holds expire with an
// etcd lease, and each node puts all of its holds of one kind under one
// lease it reuses, so that leases do not pile up with releases.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

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
