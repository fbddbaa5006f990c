package ipam

import (
	"fmt"

	"github.com/etcd-cni/etcd-ipam/core"
)

// allocationError is the error of an allocation the core ended with f,
// worded with the network's name and range sets, which are the session's.
func (s *Session) allocationError(f *core.Failure) error {
	set := func() core.RangeSet {
		if f.RangeSet < 0 || f.RangeSet >= len(s.sets) {
			return nil
		}
		return s.sets[f.RangeSet]
	}
	switch f.Kind {
	case core.Exhausted:
		return &ExhaustedError{Network: s.name, RangeSet: f.RangeSet, Set: set()}
	case core.RequestedInvalid:
		e := &RequestedError{Msg: fmt.Sprintf("range set %d of network %q: %v", f.RangeSet, s.name, f.Err)}
		if f.Err != nil {
			e.Err = f.Err
		}
		return e
	case core.RequestedTaken:
		return &RequestedError{Msg: fmt.Sprintf("requested IP address %s is not available in range set %d (%s) of network %q", f.Addr, f.RangeSet, set(), s.name)}
	case core.RequestedUnmatched:
		return &RequestedError{Msg: fmt.Sprintf("failed to allocate all requested IPs: %s %s in no range set of network %q, or another requested address already took %s range set (one address per range set)",
			joinAddrs(f.Addrs), plural(len(f.Addrs), "is", "are"), s.name, plural(len(f.Addrs), "its", "their"))}
	case core.HoldChanged:
		// A hold changed meanwhile: read again (settle retries).
		return errHoldChanged
	case core.Contention:
		return errContention
	case core.NoAnswer:
		return fmt.Errorf("searching range set %s: no answer after %d rounds of reads", set(), f.Rounds)
	case core.NoPiece:
		return fmt.Errorf("searching range set %s: no piece small enough to read after %d counts", set(), f.Rounds)
	}
	return fmt.Errorf("allocating in network %q: %s", s.name, f.Reason)
}
