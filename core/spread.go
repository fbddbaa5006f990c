package core

import (
	"net/netip"
	"strconv"
)

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

// BurstWindow is how recently, in nanoseconds, another node must have
// moved a range set's round-robin position for an ADD to assume that nodes
// are allocating on the network at the same moment.
const BurstWindow int64 = 2e9

// Racing reports whether another node than node moved position p within
// BurstWindow of now (Unix nanoseconds): nodes are allocating on the
// network at this moment.
func Racing(p Position, node string, now int64) bool {
	if p.Node == "" || p.Node == node {
		return false
	}
	d := now - p.At
	if (d < 0) != (now < p.At) { // overflowed: far apart
		return false
	}
	return d < BurstWindow && d > -BurstWindow
}

// starts returns where each range set's search starts. Normally that is
// the set's round-robin position, exactly as host-local. When another node
// moved the position within BurstWindow, or after this ADD lost a race for
// an address, the search starts instead at a spot drawn from the container
// ID, node and attempt, so that allocators racing on one network spread
// over the pool instead of all trying the same next address. A single node
// therefore always follows host-local's order.
func (r *run) starts(attempt int) []netip.Addr {
	starts := make([]netip.Addr, len(r.req.Sets))
	for i, set := range r.req.Sets {
		var p Position
		if i < len(r.req.Positions) {
			p = r.req.Positions[i]
		}
		if attempt == 0 && !Racing(p, r.req.Node, r.req.Now) {
			starts[i] = p.Addr
			continue
		}
		seed := fnv64a(r.req.ContainerID + "\x00" + r.req.Node + "\x00" + strconv.Itoa(attempt) + "\x00" + strconv.Itoa(i))
		starts[i] = set.Spot(seed)
	}
	return starts
}

// fnv64a is the 64-bit FNV-1a hash of s (hash/fnv's New64a), written out
// so that the guest links no hash package.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
