package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// Operator reservations (etcd-ipam reserve): addresses held permanently
// for a pod interface (its static addresses) or for nobody (never handed
// out). Both are conditional writes: a taken address is refused, naming its
// holder.

// Reservation is what Reserve did.
type Reservation struct {
	Held []store.HeldAddr
	// Already: exactly this reservation existed (made at Since, with
	// Note); nothing was written.
	Already bool
	Since   time.Time
	Note    string
}

// Reserve holds addrs for id (nil: for nobody) with the operator's note.
// For a pod interface each address must be in a different range set, as
// an ADD takes one per range set; the identity must hold nothing yet,
// unless it holds exactly these addresses reserved: reserving again is
// not an error, and reports Already.
func (s *Session) Reserve(ctx context.Context, addrs []netip.Addr, id *store.Identity, note string) (Reservation, error) {
	if len(addrs) == 0 {
		return Reservation{}, &RequestedError{Msg: "nothing to reserve: give at least one address", Hint: reserveHint}
	}
	if id != nil {
		if err := store.CheckIdentity(*id); err != nil {
			return Reservation{}, err
		}
	}
	hold := store.Hold{For: id, Kind: store.HoldReserved, Since: s.now().UTC().Truncate(time.Millisecond), Note: note}
	held := make([]store.HeldAddr, 0, len(addrs))
	bySet := map[int]netip.Addr{}
	for _, a := range addrs {
		// The range set an ADD would take a as requested from; else why
		// none would (a gateway or an excluded address of a set that
		// contains it, or outside every range).
		set, reason := -1, "it is in no range of the network"
		for i, rs := range s.sets {
			_, err := s.core.CheckRequested(rs, a)
			if err == nil {
				set = i
				break
			}
			if rs.Contains(a) {
				reason = whyNotReserved(err)
			}
		}
		if set < 0 {
			return Reservation{}, &RequestedError{Msg: fmt.Sprintf("cannot reserve %s in network %q: %s", a, s.name, reason), Hint: reserveHint}
		}
		if other, dup := bySet[set]; dup && id != nil {
			return Reservation{}, &RequestedError{Msg: fmt.Sprintf("cannot reserve both %s and %s for %s: they are in the same range set %d, and an ADD takes one address per range set", other, a, id, set),
				Hint: "reserve one address per range set for a pod interface"}
		}
		bySet[set] = a
		held = append(held, store.HeldAddr{Addr: a, RangeSet: set, Hold: hold})
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// Safe to repeat: an attempt after one whose reply was lost finds
	// that attempt's write (its own Since) and reports it done.
	var outcome store.ReserveOutcome
	err := settle(ctx, func(ctx context.Context) (err error) {
		outcome, err = s.net.Reserve(ctx, held)
		return err
	})
	if err != nil {
		return Reservation{}, err
	}
	return Reservation{Held: held, Already: outcome.Already, Since: outcome.Since, Note: outcome.Note}, nil
}

// reserveHint is what to do about an address Reserve refuses; ADD's advice
// ("or request none") means nothing here.
const reserveHint = "reserve an address inside a range, other than the gateway and excluded addresses"

// whyNotReserved says why the core refuses an address of a range that
// contains it, in reserve's words: the core's text speaks of a requested
// address, as an ADD asks for it.
func whyNotReserved(err error) string {
	var req *core.RequestedError
	switch {
	case !errors.As(err, &req):
		return err.Error()
	case req.Gateway:
		return fmt.Sprintf("it is the gateway of subnet %s, which is never handed out", req.Subnet)
	case req.Excluded:
		return fmt.Sprintf(`it is excluded ("exclude") from its range in subnet %s, so it is never handed out already`, req.Subnet)
	}
	return fmt.Sprintf("it is not in range set %s", req.Set)
}

// Holds lists what every pod interface holds.
func (s *Session) Holds(ctx context.Context) ([]store.StoredHeldSet, error) {
	return retried(ctx, s, func(ctx context.Context) ([]store.StoredHeldSet, error) {
		return s.net.Holds(ctx)
	})
}

// ReleaseHold frees a held address, provided it is still held exactly as
// read, and drops it from its pod interface's held set.
func (s *Session) ReleaseHold(ctx context.Context, held store.StoredAllocation) error {
	_, err := releasing(ctx, s, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, s.net.ReleaseHold(ctx, held)
	})
	return err
}
