package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Holds: addresses kept for a pod's interface (or for nobody) while no
// container has them. A held address stays an ips/ key, so counting and
// uniqueness work as for any allocation; its value has no container and
// says whom it is held for; held/<address> marks it, so that a range's
// held addresses are counted as its allocations are. holds/<namespace>/<name>/<ifname> lists what
// one identity holds, so that its next ADD finds it in its first read.
// pods/<namespace>/<name>/<ifname> names the one attachment of an
// identity on a sticky network, so that a second live instance of the pod
// cannot take an address while the first still has it.

// Hold kinds.
const (
	// HoldSticky is left by the DEL or GC of a pod's attachment on a
	// sticky network; it expires with an etcd lease.
	HoldSticky = "sticky"
	// HoldReserved is an operator's reservation (etcd-ipam reserve): it
	// never expires, and a DEL turns the address back into it.
	HoldReserved = "reserved"
	// HoldCooling is left by a release on a network with a cooldown
	// when the address goes back to nobody: held for nobody, so that no
	// ADD takes it, until its etcd lease ends (see cooling.go).
	HoldCooling = "cooling"
)

// Hold is why an address is held.
type Hold struct {
	// For is the identity that may take the address; nil for a
	// reservation for nobody, which no ADD takes.
	For  *Identity `json:"for,omitempty"`
	Kind string    `json:"kind"`
	// Since is when the hold was made.
	Since time.Time `json:"since"`
	// Until is when a sticky or cooling hold expires (its lease's end).
	Until time.Time `json:"until,omitzero"`
	// Note is the operator's text of a reservation.
	Note string `json:"note,omitempty"`
}

// HeldAddr is one held address of an identity.
type HeldAddr struct {
	Addr     netip.Addr `json:"ip"`
	RangeSet int        `json:"rangeSet"`
	Hold     Hold       `json:"hold"`
}

// HeldSet is the value of a holds/ key: what one identity holds.
type HeldSet struct {
	Addrs []HeldAddr `json:"ips"`
}

// StoredHeldSet is a HeldSet as read, with the revision that lets a
// later transaction check it is unchanged.
type StoredHeldSet struct {
	HeldSet
	For         Identity
	ModRevision int64
}

// PodAttachment is the value of a pods/ key: the one attachment of an
// identity on a sticky network.
type PodAttachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
	Node        string `json:"node"`
}

// heldValue is the ips/ value of a held address. It is a function of the
// HeldAddr alone, so that an ADD taking the address can require, by
// comparing values, that the key still holds exactly this hold: not
// attached since, and not expired and held again for someone else.
func heldValue(h HeldAddr) (string, error) {
	hold := h.Hold
	value, err := json.Marshal(Allocation{RangeSet: h.RangeSet, Hold: &hold})
	if err != nil {
		return "", fmt.Errorf("encoding the hold of %s: %w", h.Addr, err)
	}
	return string(value), nil
}

func (k keys) identityPath(id Identity) string {
	return url.PathEscape(id.Namespace) + "/" + url.PathEscape(id.Name) + "/" + url.PathEscape(id.IfName)
}

func (k keys) holds(id Identity) string { return k.prefix + holdsDir + k.identityPath(id) }

func (k keys) pods(id Identity) string { return k.prefix + podsDir + k.identityPath(id) }

// decodeHeldSet reads a holds/ key; an unreadable one holds nothing an ADD
// could take (its addresses stay held until an operator releases them).
func decodeHeldSet(id Identity, kv *mvccpb.KeyValue) *StoredHeldSet {
	var set HeldSet
	if json.Unmarshal(kv.Value, &set) != nil {
		return nil
	}
	return &StoredHeldSet{HeldSet: set, For: id, ModRevision: kv.ModRevision}
}

// TakenError is a reservation refused because an address is taken.
type TakenError struct {
	Addr  netip.Addr
	Owner Allocation
}

func (e *TakenError) Error() string {
	return fmt.Sprintf("%s is taken: %s", e.Addr, DescribeOwner(e.Owner))
}

// DescribeOwner says who holds an address, for messages.
func DescribeOwner(a Allocation) string {
	switch {
	case a.ContainerID != "":
		s := fmt.Sprintf("held by container %s interface %s on node %s", a.ContainerID, a.IfName, a.Node)
		if a.Pod != nil {
			s += fmt.Sprintf(" (pod %s)", a.Pod)
		}
		return s
	case a.Hold != nil && a.Hold.Kind == HoldCooling:
		return fmt.Sprintf("cooling down after its release until %s (held for nobody; etcd-ipam release frees it at once)", a.Hold.Until.UTC().Format(time.RFC3339))
	case a.Hold != nil && a.Hold.For != nil:
		return fmt.Sprintf("held (%s) for %s", a.Hold.Kind, a.Hold.For)
	case a.Hold != nil:
		return fmt.Sprintf("held (%s) for nobody", a.Hold.Kind)
	}
	return "held by an unreadable record"
}

// ErrAlreadyReserved is a reservation for an identity that has one.
var ErrAlreadyReserved = errors.New("already holds addresses")

// ReserveOutcome is how a Reserve ended.
type ReserveOutcome struct {
	// Already is set when exactly this reservation existed before: the
	// same addresses held (reserved) for the same identity, or for
	// nobody. Nothing was written; Since is when it was made, Note its
	// text. A Reserve retried after its own write committed unseen finds
	// that write, with its own Since: that is not Already.
	Already bool
	Since   time.Time
	Note    string
}

// Reserve holds addrs for hold.For (or for nobody), in one transaction that
// writes nothing unless every address is free and, for an identity, the
// identity holds nothing yet. A taken address gives a *TakenError naming
// its holder, unless the reservation exists exactly as asked (the same
// addresses reserved for the same identity): reserving is safe to repeat.
func (n *Network) Reserve(ctx context.Context, addrs []HeldAddr) (ReserveOutcome, error) {
	if len(addrs) == 0 {
		return ReserveOutcome{}, fmt.Errorf("reserving in network %q: no address", n.name)
	}
	id := addrs[0].Hold.For
	var cmps []clientv3.Cmp
	var puts []clientv3.Op
	for _, h := range addrs {
		value, err := heldValue(h)
		if err != nil {
			return ReserveOutcome{}, err
		}
		key := n.keys.ip(h.Addr)
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
		puts = append(puts, clientv3.OpPut(key, value), clientv3.OpPut(n.keys.heldMark(h.Addr), h.Hold.Kind))
	}
	if id != nil {
		if err := CheckIdentity(*id); err != nil {
			return ReserveOutcome{}, err
		}
		set, err := json.Marshal(HeldSet{Addrs: addrs})
		if err != nil {
			return ReserveOutcome{}, fmt.Errorf("encoding the holds of %s: %w", id, err)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(n.keys.holds(*id)), "=", 0))
		puts = append(puts, clientv3.OpPut(n.keys.holds(*id), string(set)))
	}
	resp, err := n.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
	if err != nil {
		return ReserveOutcome{}, fmt.Errorf("reserving addresses in network %q: %w", n.name, err)
	}
	if resp.Succeeded {
		return ReserveOutcome{}, nil
	}
	if existing, err := n.existingReservation(ctx, addrs); err != nil || existing != nil {
		if err != nil || existing.Since.Equal(addrs[0].Hold.Since) && existing.Note == addrs[0].Hold.Note {
			// This reservation's own earlier write (its reply lost).
			return ReserveOutcome{}, err
		}
		return ReserveOutcome{Already: true, Since: existing.Since, Note: existing.Note}, nil
	}
	for _, h := range addrs {
		owner, err := n.LookupAddress(ctx, h.Addr)
		if err != nil {
			return ReserveOutcome{}, err
		}
		if owner != nil {
			return ReserveOutcome{}, &TakenError{Addr: h.Addr, Owner: owner.Allocation}
		}
	}
	if id != nil {
		return ReserveOutcome{}, fmt.Errorf("reserving addresses in network %q: %s %w; release them first (etcd-ipam release --pod)", n.name, id, ErrAlreadyReserved)
	}
	return ReserveOutcome{}, fmt.Errorf("reserving addresses in network %q: an address was taken meanwhile; try again", n.name)
}

// existingReservation returns the hold of a reservation of exactly addrs
// for their identity (or for nobody), nil if there is none. An identity's
// reservation is its held set, whatever its addresses' keys say (a
// container of the pod may have taken them, or they may be vacant); one
// for nobody is its addresses' keys.
func (n *Network) existingReservation(ctx context.Context, addrs []HeldAddr) (*Hold, error) {
	id := addrs[0].Hold.For
	if id != nil {
		set, err := n.HeldSet(ctx, *id)
		if err != nil || set == nil || len(set.Addrs) != len(addrs) {
			return nil, err
		}
		for _, h := range addrs {
			i := slices.IndexFunc(set.Addrs, func(e HeldAddr) bool { return e.Addr == h.Addr })
			if i < 0 || set.Addrs[i].Hold.Kind != HoldReserved || set.Addrs[i].RangeSet != h.RangeSet {
				return nil, nil
			}
		}
		hold := set.Addrs[0].Hold
		return &hold, nil
	}
	var first *Hold
	for _, h := range addrs {
		owner, err := n.LookupAddress(ctx, h.Addr)
		if err != nil || owner == nil || owner.ContainerID != "" || owner.Hold == nil || owner.Hold.For != nil || owner.Hold.Kind != HoldReserved {
			return nil, err
		}
		if first == nil {
			first = owner.Hold
		}
	}
	return first, nil
}

// Holds lists every identity's held set, for the operator's tools.
func (n *Network) Holds(ctx context.Context) ([]StoredHeldSet, error) {
	resp, err := n.cli.Get(ctx, n.keys.prefix+holdsDir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("listing the holds of network %q: %w", n.name, err)
	}
	var out []StoredHeldSet
	for _, kv := range resp.Kvs {
		id, ok := parseIdentityPath(strings.TrimPrefix(string(kv.Key), n.keys.prefix+holdsDir))
		if !ok {
			continue
		}
		if set := decodeHeldSet(id, kv); set != nil {
			out = append(out, *set)
		}
	}
	return out, nil
}

func parseIdentityPath(path string) (Identity, bool) {
	parts := strings.Split(path, "/")
	if len(parts) != 3 {
		return Identity{}, false
	}
	var out [3]string
	for i, p := range parts {
		v, err := url.PathUnescape(p)
		if err != nil {
			return Identity{}, false
		}
		out[i] = v
	}
	return Identity{Namespace: out[0], Name: out[1], IfName: out[2]}, true
}

// ReleaseHold frees a held address, provided it is still held exactly as
// read, and drops it from its identity's held set in the same
// transaction.
func (n *Network) ReleaseHold(ctx context.Context, held StoredAllocation) error {
	if held.Hold == nil || held.ContainerID != "" {
		return fmt.Errorf("releasing the hold of %s in network %q: it is not held", held.Addr, n.name)
	}
	ipKey := n.keys.ip(held.Addr)
	// full: etcd refused a put for lack of space (its NOSPACE alarm), so
	// a sticky hold leaves its held set as it is: the ADD that finds the
	// entry's key gone drops it.
	full := false
	for attempt := 0; attempt < changedAttempts; attempt++ {
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(ipKey), "=", held.ModRevision)}
		// Deletes only, whatever the kind: a cooling address is freed
		// at once, its mark with it.
		ops := []clientv3.Op{clientv3.OpDelete(ipKey), clientv3.OpDelete(n.keys.heldMark(held.Addr)), clientv3.OpDelete(n.keys.coolingMark(held.Addr))}
		if id := held.Hold.For; id != nil && !(full && held.Hold.Kind == HoldSticky) {
			key := n.keys.holds(*id)
			resp, err := n.cli.Get(ctx, key)
			if err != nil {
				return fmt.Errorf("reading the holds of %s in network %q: %w", id, n.name, err)
			}
			if len(resp.Kvs) == 0 {
				cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			} else {
				kv := resp.Kvs[0]
				cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision))
				// An unreadable set holds nothing an ADD could take:
				// it goes, as an emptied one does.
				var rest []HeldAddr
				if set := decodeHeldSet(*id, kv); set != nil {
					rest = set.without(held.Addr)
				}
				op, err := n.heldSetOp(*id, rest)
				if err != nil {
					return err
				}
				ops = append(ops, op)
			}
		}
		resp, err := n.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if errors.Is(err, rpctypes.ErrNoSpace) && !full && held.Hold.Kind == HoldSticky {
			full = true
			attempt--
			continue
		}
		if errors.Is(err, rpctypes.ErrNoSpace) {
			// A reservation's held set is its record: it must lose the
			// entry, which etcd refuses while it keeps other entries.
			return fmt.Errorf("releasing the hold of %s in network %q: ending one of %s's reservations rewrites its held set, and nothing was released; free space first: %w", held.Addr, n.name, held.Hold.For, err)
		}
		if err != nil {
			return fmt.Errorf("releasing the hold of %s in network %q: %w", held.Addr, n.name, err)
		}
		if resp.Succeeded {
			return nil
		}
		now, err := n.LookupAddress(ctx, held.Addr)
		if err != nil {
			return err
		}
		if now == nil && held.ModRevision != 0 {
			return fmt.Errorf("releasing the hold of %s in network %q: %w: %w; nothing was released", held.Addr, n.name, ErrOwnerChanged, ErrAlreadyFree)
		}
		if now == nil || now.ModRevision != held.ModRevision {
			return fmt.Errorf("releasing the hold of %s in network %q: %w; nothing was released", held.Addr, n.name, ErrOwnerChanged)
		}
	}
	return fmt.Errorf("releasing the hold of %s in network %q: its held set %w during %d attempts", held.Addr, n.name, ErrKeptChanging, changedAttempts)
}

// without returns the set's addresses but addr.
func (s *HeldSet) without(addr netip.Addr) []HeldAddr {
	if s == nil {
		return nil
	}
	var rest []HeldAddr
	for _, h := range s.Addrs {
		if h.Addr != addr {
			rest = append(rest, h)
		}
	}
	return rest
}

// heldSetOp writes id's held set as rest: deleted when rest is empty, else
// rewritten, keeping a sticky set's lease.
func (n *Network) heldSetOp(id Identity, rest []HeldAddr) (clientv3.Op, error) {
	key := n.keys.holds(id)
	if len(rest) == 0 {
		return clientv3.OpDelete(key), nil
	}
	value, err := json.Marshal(HeldSet{Addrs: rest})
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("encoding the holds of %s: %w", id, err)
	}
	return clientv3.OpPut(key, string(value), clientv3.WithIgnoreLease()), nil
}

// HeldSet reads what id holds, nil if nothing (or an unreadable set).
func (n *Network) HeldSet(ctx context.Context, id Identity) (*StoredHeldSet, error) {
	resp, err := n.cli.Get(ctx, n.keys.holds(id))
	if err != nil {
		return nil, fmt.Errorf("reading the holds of %s in network %q: %w", id, n.name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return decodeHeldSet(id, resp.Kvs[0]), nil
}

// DropHeld removes addr from an identity's held set, provided the set is
// unchanged since read: an ADD found that the address no longer holds what
// the set says (released by an operator, say), and must not be blocked by
// it again. The address key itself is left alone.
func (n *Network) DropHeld(ctx context.Context, set StoredHeldSet, addr netip.Addr) error {
	op, err := n.heldSetOp(set.For, set.without(addr))
	if err != nil {
		return err
	}
	key := n.keys.holds(set.For)
	if _, err := n.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", set.ModRevision)).Then(op).Commit(); err != nil {
		return fmt.Errorf("dropping %s from the holds of %s in network %q: %w", addr, set.For, n.name, err)
	}
	return nil
}
