package core

import (
	"errors"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// A range's "exclude" list names addresses and CIDRs of its subnet that are
// never handed out, like its gateway: Choose skips them, capacities leave
// them out and a request for one fails. Entries may reach beyond the
// range's bounds (a CIDR of the whole subnet's first block, say); only
// their part inside RangeStart..RangeEnd matters, so canonicalising clips
// them to it, sorts them and merges those that touch.

// Span is a run of consecutive addresses, From to To inclusive, of one
// family.
type Span struct {
	From netip.Addr
	To   netip.Addr
}

// parseExclusions turns a range's "exclude" entries into canonical spans
// within r's bounds, or an error naming the first bad entry.
func parseExclusions(entries []string, r Range) ([]Span, error) {
	var spans []Span
	for _, e := range entries {
		s, err := parseExclusion(e, r.Subnet)
		if err != nil {
			return nil, err
		}
		// Clip to the range: outside it nothing is handed out anyway.
		if s.To.Less(r.RangeStart) || r.RangeEnd.Less(s.From) {
			continue
		}
		if s.From.Less(r.RangeStart) {
			s.From = r.RangeStart
		}
		if r.RangeEnd.Less(s.To) {
			s.To = r.RangeEnd
		}
		spans = append(spans, s)
	}
	if len(spans) == 0 {
		return nil, nil
	}
	slices.SortFunc(spans, func(a, b Span) int { return a.From.Compare(b.From) })
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		next := last.To.Next()
		if !next.IsValid() || !next.Less(s.From) { // overlapping or adjacent
			if last.To.Less(s.To) {
				last.To = s.To
			}
			continue
		}
		merged = append(merged, s)
	}
	return slices.Clip(merged), nil
}

// parseExclusion parses one "exclude" entry: an address or a CIDR that
// must lie wholly inside subnet.
func parseExclusion(entry string, subnet netip.Prefix) (Span, error) {
	var s Span
	var p netip.Prefix
	if strings.Contains(entry, "/") {
		var err error
		p, err = netip.ParsePrefix(strings.TrimSpace(entry))
		if err != nil || p.Addr().Zone() != "" {
			return Span{}, errors.New("exclude entry " + strconv.Quote(entry) + ` is not an address or CIDR; write an address such as "203.0.113.30" or a CIDR such as "203.0.113.16/28"`)
		}
		if m := p.Masked(); m != p {
			return Span{}, errors.New("exclude entry " + strconv.Quote(entry) + " has host bits set; for a /" + strconv.Itoa(p.Bits()) +
				" the network address is " + m.Addr().String() + ", so write " + strconv.Quote(m.String()))
		}
		s = Span{From: p.Addr(), To: lastAddr(p)}
	} else {
		a, err := ParseAddr(entry)
		if err != nil {
			return Span{}, errors.New("exclude entry " + strconv.Quote(entry) + ` is not an address or CIDR; write an address such as "203.0.113.30" or a CIDR such as "203.0.113.16/28"`)
		}
		p = netip.PrefixFrom(a, a.BitLen())
		s = Span{From: a, To: a}
	}
	if p.Addr().BitLen() != subnet.Addr().BitLen() || p.Bits() < subnet.Bits() || !subnet.Contains(p.Addr()) {
		return Span{}, errors.New("exclude entry " + strconv.Quote(entry) + " is not inside subnet " + subnet.String() +
			"; list only addresses and CIDRs of this range's subnet, or move the entry to the range whose subnet holds it")
	}
	return s, nil
}

// excluded returns the span of the range's exclusions that holds a.
func (r Range) excluded(a netip.Addr) (Span, bool) {
	i, found := slices.BinarySearchFunc(r.Exclude, a, func(s Span, a netip.Addr) int {
		switch {
		case s.To.Less(a):
			return -1
		case a.Less(s.From):
			return 1
		}
		return 0
	})
	if !found {
		return Span{}, false
	}
	return r.Exclude[i], true
}

// IsExcluded reports whether a is one of the range's excluded addresses.
func (r Range) IsExcluded(a netip.Addr) bool {
	_, ok := r.excluded(a.Unmap())
	return ok
}

// unavailable counts the addresses of from..to (inclusive, from <= to, in
// the range) that are never handed out: the gateway and the exclusions.
func (r Range) unavailable(from, to netip.Addr) u128 {
	var n u128
	for _, s := range r.Exclude {
		lo, hi := s.From, s.To
		if lo.Less(from) {
			lo = from
		}
		if to.Less(hi) {
			hi = to
		}
		if hi.Less(lo) {
			continue
		}
		n = n.add(span128(lo, hi))
	}
	gw := r.Gateway
	if gw.BitLen() == from.BitLen() && !gw.Less(from) && !to.Less(gw) && !r.IsExcluded(gw) {
		n = n.add(u128{lo: 1})
	}
	return n
}

// handable counts the addresses of from..to that can be handed out,
// saturating at the largest uint64.
func (r Range) handable(from, to netip.Addr) uint64 {
	return span128(from, to).sub(r.unavailable(from, to)).saturate()
}

// ExcludedCount is the number of addresses of the range that its
// exclusions keep from being handed out (the gateway, never handed out
// anyway, is not counted), saturating at the largest uint64. Capacity plus
// ExcludedCount is the range's capacity without its "exclude" list.
func (r Range) ExcludedCount() uint64 {
	var n u128
	for _, s := range r.Exclude {
		n = n.add(span128(s.From, s.To))
	}
	if r.IsExcluded(r.Gateway) {
		n = n.sub(u128{lo: 1})
	}
	return n.saturate()
}

// Exclusions returns the ExcludedCount of each of the set's ranges, in
// order.
func (s RangeSet) Exclusions() []uint64 {
	out := make([]uint64, len(s))
	for i, r := range s {
		out[i] = r.ExcludedCount()
	}
	return out
}

// WithoutExcluded returns segs, in order, with the excluded addresses cut
// out: a segment is split around its range's exclusions, and dropped when
// wholly excluded. A count of taken addresses over the result therefore
// never includes an excluded address that was allocated before it was
// excluded, and compares exactly with SegmentCapacity. Without exclusions
// it returns segs unchanged.
func (s RangeSet) WithoutExcluded(segs []Segment) []Segment {
	var out []Segment
	for _, seg := range segs {
		if seg.Range < 0 || seg.Range >= len(s) || len(s[seg.Range].Exclude) == 0 || seg.To.Less(seg.From) {
			out = append(out, seg)
			continue
		}
		cur := seg.From
		done := false
		for _, x := range s[seg.Range].Exclude {
			if x.To.Less(cur) {
				continue
			}
			if seg.To.Less(x.From) {
				break
			}
			if cur.Less(x.From) {
				out = append(out, Segment{Range: seg.Range, From: cur, To: x.From.Prev()})
			}
			if !x.To.Less(seg.To) {
				done = true
				break
			}
			cur = x.To.Next()
		}
		if !done {
			out = append(out, Segment{Range: seg.Range, From: cur, To: seg.To})
		}
	}
	return out
}

// spanPrefixes writes a span as the fewest CIDRs that cover it exactly
// (a single address as itself), for Spec.
func spanPrefixes(s Span) []string {
	var out []string
	for cur := s.From; ; {
		p := netip.PrefixFrom(cur, cur.BitLen())
		for b := 0; b <= cur.BitLen(); b++ {
			q := netip.PrefixFrom(cur, b)
			if q.Masked().Addr() == cur && !s.To.Less(lastAddr(q)) {
				p = q
				break
			}
		}
		if p.Bits() == cur.BitLen() {
			out = append(out, cur.String())
		} else {
			out = append(out, p.String())
		}
		end := lastAddr(p)
		if end == s.To {
			return out
		}
		cur = end.Next()
	}
}

// u128 is an unsigned 128-bit count, so that address counts of IPv6
// ranges can be added and subtracted exactly before they saturate.
type u128 struct{ hi, lo uint64 }

// span128 is the number of addresses from a to b inclusive (a <= b); the
// one count it cannot hold, all of IPv6, saturates.
func span128(a, b netip.Addr) u128 {
	d := asU128(b).sub(asU128(a))
	if d.hi == ^uint64(0) && d.lo == ^uint64(0) {
		return d
	}
	return d.add(u128{lo: 1})
}

func asU128(a netip.Addr) u128 {
	b := a.As16()
	var v u128
	for i := 0; i < 8; i++ {
		v.hi = v.hi<<8 | uint64(b[i])
		v.lo = v.lo<<8 | uint64(b[8+i])
	}
	return v
}

func (x u128) add(y u128) u128 {
	lo, carry := bits.Add64(x.lo, y.lo, 0)
	hi, _ := bits.Add64(x.hi, y.hi, carry)
	return u128{hi, lo}
}

// sub returns x-y, or zero when y > x.
func (x u128) sub(y u128) u128 {
	lo, borrow := bits.Sub64(x.lo, y.lo, 0)
	hi, borrow := bits.Sub64(x.hi, y.hi, borrow)
	if borrow != 0 {
		return u128{}
	}
	return u128{hi, lo}
}

func (x u128) saturate() uint64 {
	if x.hi != 0 {
		return ^uint64(0)
	}
	return x.lo
}
