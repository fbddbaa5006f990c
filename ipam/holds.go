package ipam

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Holds in an ADD: the addresses held for the pod interface (an operator's
// reservation, or a sticky network's hold left by its previous instance)
// are taken like requested addresses, in the ADD's one transaction, which
// requires each to hold exactly what was read. Which held address takes
// which range set's place is the core's decision (core.Request.Held); what
// stays here explains or repairs a hold the write could not take.

// HeldElsewhereError is an ADD of a pod interface whose address (or, on a
// sticky network, whose attachment) another container still has: the
// previous instance of the pod, whose DEL has not arrived. Nothing was
// taken; the runtime retries (code 11).
type HeldElsewhereError struct{ Msg string }

func (e *HeldElsewhereError) Error() string { return e.Msg }

// errHoldChanged: a hold changed between the read and the write (taken,
// expired or released); a new attempt reads it again.
var errHoldChanged = errors.New("a held address changed meanwhile")

// podAttachedError is the ADD of a pod interface on a sticky network that
// another container has attached.
func (s *Session) podAttachedError(id store.Identity, other store.PodAttachment) error {
	return &HeldElsewhereError{Msg: fmt.Sprintf("pod interface %s is still attached in network %q as container %s interface %s on node %s; its DEL frees it (or turns its addresses into holds for this pod)",
		id, s.name, other.ContainerID, other.IfName, other.Node)}
}

// heldLost explains a held address the ADD's write could not take: another
// container has it (code 11); or, for a reservation, its key is gone: the
// address was released under etcd's NOSPACE alarm, which leaves the
// reservation in the held set, so the ADD tries again expecting the key
// vacant (vacant is true); or the hold changed, in which case a stale entry
// is dropped from the held set. A nil error without vacant: the address
// itself is as read (or only its hold's text changed); the ADD reads again.
func (s *Session) heldLost(ctx context.Context, h store.HeldAddr, wasVacant bool) (vacant bool, err error) {
	now, err := s.net.LookupAddress(ctx, h.Addr)
	if err != nil {
		return false, err
	}
	switch {
	case now != nil && now.ContainerID != "":
		return false, &HeldElsewhereError{Msg: fmt.Sprintf("%s, held (%s) for %s in network %q, is %s; its DEL gives it back",
			h.Addr, h.Hold.Kind, h.Hold.For, s.name, store.DescribeOwner(now.Allocation))}
	case now == nil && h.Hold.Kind == store.HoldReserved:
		// Vacant as expected when wasVacant: the held set changed.
		return !wasVacant, nil
	case now == nil || now.Hold == nil || now.Hold.For == nil || *now.Hold.For != *h.Hold.For:
		// Gone or held for someone else: the held set is stale there.
		set, err := s.net.HeldSet(ctx, *h.Hold.For)
		if err != nil {
			return false, err
		}
		if set != nil {
			if err := s.net.DropHeld(ctx, *set, h.Addr); err != nil {
				return false, err
			}
		}
	}
	return false, nil
}
