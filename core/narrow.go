package core

import "strconv"

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

// Bounds on the extra round trips a search makes when runs of taken
// addresses follow the last reserved one: NarrowRounds for the whole
// search, SplitParts segments counted per round trip (within etcd's 128
// operations per transaction), ReadableSpan the size below which a
// segment is read key by key instead of counted.
const (
	NarrowRounds = 64
	SplitParts   = 120
	ReadableSpan = 30
)

// choose finds range set i's first free address in search order, as
// host-local. When the first reads end inside a run of taken addresses, it
// counts the taken addresses of the remaining segments, cut into up to
// SplitParts pieces (one round trip, a few bytes per piece), to find the
// first piece with room, cuts that piece and counts again until it is
// small enough to read, then reads it. A full range set is recognised from
// the first count, and a free address at the far end of a /16 after three
// round trips: two counts and a read.
func (r *run) choose(i int, observed []Observation) (Choice, *Action) {
	const pick = 0 // the first free address in search order, as host-local
	set := r.req.Sets[i]
	choice := set.Choose(observed, pick)
search:
	for round := 0; !choice.Found && !choice.Exhausted; round++ {
		if round == NarrowRounds {
			act := fail(Failure{Kind: NoAnswer, RangeSet: i, Rounds: NarrowRounds})
			return Choice{}, &act
		}
		remaining := choice.Resume
		segs := remaining
		var seg Segment
		// Each level cuts the piece with room into smaller ones; a piece
		// larger than ReadableSpan is always cut at least in two, so this
		// ends within a few levels even for an IPv6 /64.
		for depth := 0; ; depth++ {
			if depth == NarrowRounds {
				act := fail(Failure{Kind: NoPiece, RangeSet: i, Rounds: NarrowRounds})
				return Choice{}, &act
			}
			parts := set.cut(segs)
			ans, stop := r.ask(Action{Count: &Count{RangeSet: i, Segments: parts}})
			if stop != nil {
				return Choice{}, stop
			}
			if len(ans.Counts) != len(parts) {
				act := badAnswer("count: " + strconv.Itoa(len(ans.Counts)) + " counts of " + strconv.Itoa(len(parts)) + " segments")
				return Choice{}, &act
			}
			k := set.firstWithRoom(parts, ans.Counts)
			if k < 0 && depth == 0 {
				return Choice{Exhausted: true}, nil
			}
			if k < 0 {
				// Taken meanwhile: count the remaining segments again.
				choice = Choice{Resume: remaining}
				continue search
			}
			seg = parts[k]
			if set.SegmentCapacity(seg) <= ReadableSpan {
				break
			}
			segs = []Segment{seg}
		}
		searches := make([][]Segment, len(r.req.Sets))
		searches[i] = []Segment{seg}
		ans, stop := r.ask(Action{Read: &Read{Searches: searches}})
		if stop != nil {
			return Choice{}, stop
		}
		if reason := observationsFit(ans.Observed, searches); reason != "" {
			act := badAnswer("read: " + reason)
			return Choice{}, &act
		}
		choice = set.Choose(ans.Observed[i], pick)
		if !choice.Found {
			choice = Choice{Resume: remaining}
		}
	}
	return choice, nil
}

// cut splits segs, in order, into at most SplitParts pieces, each segment
// into a share of the pieces by its size, so that one count finds the
// first piece with room to within 1/SplitParts of the whole.
//
// Shares are computed in floating point: IPv6 capacities reach 2^64, where
// integer products and sums overflow (an overflowed share of 1 would leave
// a /64 uncut, counted again and again).
//
// Excluded addresses are cut out first: a piece holding an excluded
// address that was allocated before its exclusion would count it as taken
// while SegmentCapacity leaves it out, and could look full with a free
// address left.
func (s RangeSet) cut(segs []Segment) []Segment {
	segs = s.WithoutExcluded(segs)
	caps := make([]float64, len(segs))
	var total float64
	for i, seg := range segs {
		caps[i] = float64(s.SegmentCapacity(seg))
		total += caps[i]
	}
	budget := float64(max(0, SplitParts-len(segs))) // on top of one piece each
	var parts []Segment
	for i, seg := range segs {
		n := 1
		if total > 0 {
			n = max(1, int(budget*caps[i]/total))
		}
		if n == 1 {
			parts = append(parts, seg)
			continue
		}
		parts = append(parts, Split(seg, n)...)
	}
	return parts
}

// firstWithRoom returns the index of the first segment that has a free
// address by counts, or -1.
func (s RangeSet) firstWithRoom(segs []Segment, counts []int64) int {
	for i, seg := range segs {
		if uint64(counts[i]) < s.SegmentCapacity(seg) {
			return i
		}
	}
	return -1
}
