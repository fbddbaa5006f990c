package core

import "net/netip"

// Segment is a span of consecutive addresses of one range, From to To
// inclusive, that an allocator visits in order.
type Segment struct {
	Range int // index of the range in its set
	From  netip.Addr
	To    netip.Addr
}

// SearchOrder returns the segments an allocator walks to find a free
// address: host-local's round robin. When last (the address this range set
// reserved most recently) lies in the set, the walk starts just after it,
// runs to the end of its range, continues through the following ranges,
// wraps to the first, and ends with last itself. Otherwise it walks the
// ranges in order from the first range's start. Every address of the set
// appears exactly once.
func (s RangeSet) SearchOrder(last netip.Addr) []Segment {
	last = last.Unmap() // RangeFor accepts ::ffff:a.b.c.d; the segments must not carry it
	n := len(s)
	at, ok := s.RangeFor(last)
	if !ok {
		order := make([]Segment, n)
		for i, r := range s {
			order[i] = Segment{Range: i, From: r.RangeStart, To: r.RangeEnd}
		}
		return order
	}
	order := make([]Segment, 0, n+1)
	if last != s[at].RangeEnd {
		order = append(order, Segment{Range: at, From: last.Next(), To: s[at].RangeEnd})
	}
	for k := 1; k < n; k++ {
		i := (at + k) % n
		order = append(order, Segment{Range: i, From: s[i].RangeStart, To: s[i].RangeEnd})
	}
	return append(order, Segment{Range: at, From: s[at].RangeStart, To: last})
}

// Observation is what a store found in one segment: the taken addresses in
// ascending order. Complete is false when the store stopped reading at its
// limit, so that addresses after the last one listed are unknown.
type Observation struct {
	Segment  Segment
	Taken    []netip.Addr
	Complete bool
}

// Choice is the outcome of Choose.
type Choice struct {
	// Found is true when Addr is free to reserve.
	Found bool
	Addr  netip.Addr
	Range int // index of the range holding Addr
	// Exhausted is true when every segment was observed completely and
	// none has a free address.
	Exhausted bool
	// Resume lists the segments still to observe when neither Found nor
	// Exhausted: the rest of the first incomplete segment and all after it.
	Resume []Segment
}

// Choose walks the observations in order and returns the free address at
// position pick among the free addresses it meets, skipping each range's
// gateway. pick 0 is host-local's choice, the first free address after the
// last reserved one; a larger pick spreads allocators that lost a race for
// the same address. When an incomplete observation ends the walk before
// pick is reached, the last free address met is returned, if any. Excluded
// addresses are skipped like the gateway, an excluded span in one step.
func (s RangeSet) Choose(observed []Observation, pick int) Choice {
	if pick < 0 {
		pick = 0
	}
	seen := 0
	var last Choice
	consider := func(a netip.Addr, rangeIdx int) bool {
		if a == s[rangeIdx].Gateway {
			return false
		}
		last = Choice{Found: true, Addr: a, Range: rangeIdx}
		seen++
		return seen > pick
	}
	// skip returns the address after the exclusion that holds a, so that
	// a walk steps over an excluded span in one move, however long; ok is
	// false when a is not excluded.
	skip := func(a netip.Addr, rangeIdx int) (next netip.Addr, ok bool) {
		x, ok := s[rangeIdx].excluded(a)
		if !ok {
			return a, false
		}
		return x.To.Next(), true
	}
	for i, obs := range observed {
		seg := obs.Segment
		cur := seg.From
		segmentDone := false
	walk:
		for _, taken := range obs.Taken {
			for cur.IsValid() && cur.Less(taken) && !seg.To.Less(cur) {
				if next, ok := skip(cur, seg.Range); ok {
					cur = next
					if !cur.IsValid() || seg.To.Less(cur) {
						segmentDone = true // excluded to the segment's end
						break walk
					}
					continue
				}
				if consider(cur, seg.Range) {
					return last
				}
				cur = cur.Next()
			}
			if taken == seg.To {
				segmentDone = true
				break
			}
			if !taken.Less(cur) {
				cur = taken.Next()
			}
		}
		if segmentDone || !cur.IsValid() {
			continue
		}
		if next, ok := skip(cur, seg.Range); ok {
			if !next.IsValid() || seg.To.Less(next) {
				continue // excluded to the segment's end
			}
			cur = next
		}
		if !obs.Complete {
			if last.Found {
				return last
			}
			resume := []Segment{{Range: seg.Range, From: cur, To: seg.To}}
			for _, rest := range observed[i+1:] {
				resume = append(resume, rest.Segment)
			}
			return Choice{Resume: resume}
		}
		for cur.IsValid() && !seg.To.Less(cur) {
			if next, ok := skip(cur, seg.Range); ok {
				cur = next
				continue
			}
			if consider(cur, seg.Range) {
				return last
			}
			if cur == seg.To {
				break
			}
			cur = cur.Next()
		}
	}
	if last.Found {
		return last
	}
	return Choice{Exhausted: true}
}

// Read limits: how many taken addresses a store reads of a search's
// segment j (Read), keys only. The first segment of a search usually holds
// the answer, the later ones matter only after a wrap-around; a segment
// with more taken addresses is observed incomplete, and the narrowing
// counts instead of reading on.
const (
	firstSegmentLimit = 32
	laterSegmentLimit = 8
)

// ReadLimit is how many taken addresses a store reads of a search's j-th
// segment.
func ReadLimit(j int) int {
	if j == 0 {
		return firstSegmentLimit
	}
	return laterSegmentLimit
}
