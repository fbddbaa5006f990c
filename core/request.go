package core

import (
	"net/netip"
	"slices"
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

// RequestedError says why a requested address cannot be reserved from a
// range set. It carries what its message names, rather than only the
// message, so that callers can tell the cases apart with errors.As and
// hosts/wasm can rebuild it field for field.
type RequestedError struct {
	// Addr is the requested address, IPv4-mapped addresses unmapped.
	Addr netip.Addr
	// Set is a copy of the range set Addr was checked against, so that the
	// error stays true if the caller reuses its set.
	Set RangeSet
	// Gateway is true when Addr lies in a range of Set but is the gateway
	// of Subnet; false when it lies in none of Set's ranges.
	Gateway bool
	// Excluded is true when Addr lies in a range of Set, the one of
	// Subnet, but that range's "exclude" list holds it.
	Excluded bool
	// Subnet is the subnet whose gateway Addr is, or whose range
	// excludes it; the zero Prefix unless Gateway or Excluded.
	Subnet netip.Prefix
}

func (e *RequestedError) Error() string {
	if e.Gateway {
		return "requested address " + e.Addr.String() + " is the gateway of subnet " + e.Subnet.String() + "; gateways are never handed out"
	}
	if e.Excluded {
		return "requested address " + e.Addr.String() + ` is excluded ("exclude") from its range in subnet ` + e.Subnet.String() +
			"; excluded addresses are never handed out: request another address, or remove it from the range's \"exclude\" list"
	}
	return "requested address " + e.Addr.String() + " is not in range set " + e.Set.String()
}

// CheckRequested says whether a requested address may be reserved from the
// set: it must lie in one of the set's ranges and must be neither that
// range's gateway nor one of its excluded addresses. It returns the index of the range, or a *RequestedError.
func (s RangeSet) CheckRequested(a netip.Addr) (int, error) {
	a = a.Unmap() // RangeFor accepts ::ffff:a.b.c.d; so must the gateway check
	i, ok := s.RangeFor(a)
	if !ok {
		return -1, &RequestedError{Addr: a, Set: slices.Clone(s)}
	}
	if a == s[i].Gateway {
		return -1, &RequestedError{Addr: a, Set: slices.Clone(s), Gateway: true, Subnet: s[i].Subnet}
	}
	if s[i].IsExcluded(a) {
		return -1, &RequestedError{Addr: a, Set: slices.Clone(s), Excluded: true, Subnet: s[i].Subnet}
	}
	return i, nil
}
