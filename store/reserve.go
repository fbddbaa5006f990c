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
	// Existing is set when the attachment itself exists already (a
	// concurrent ADD for the same container and interface won).
	Existing *StoredAttachment
	// Lost lists the addresses of the first candidate that were taken.
	Lost []netip.Addr
	// Observed is the taken addresses of the searches given to
	// ReserveFirst, read in the same transaction when no candidate was
	// free, so that the next attempt needs no read of its own; nil when
	// those reads would not fit into the transaction.
	Observed [][]core.Observation
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
// A non-nil sighting is recorded as the node's liveness with the
// reservation, in the same transaction.
func (n *Network) ReserveFirst(ctx context.Context, att Attachment, candidates [][]AttachedAddr, searches [][]core.Segment, sighting *Sighting) (Reservation, error) {
	if err := CheckAttachment(att.ContainerID, att.IfName); err != nil {
		return Reservation{}, err
	}
	if len(candidates) == 0 {
		return Reservation{}, fmt.Errorf("reserving addresses in network %q: no candidate", n.name)
	}
	attKey := n.keys.container(att.ContainerID, att.IfName)
	observeOps, slots := n.observeOps(searches)
	// etcd allows maxTxnOps operations per level of a transaction, less
	// what the levels above use; reads that do not fit are left to the
	// caller (Observed stays nil).
	// Each level: the attachment, per address its key, index key and
	// position, the liveness record and the next level.
	perLevel := 3 + 3*len(candidates[0])
	if room := maxTxnOps - 1 - (len(candidates)-1)*perLevel - len(candidates[0]); len(observeOps) > room {
		observeOps, slots, searches = nil, nil, nil
	}
	last := make([]clientv3.Op, 0, len(candidates[0])+len(observeOps))
	for _, ip := range candidates[0] {
		last = append(last, clientv3.OpGet(n.keys.ip(ip.Address.Addr()), clientv3.WithKeysOnly()))
	}
	last = append(last, observeOps...)
	// Built from the last candidate up: each one's Else is the next.
	elseOps := last
	for i := len(candidates) - 1; i >= 0; i-- {
		cmps, puts, err := n.reserveOps(att, candidates[i])
		if err != nil {
			return Reservation{}, err
		}
		positions, err := n.positionOps(att, candidates[i])
		if err != nil {
			return Reservation{}, err
		}
		puts = append(puts, positions...)
		if sighting != nil {
			op, err := n.sightingOp(*sighting)
			if err != nil {
				return Reservation{}, err
			}
			puts = append(puts, op)
		}
		elseOps = []clientv3.Op{clientv3.OpTxn(cmps, puts, elseOps)}
	}
	resp, err := n.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(attKey), "=", 0)).
		Then(elseOps...).
		Else(clientv3.OpGet(attKey)).Commit()
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
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return Reservation{}, fmt.Errorf("reserving addresses in network %q: attachment %s exists but was not returned", n.name, attKey)
		}
		existing, err := decodeStored(kvs[0])
		if err != nil {
			return Reservation{}, err
		}
		return Reservation{Existing: &existing}, nil
	}
	r := resp.Responses[0].GetResponseTxn()
	for i := range candidates {
		if r.GetSucceeded() {
			return Reservation{IPs: candidates[i]}, nil
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
		if len(responses[i].Kvs) > 0 {
			out.Lost = append(out.Lost, ip.Address.Addr())
		}
	}
	if searches != nil {
		out.Observed = n.observed(searches, slots, responses[len(candidates[0]):])
	}
	return out, nil
}

// reserveOps are the compares and puts that reserve ips for att: every
// address key must not exist; the attachment and the address keys are
// written, and each address's key in the node's index. ReserveFirst adds
// positionOps; Record does not.
func (n *Network) reserveOps(att Attachment, ips []AttachedAddr) ([]clientv3.Cmp, []clientv3.Op, error) {
	att.IPs = ips
	attValue, err := json.Marshal(att)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding attachment: %w", err)
	}
	cmps := make([]clientv3.Cmp, 0, len(ips))
	puts := []clientv3.Op{clientv3.OpPut(n.keys.container(att.ContainerID, att.IfName), string(attValue))}
	for _, ip := range ips {
		addr := ip.Address.Addr()
		value, err := json.Marshal(Allocation{
			ContainerID: att.ContainerID, IfName: att.IfName, Node: att.Node,
			RangeSet: ip.RangeSet, Created: att.Created,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("encoding allocation: %w", err)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(n.keys.ip(addr)), "=", 0))
		puts = append(puts, clientv3.OpPut(n.keys.ip(addr), string(value)),
			clientv3.OpPut(n.keys.nodeAddr(att.Node, addr), attachmentRef(att.ContainerID, att.IfName)))
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
	cmp, op := n.releaseOp(*stored)
	if _, err := n.cli.Txn(ctx).If(cmp).Then(op).Commit(); err != nil {
		return fmt.Errorf("releasing container %q interface %q in network %q: %w", att.ContainerID, att.IfName, n.name, err)
	}
	return nil
}
