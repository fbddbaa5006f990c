package ipam

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// pick chooses one address per range set, in order, from observed (and
// taken, whether each requested address is taken; held ones, held for this
// ADD, are not in it and count as free). It stops at the first
// range set that cannot give one and returns that failure (an
// *ExhaustedError or *RequestedError, the ADD's answer) together with the
// addresses chosen before it; err is a failure to read etcd.
func (s *Session) pick(ctx context.Context, observed [][]core.Observation, taken []bool, requested []netip.Addr, held map[netip.Addr]store.HeldAddr) (picked []store.AttachedAddr, failure, err error) {
	picked = make([]store.AttachedAddr, 0, len(s.sets))
	for i, set := range s.sets {
		var addr netip.Addr
		var rangeIdx int
		if requested[i].IsValid() {
			addr = requested[i]
			idx, err := s.core.CheckRequested(set, addr)
			if err != nil {
				return picked, &RequestedError{Msg: fmt.Sprintf("range set %d of network %q: %v", i, s.name, err), Err: err}, nil
			}
			if _, isHeld := held[addr]; !isHeld {
				if taken[0] {
					return picked, &RequestedError{Msg: fmt.Sprintf("requested IP address %s is not available in range set %d (%s) of network %q", addr, i, set, s.name)}, nil
				}
				taken = taken[1:]
			}
			rangeIdx = idx
		} else {
			choice, err := s.choose(ctx, set, observed[i])
			if err != nil {
				return nil, nil, err
			}
			if !choice.Found {
				return picked, &ExhaustedError{Network: s.name, RangeSet: i, Set: set}, nil
			}
			addr, rangeIdx = choice.Addr, choice.Range
		}
		r := set[rangeIdx]
		picked = append(picked, store.AttachedAddr{
			Address:  netip.PrefixFrom(addr, r.Subnet.Bits()),
			Gateway:  r.Gateway,
			RangeSet: i,
		})
	}
	return picked, nil, nil
}
