package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
)

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

// Reservation is how a ReserveFirst transaction ended.
type Reservation struct {
	// IPs are the addresses now held by the attachment: one of the
	// candidates. Nil when nothing was reserved.
	IPs []AttachedAddr
	// Won is the index of the candidate IPs are (meaningful with IPs).
	Won int
	// Existing is set when the attachment itself exists already (a
	// concurrent ADD for the same container and interface won).
	Existing *StoredAttachment
	// PodAttached is set, on a sticky network, when another attachment
	// of the same pod interface exists (ReserveExtras.Sticky): nothing
	// was written.
	PodAttached *PodAttachment
	// Lost lists the addresses of the first candidate that were taken
	// (for a held address: no longer held as read).
	Lost []netip.Addr
	// Observed is the taken addresses of the searches given to
	// ReserveFirst, read in the same transaction when no candidate was
	// free, so that the next attempt needs no read of its own; nil when
	// those reads would not fit into the transaction.
	Observed [][]core.Observation
	// Positions are the range sets' round-robin positions, read in the
	// same transaction when no candidate was free (one per address of the
	// first candidate, by range set), so that the caller sees other nodes
	// allocating at this moment even on a network that had no position
	// when it read; nil when they did not fit.
	Positions []Position
}

// ReserveExtras is what an ADD writes or requires beside its addresses.
type ReserveExtras struct {
	// Sighting, when set, is recorded as the node's liveness.
	Sighting *Sighting
	// Held are the held addresses (of HeldSet) the candidates may take:
	// each must still hold exactly its hold, instead of being free.
	Held    map[netip.Addr]HeldAddr
	HeldSet *StoredHeldSet
	// Vacant are the reserved addresses of Held whose address key is
	// gone (released under etcd's NOSPACE alarm, which leaves the
	// reservation in its held set): each must still be free, and the
	// held set unchanged, instead of holding its hold.
	Vacant map[netip.Addr]bool
	// Sticky, for an attachment with a pod, creates the identity's pods/
	// key with the attachment, and requires that it does not exist.
	Sticky bool
}

// ReserveFirst reserves, in one transaction, the first of candidates (each
// one address per range set, best first) whose addresses are all free, and
// creates the attachment with it: a chain of nested transactions in which
// each candidate is tried only when the ones before it are taken. So an
// allocator that loses a race for its best address gets its next one in the
// same round trip, and the order of the candidates alone decides which
// address a lone allocator gets. When every candidate is taken, it writes
// nothing and reads what the next attempt needs: which addresses of the
// first candidate were taken and the searches' taken addresses.
//
// extras (may be nil) adds the node's liveness record, held addresses to
// take and, on a sticky network, the pod interface's one attachment.
func (n *Network) ReserveFirst(ctx context.Context, att Attachment, candidates [][]AttachedAddr, searches [][]core.Segment, extras *ReserveExtras) (Reservation, error) {
	if err := CheckAttachment(att.ContainerID, att.IfName); err != nil {
		return Reservation{}, err
	}
	if len(candidates) == 0 {
		return Reservation{}, fmt.Errorf("reserving addresses in network %q: no candidate", n.name)
	}
	if extras == nil {
		extras = &ReserveExtras{}
	}
	var podKey string
	if id := IdentityOf(att); id != nil && extras.Sticky {
		podKey = n.keys.pods(*id)
	}
	attKey := n.keys.container(att.ContainerID, att.IfName)
	observeOps, slots := n.observeOps(searches)
	// etcd allows maxTxnOps operations per level of a transaction, less
	// what the levels above use; reads that do not fit are left to the
	// caller (Observed stays nil). Each level: the attachment, per
	// address its key, index key and position, the liveness record, the
	// pod's and held set's keys and the next level.
	perLevel := 5 + 3*len(candidates[0])
	// The positions' reads come first: a few keys, and what tells a lost
	// race from a busy pool.
	room := maxTxnOps - 2 - (len(candidates)-1)*perLevel - len(candidates[0])
	positionOps := make([]clientv3.Op, 0, len(candidates[0]))
	if room >= len(candidates[0]) {
		for _, ip := range candidates[0] {
			positionOps = append(positionOps, clientv3.OpGet(n.keys.lastReserved(ip.RangeSet)))
		}
		room -= len(positionOps)
	}
	if len(observeOps) > room {
		observeOps, slots, searches = nil, nil, nil
	}
	last := make([]clientv3.Op, 0, len(candidates[0])+len(positionOps)+len(observeOps))
	for _, ip := range candidates[0] {
		last = append(last, clientv3.OpGet(n.keys.ip(ip.Address.Addr()), clientv3.WithKeysOnly()))
	}
	last = append(last, positionOps...)
	last = append(last, observeOps...)
	// Built from the last candidate up: each one's Else is the next.
	elseOps := last
	for i := len(candidates) - 1; i >= 0; i-- {
		cmps, puts, err := n.reserveOps(att, candidates[i], extras)
		if err != nil {
			return Reservation{}, err
		}
		positions, err := n.positionOps(att, candidates[i])
		if err != nil {
			return Reservation{}, err
		}
		puts = append(puts, positions...)
		if extras.Sighting != nil {
			op, err := n.sightingOp(*extras.Sighting)
			if err != nil {
				return Reservation{}, err
			}
			puts = append(puts, op)
		}
		if podKey != "" {
			value, err := json.Marshal(PodAttachment{ContainerID: att.ContainerID, IfName: att.IfName, Node: att.Node})
			if err != nil {
				return Reservation{}, fmt.Errorf("encoding the pod's attachment: %w", err)
			}
			puts = append(puts, clientv3.OpPut(podKey, string(value)))
		}
		elseOps = []clientv3.Op{clientv3.OpTxn(cmps, puts, elseOps)}
	}
	conds := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(attKey), "=", 0)}
	otherwise := []clientv3.Op{clientv3.OpGet(attKey)}
	if podKey != "" {
		conds = append(conds, clientv3.Compare(clientv3.CreateRevision(podKey), "=", 0))
		otherwise = append(otherwise, clientv3.OpGet(podKey))
	}
	resp, err := n.cli.Txn(ctx).If(conds...).Then(elseOps...).Else(otherwise...).Commit()
	if err != nil {
		err = fmt.Errorf("reserving addresses in network %q: %w", n.name, err)
		if errors.Is(err, rpctypes.ErrNoSpace) {
			if undoErr := n.undoFullReservation(ctx, att); undoErr != nil {
				return Reservation{}, fmt.Errorf("%w; undoing it: %v", err, undoErr)
			}
		}
		return Reservation{}, err
	}
	if !resp.Succeeded {
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			existing, err := decodeStored(kvs[0])
			if err != nil {
				return Reservation{}, err
			}
			return Reservation{Existing: &existing}, nil
		}
		if podKey != "" {
			if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
				var other PodAttachment
				if err := json.Unmarshal(kvs[0].Value, &other); err != nil {
					return Reservation{}, fmt.Errorf("reserving addresses in network %q: the pod's attachment record %s is unreadable: %w", n.name, podKey, err)
				}
				return Reservation{PodAttached: &other}, nil
			}
		}
		return Reservation{}, fmt.Errorf("reserving addresses in network %q: attachment %s exists but was not returned", n.name, attKey)
	}
	r := resp.Responses[0].GetResponseTxn()
	for i := range candidates {
		if r.GetSucceeded() {
			return Reservation{IPs: withReservations(candidates[i], extras.Held), Won: i}, nil
		}
		if i+1 < len(candidates) {
			r = r.GetResponses()[0].GetResponseTxn()
		}
	}
	responses := make([]*clientv3.GetResponse, 0, len(r.GetResponses()))
	for _, op := range r.GetResponses() {
		responses = append(responses, (*clientv3.GetResponse)(op.GetResponseRange()))
	}
	if len(responses) != len(last) {
		return Reservation{}, fmt.Errorf("reserving addresses in network %q: %d answers to %d reads", n.name, len(responses), len(last))
	}
	var out Reservation
	for i, ip := range candidates[0] {
		if _, held := extras.Held[ip.Address.Addr()]; held || len(responses[i].Kvs) > 0 {
			out.Lost = append(out.Lost, ip.Address.Addr())
		}
	}
	read := len(candidates[0])
	if len(positionOps) > 0 {
		out.Positions = make([]Position, len(candidates[0]))
		for i, ip := range candidates[0] {
			if kvs := responses[read+i].Kvs; len(kvs) > 0 && ip.RangeSet >= 0 && ip.RangeSet < len(out.Positions) {
				out.Positions[ip.RangeSet] = decodePosition(kvs[0].Value)
			}
		}
		read += len(positionOps)
	}
	if searches != nil {
		out.Observed = n.observed(searches, slots, responses[read:])
	}
	return out, nil
}

// withReservations marks the addresses taken from an operator's
// reservation, as the attachment records them.
func withReservations(ips []AttachedAddr, held map[netip.Addr]HeldAddr) []AttachedAddr {
	out := make([]AttachedAddr, len(ips))
	for i, ip := range ips {
		out[i] = ip
		if h, ok := held[ip.Address.Addr()]; ok && h.Hold.Kind == HoldReserved {
			hold := h.Hold
			out[i].Reserved = &hold
		}
	}
	return out
}

// reserveOps are the compares and puts that reserve ips for att: every
// address key must not exist, or, for a held address (extras.Held), hold
// exactly its hold; the attachment and the address keys are written, and
// each address's key in the node's index. Taking held addresses rewrites
// the identity's held set without the sticky ones it took (a reservation
// stays). ReserveFirst adds positionOps; Record does not.
func (n *Network) reserveOps(att Attachment, ips []AttachedAddr, extras *ReserveExtras) ([]clientv3.Cmp, []clientv3.Op, error) {
	if extras == nil {
		extras = &ReserveExtras{}
	}
	att.IPs = withReservations(ips, extras.Held)
	attValue, err := json.Marshal(att)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding attachment: %w", err)
	}
	cmps := make([]clientv3.Cmp, 0, len(ips))
	puts := []clientv3.Op{clientv3.OpPut(n.keys.container(att.ContainerID, att.IfName), string(attValue))}
	taken := map[netip.Addr]bool{}
	for _, ip := range att.IPs {
		addr := ip.Address.Addr()
		value, err := json.Marshal(Allocation{
			ContainerID: att.ContainerID, IfName: att.IfName, Node: att.Node,
			RangeSet: ip.RangeSet, Created: att.Created, Pod: att.Pod,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("encoding allocation: %w", err)
		}
		if h, ok := extras.Held[addr]; ok && extras.Vacant[addr] {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(n.keys.ip(addr)), "=", 0))
			taken[addr] = true
		} else if ok {
			want, err := heldValue(h)
			if err != nil {
				return nil, nil, err
			}
			cmps = append(cmps, clientv3.Compare(clientv3.Value(n.keys.ip(addr)), "=", want))
			puts = append(puts, clientv3.OpDelete(n.keys.heldMark(addr)))
			taken[addr] = true
		} else {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(n.keys.ip(addr)), "=", 0))
		}
		// Without a lease: an address taken from a sticky hold is
		// the attachment's, no longer bound to expire.
		puts = append(puts, clientv3.OpPut(n.keys.ip(addr), string(value)),
			clientv3.OpPut(n.keys.nodeAddr(att.Node, addr), attachmentRef(att.ContainerID, att.IfName)))
	}
	if set := extras.HeldSet; set != nil && len(taken) > 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(n.keys.holds(set.For)), "=", set.ModRevision))
		var rest []HeldAddr
		for _, h := range set.Addrs {
			if !taken[h.Addr] || h.Hold.Kind == HoldReserved {
				rest = append(rest, h)
			}
		}
		if len(rest) < len(set.Addrs) {
			op, err := n.heldSetOp(set.For, rest)
			if err != nil {
				return nil, nil, err
			}
			puts = append(puts, op)
		}
	}
	return cmps, puts, nil
}

// positionOps move each range set's round-robin position to its address
// of ips, recording att's node and time.
func (n *Network) positionOps(att Attachment, ips []AttachedAddr) ([]clientv3.Op, error) {
	puts := make([]clientv3.Op, 0, len(ips))
	for _, ip := range ips {
		position, err := json.Marshal(Position{Addr: ip.Address.Addr(), Node: att.Node, At: att.Created})
		if err != nil {
			return nil, fmt.Errorf("encoding round-robin position: %w", err)
		}
		puts = append(puts, clientv3.OpPut(n.keys.lastReserved(ip.RangeSet), string(position)))
	}
	return puts, nil
}

// undoFullReservation removes what a reservation wrote although etcd
// answered that its database is full. etcd applies the transaction that
// crosses its space quota and only then reports NOSPACE, so the answer does
// not tell whether att was written; an ADD that reports failure must leave
// nothing behind. Deletes still pass under the NOSPACE alarm. Only this
// ADD's own record is removed (same node and creation time), and only if it
// is unchanged since read; the round-robin positions it may have advanced
// are left, as harmless as those of a released address.
func (n *Network) undoFullReservation(ctx context.Context, att Attachment) error {
	stored, err := n.Attachment(ctx, att.ContainerID, att.IfName)
	if err != nil || stored == nil {
		return err
	}
	if stored.Node != att.Node || !stored.Created.Equal(att.Created) {
		return nil // a concurrent ADD's attachment, not this one's
	}
	// Deletes only: etcd may be refusing every put now.
	op, err := n.releaseOp(planFree(*stored), holdLeases{})
	if err != nil {
		return err
	}
	if _, err := n.cli.Txn(ctx).Then(op).Commit(); err != nil {
		return fmt.Errorf("releasing container %q interface %q in network %q: %w", att.ContainerID, att.IfName, n.name, err)
	}
	return nil
}
