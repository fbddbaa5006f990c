package ipam

import (
	"context"
	"fmt"

	"github.com/etcd-cni/etcd-ipam/core"
)

// Bounds on the extra reads a search makes when runs of taken addresses
// follow the last reserved one: narrowRounds for the whole search,
// splitParts segments counted per round trip (within etcd's 128 operations
// per transaction), readableSpan the size below which a segment is read key
// by key instead of counted.
const (
	narrowRounds = 64
	splitParts   = 120
	readableSpan = 30
)

// choose runs Choose. When the first reads end inside a run of taken
// addresses, it counts the taken addresses of the remaining segments, cut
// into up to splitParts pieces (one round trip, a few bytes per piece), to
// find the first piece with room, cuts that piece and counts again until it
// is small enough to read, then reads it. A full range set is recognised
// from the first count, and a free address at the far end of a /16 after
// three round trips: two counts and a read.
func (s *Session) choose(ctx context.Context, set core.RangeSet, observed []core.Observation) (core.Choice, error) {
	const pick = 0 // the first free address in search order, as host-local
	choice := s.core.Choose(set, observed, pick)
search:
	for round := 0; !choice.Found && !choice.Exhausted; round++ {
		if round == narrowRounds {
			return core.Choice{}, fmt.Errorf("searching range set %s: no answer after %d rounds of reads", set, narrowRounds)
		}
		remaining := choice.Resume
		segs := remaining
		var seg core.Segment
		// Each level cuts the piece with room into smaller ones; a
		// piece larger than readableSpan is always cut at least in two,
		// so this ends within a few levels even for an IPv6 /64.
		for depth := 0; ; depth++ {
			if depth == narrowRounds {
				return core.Choice{}, fmt.Errorf("searching range set %s: no piece small enough to read after %d counts", set, narrowRounds)
			}
			parts := s.cut(set, segs)
			i, err := s.firstWithRoom(ctx, set, parts)
			if err != nil {
				return core.Choice{}, err
			}
			if i < 0 && depth == 0 {
				return core.Choice{Exhausted: true}, nil
			}
			if i < 0 {
				// Taken meanwhile: count the remaining segments again.
				choice = core.Choice{Resume: remaining}
				continue search
			}
			seg = parts[i]
			if s.core.SegmentCapacity(set, seg) <= readableSpan {
				break
			}
			segs = []core.Segment{seg}
		}
		more, _, err := s.net.Observe(ctx, [][]core.Segment{{seg}}, nil)
		if err != nil {
			return core.Choice{}, err
		}
		choice = s.core.Choose(set, more[0], pick)
		if !choice.Found {
			choice = core.Choice{Resume: remaining}
		}
	}
	return choice, nil
}

// cut splits segs, in order, into at most splitParts pieces, each segment
// into a share of the pieces by its size, so that one count finds the
// first piece with room to within 1/splitParts of the whole.
//
// Shares are computed in floating point: IPv6 capacities reach 2^64, where
// integer products and sums overflow (an overflowed share of 1 would leave
// a /64 uncut, counted again and again).
//
// Excluded addresses are cut out first: a piece holding an excluded
// address that was allocated before its exclusion would count it as taken
// while SegmentCapacity leaves it out, and could look full with a free
// address left.
func (s *Session) cut(set core.RangeSet, segs []core.Segment) []core.Segment {
	segs = s.core.WithoutExcluded(set, segs)
	caps := make([]float64, len(segs))
	var total float64
	for i, seg := range segs {
		caps[i] = float64(s.core.SegmentCapacity(set, seg))
		total += caps[i]
	}
	budget := float64(max(0, splitParts-len(segs))) // on top of one piece each
	var parts []core.Segment
	for i, seg := range segs {
		n := 1
		if total > 0 {
			n = max(1, int(budget*caps[i]/total))
		}
		if n == 1 {
			parts = append(parts, seg)
			continue
		}
		parts = append(parts, s.core.Split(seg, n)...)
	}
	return parts
}

// firstWithRoom returns the index of the first segment that has a free
// address, or -1, from one round trip of counts.
func (s *Session) firstWithRoom(ctx context.Context, set core.RangeSet, segs []core.Segment) (int, error) {
	counts, err := s.net.CountTaken(ctx, segs)
	if err != nil {
		return 0, err
	}
	for i, seg := range segs {
		if uint64(counts[i]) < s.core.SegmentCapacity(set, seg) {
			return i, nil
		}
	}
	return -1, nil
}
