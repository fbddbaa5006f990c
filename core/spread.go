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
// allocators drawing different seeds start their searches apart.
func (s RangeSet) Spot(seed uint64) netip.Addr {
	sizes := make([]uint64, len(s))
	var total uint64
	for i, r := range s {
		sizes[i] = distance(r.RangeStart, r.RangeEnd)
		total += sizes[i]
		if total < sizes[i] {
			total = ^uint64(0) // saturated: spots cover the first 2^64-1
		}
	}
	k := seed % total
	for i, r := range s {
		if k < sizes[i] {
			a, _ := addOffset(r.RangeStart, k)
			return a
		}
		k -= sizes[i]
	}
	return s[0].RangeStart
}
