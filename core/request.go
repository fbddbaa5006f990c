package core

import (
	"fmt"
	"net/netip"
)

// AssignRequested matches requested addresses to range sets the way
// host-local does: each range set, in order, takes the first requested
// address it contains. Duplicates count once. Addresses no set takes are
// returned as unmatched; the ADD must then fail.
func AssignRequested(sets []RangeSet, requested []netip.Addr) (perSet []netip.Addr, unmatched []netip.Addr) {
	pending := make([]netip.Addr, 0, len(requested))
	for _, a := range requested {
		a = a.Unmap()
		duplicate := false
		for _, p := range pending {
			if p == a {
				duplicate = true
				break
			}
		}
		if !duplicate {
			pending = append(pending, a)
		}
	}
	perSet = make([]netip.Addr, len(sets))
	for i, set := range sets {
		for k, a := range pending {
			if set.Contains(a) {
				perSet[i] = a
				pending = append(pending[:k], pending[k+1:]...)
				break
			}
		}
	}
	return perSet, pending
}

// CheckRequested says whether a requested address may be reserved from the
// set: it must lie in one of the set's ranges and must not be that range's
// gateway. It returns the index of the range.
func (s RangeSet) CheckRequested(a netip.Addr) (int, error) {
	a = a.Unmap() // RangeFor accepts ::ffff:a.b.c.d; so must the gateway check
	i, ok := s.RangeFor(a)
	if !ok {
		return -1, fmt.Errorf("requested address %s is not in range set %s", a, s)
	}
	if a == s[i].Gateway {
		return -1, fmt.Errorf("requested address %s is the gateway of subnet %s; gateways are never handed out", a, s[i].Subnet)
	}
	return i, nil
}
