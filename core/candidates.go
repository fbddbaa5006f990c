package core

import "net/netip"

// Widths of the candidate chains an ADD offers in one write:
// GuessedCandidates addresses in search order before anything is read,
// ObservedCandidates free ones after a read. A wider chain absorbs more
// allocators racing from the same position in one round trip, at the cost
// of a larger transaction.
const (
	GuessedCandidates  = 8
	ObservedCandidates = 8
)

// guess returns candidates read from nothing: the first addresses of each
// search, as if free.
func guess(sets []RangeSet, searches [][]Segment) [][]Assigned {
	width := perSetWidth(GuessedCandidates, len(sets))
	lists := make([][]Assigned, len(sets))
	for i, segs := range searches {
		var observed []Observation
		for _, seg := range segs {
			observed = append(observed, Observation{Segment: seg, Complete: true})
		}
		lists[i] = freeInOrder(sets[i], i, observed, nil, width)
	}
	return product(lists, GuessedCandidates)
}

// candidatesFrom returns picked followed by alternatives: the next free
// addresses of each search as observed, for an allocator that loses picked
// to a race. A requested or held address has no alternative.
func candidatesFrom(sets []RangeSet, observed [][]Observation, picked []Assigned, perSet []netip.Addr) [][]Assigned {
	width := perSetWidth(ObservedCandidates, len(sets))
	lists := make([][]Assigned, len(sets))
	for i, set := range sets {
		lists[i] = []Assigned{picked[i]}
		if !perSet[i].IsValid() {
			lists[i] = freeInOrder(set, i, observed[i], &picked[i], width)
		}
	}
	return product(lists, ObservedCandidates)
}

// perSetWidth is the number of addresses per range set whose combinations,
// all range sets together, stay within total.
func perSetWidth(total, sets int) int {
	if sets < 1 {
		return total // no combinations to bound (and no end to the search)
	}
	w := 1
	for {
		n := 1
		for range sets {
			n *= w + 1
		}
		if n > total {
			return w
		}
		w++
	}
}

// freeInOrder returns up to width free addresses of range set i in search
// order as observed, starting with first when given (found by pick, perhaps
// after narrowing reads the observations lack) and then only addresses
// after it.
func freeInOrder(set RangeSet, i int, observed []Observation, first *Assigned, width int) []Assigned {
	var out []Assigned
	n := 0
	if first != nil {
		out = append(out, *first)
		n = 1
	}
	for ; len(out) < width; n++ {
		choice := set.Choose(observed, n)
		// Choose returns the last free address it met when the
		// observations end before the n-th.
		if !choice.Found || (len(out) > 0 && choice.Addr == out[len(out)-1].Address.Addr()) {
			break
		}
		if first != nil && n == 1 && choice.Addr == first.Address.Addr() {
			break // the observations know nothing after first
		}
		out = append(out, set.assigned(i, choice.Range, choice.Addr))
	}
	return out
}

// assigned is address a of range r of this set, range set i, as a result
// reports it.
func (s RangeSet) assigned(i, r int, a netip.Addr) Assigned {
	return Assigned{Address: netip.PrefixFrom(a, s[r].Subnet.Bits()), Gateway: s[r].Gateway, RangeSet: i}
}

// product returns the combinations of one address per range set in
// lexicographic order, the first set's choice the most significant, at
// most limit of them. In that order the first combination whose addresses
// are all free pairs each set's first free address, as host-local's
// independent searches would.
func product(lists [][]Assigned, limit int) [][]Assigned {
	out := [][]Assigned{nil}
	for _, l := range lists {
		if len(l) == 0 {
			return nil
		}
		var next [][]Assigned
		for _, prefix := range out {
			for _, a := range l {
				next = append(next, append(append([]Assigned(nil), prefix...), a))
			}
		}
		out = next
	}
	return out[:min(len(out), limit)]
}
