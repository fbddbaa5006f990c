package core

import "net/netip"

// When several nodes allocate on one network at the same moment, they all
// read the same round-robin position and would all try the same next
// address: one wins, the others lose the transaction and retry together
// again. Giving each racing allocator its own starting spot spreads them
// over the pool instead. A lone allocator never needs it and keeps
// host-local's order.

// Spot returns the address at position seed, modulo the number of
// addresses in the set, counting through its ranges in order, so that
// allocators drawing different seeds start their searches apart. Excluded
// addresses are not counted, so a spot is never one of them and a long
// exclusion does not send many allocators to the address after it.
func (s RangeSet) Spot(seed uint64) netip.Addr {
	sizes := make([]uint64, len(s))
	var total uint64
	for i, r := range s {
		sizes[i] = distance(r.RangeStart, r.RangeEnd)
		if len(r.Exclude) > 0 {
			sizes[i] = max(1, span128(r.RangeStart, r.RangeEnd).sub(r.excludedAll()).saturate())
		}
		total += sizes[i]
		if total < sizes[i] {
			total = ^uint64(0) // saturated: spots cover the first 2^64-1
		}
	}
	k := seed % total
	for i, r := range s {
		if k < sizes[i] {
			return r.nthUnexcluded(k)
		}
		k -= sizes[i]
	}
	return s[0].RangeStart
}

// excludedAll counts every excluded address of the range, the gateway too
// when an exclusion holds it.
func (r Range) excludedAll() u128 {
	var n u128
	for _, x := range r.Exclude {
		n = n.add(span128(x.From, x.To))
	}
	return n
}

// nthUnexcluded returns the range's k-th address (from 0) that is not
// excluded, or its last such address when k is past them all.
func (r Range) nthUnexcluded(k uint64) netip.Addr {
	cur := r.RangeStart
	for _, x := range r.Exclude {
		if cur.Less(x.From) {
			gap := distance(cur, x.From.Prev())
			if k < gap {
				a, _ := addOffset(cur, k)
				return a
			}
			k -= gap
		}
		next := x.To.Next()
		if !next.IsValid() || r.RangeEnd.Less(next) {
			// The range ends excluded: its last free address precedes
			// this exclusion (canonical ranges always have one).
			return r.lastUnexcluded()
		}
		cur = next
	}
	if a, ok := addOffset(cur, k); ok && !r.RangeEnd.Less(a) {
		return a
	}
	return r.lastUnexcluded()
}

// lastUnexcluded returns the highest address of the range that is not
// excluded (RangeStart if there is none).
func (r Range) lastUnexcluded() netip.Addr {
	a := r.RangeEnd
	for i := len(r.Exclude) - 1; i >= 0; i-- {
		x := r.Exclude[i]
		if a.Less(x.From) || x.To.Less(a) {
			return a
		}
		if x.From == r.RangeStart {
			return r.RangeStart
		}
		a = x.From.Prev()
	}
	return a
}
