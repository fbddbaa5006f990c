package ipam

import (
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// Widths of the candidate chains an ADD hands to one reserving transaction
// (store.ReserveFirst): guessedCandidates addresses in search order before
// anything is read, observedCandidates free ones after a read. A wider
// chain absorbs more allocators racing from the same position in one
// round trip, at the cost of a larger transaction.
const (
	guessedCandidates  = 8
	observedCandidates = 8
)

// guess returns candidates read from nothing: the first addresses of each
// search, as if free.
func (s *Session) guess(searches [][]core.Segment) [][]store.AttachedAddr {
	width := perSetWidth(guessedCandidates, len(s.sets))
	lists := make([][]store.AttachedAddr, len(s.sets))
	for i, segs := range searches {
		var observed []core.Observation
		for _, seg := range segs {
			observed = append(observed, core.Observation{Segment: seg, Complete: true})
		}
		lists[i] = s.freeInOrder(i, observed, nil, width)
	}
	return product(lists, guessedCandidates)
}

// candidates returns picked followed by alternatives: the next free
// addresses of each search as observed, for an allocator that loses picked
// to a race. A requested address has no alternative.
func (s *Session) candidates(observed [][]core.Observation, picked []store.AttachedAddr, requested []netip.Addr) [][]store.AttachedAddr {
	width := perSetWidth(observedCandidates, len(s.sets))
	lists := make([][]store.AttachedAddr, len(s.sets))
	for i := range s.sets {
		lists[i] = []store.AttachedAddr{picked[i]}
		if !requested[i].IsValid() {
			lists[i] = s.freeInOrder(i, observed[i], &picked[i], width)
		}
	}
	return product(lists, observedCandidates)
}

// perSetWidth is the number of addresses per range set whose combinations,
// all range sets together, stay within total.
func perSetWidth(total, sets int) int {
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
func (s *Session) freeInOrder(i int, observed []core.Observation, first *store.AttachedAddr, width int) []store.AttachedAddr {
	set := s.sets[i]
	var out []store.AttachedAddr
	n := 0
	if first != nil {
		out = append(out, *first)
		n = 1
	}
	for ; len(out) < width; n++ {
		choice := s.core.Choose(set, observed, n)
		// Choose returns the last free address it met when the
		// observations end before the n-th.
		if !choice.Found || (len(out) > 0 && choice.Addr == out[len(out)-1].Address.Addr()) {
			break
		}
		if first != nil && n == 1 && choice.Addr == first.Address.Addr() {
			break // the observations know nothing after first
		}
		r := set[choice.Range]
		out = append(out, store.AttachedAddr{Address: netip.PrefixFrom(choice.Addr, r.Subnet.Bits()), Gateway: r.Gateway, RangeSet: i})
	}
	return out
}

// product returns the combinations of one address per range set in
// lexicographic order, the first set's choice the most significant, at
// most limit of them. In that order the first combination whose addresses
// are all free pairs each set's first free address, as host-local's
// independent searches would.
func product(lists [][]store.AttachedAddr, limit int) [][]store.AttachedAddr {
	out := [][]store.AttachedAddr{nil}
	for _, l := range lists {
		if len(l) == 0 {
			return nil
		}
		var next [][]store.AttachedAddr
		for _, prefix := range out {
			for _, a := range l {
				next = append(next, append(append([]store.AttachedAddr(nil), prefix...), a))
			}
		}
		out = next
	}
	return out[:min(len(out), limit)]
}
