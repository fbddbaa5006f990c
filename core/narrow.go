package core

// When a search meets a long run of taken addresses, reading them key by key
// would cost one round trip per few dozen addresses. Instead the store
// counts the taken addresses of whole segments (a count costs the same
// bytes whatever it counts), and the allocator narrows down to a segment
// small enough to read: a full pool is recognised from counts alone.

// SegmentCapacity is the number of addresses of seg that could be handed
// out: all of them but the range's gateway and excluded addresses. It
// saturates at the largest uint64.
func (s RangeSet) SegmentCapacity(seg Segment) uint64 {
	if seg.To.Less(seg.From) {
		return 0
	}
	return s[seg.Range].handable(seg.From, seg.To)
}

// Split cuts seg into at most parts consecutive segments of nearly equal
// size that together cover it exactly, in order.
func Split(seg Segment, parts int) []Segment {
	if parts < 1 || seg.To.Less(seg.From) {
		return nil
	}
	total := distance(seg.From, seg.To)
	if total == ^uint64(0) {
		// Saturated: split the first 2^64-1 addresses, and give the rest
		// to the last part.
		total--
	}
	if uint64(parts) > total {
		parts = int(total)
	}
	size := total / uint64(parts)
	out := make([]Segment, 0, parts)
	from := seg.From
	for i := 0; i < parts; i++ {
		if i == parts-1 {
			out = append(out, Segment{Range: seg.Range, From: from, To: seg.To})
			break
		}
		to, _ := addOffset(from, size-1)
		out = append(out, Segment{Range: seg.Range, From: from, To: to})
		from = to.Next()
	}
	return out
}
