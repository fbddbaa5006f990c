package core

import (
	"net/netip"
	"strconv"
	"strings"
)

// RangeSet is a pool made of disjoint ranges of one address family. An ADD
// takes exactly one address from every range set of a network.
type RangeSet []Range

// ConfigError says which range set and range of a configuration is wrong
// and why. RangeSet and Range are zero-based; Range is -1 when the problem
// concerns the range set as a whole, RangeSet is -1 when it concerns the
// list of range sets.
type ConfigError struct {
	RangeSet int
	Range    int
	Reason   string
}

func (e *ConfigError) Error() string {
	switch {
	case e.RangeSet < 0:
		return e.Reason
	case e.Range < 0:
		return "range set " + strconv.Itoa(e.RangeSet) + ": " + e.Reason
	default:
		return "range set " + strconv.Itoa(e.RangeSet) + ", range " + strconv.Itoa(e.Range) + ": " + e.Reason
	}
}

// CanonicalizeRangeSets validates every range set and fills in defaults, as
// host-local does when it loads its configuration: each range is
// canonicalised, a set must be non-empty and of one family, the ranges of a
// set must not overlap, and no two sets may overlap. The first problem found
// is returned; ValidateRangeSets reports them all.
func CanonicalizeRangeSets(specs [][]RangeSpec) ([]RangeSet, error) {
	sets, problems := canonicalize(specs, 1)
	if len(problems) > 0 {
		return nil, problems[0]
	}
	return sets, nil
}

// ValidateRangeSets reports every problem in specs, not only the first, so
// that an operator can fix a configuration in one pass.
func ValidateRangeSets(specs [][]RangeSpec) []*ConfigError {
	_, problems := canonicalize(specs, -1)
	return problems
}

// canonicalize collects up to limit problems (all when limit < 0).
func canonicalize(specs [][]RangeSpec, limit int) ([]RangeSet, []*ConfigError) {
	var problems []*ConfigError
	full := func() bool { return limit >= 0 && len(problems) >= limit }
	add := func(set, rng int, reason string) {
		problems = append(problems, &ConfigError{RangeSet: set, Range: rng, Reason: reason})
	}
	if len(specs) == 0 {
		add(-1, -1, `no IP ranges specified; add "ranges": [[{"subnet": "203.0.113.0/24"}]] to the ipam configuration`)
		return nil, problems
	}
	sets := make([]RangeSet, len(specs))
	valid := make([]bool, len(specs))
	for i, specSet := range specs {
		if len(specSet) == 0 {
			add(i, -1, "empty range set; give at least one range with a subnet")
			if full() {
				return nil, problems
			}
			continue
		}
		set := make(RangeSet, 0, len(specSet))
		ok := true
		for j, spec := range specSet {
			r, err := CanonicalizeRange(spec)
			if err != nil {
				add(i, j, err.Error())
				if full() {
					return nil, problems
				}
				ok = false
				continue
			}
			if len(set) > 0 && set[0].Family() != r.Family() {
				add(i, j, "mixed address families: subnet "+r.Subnet.String()+" is IPv"+strconv.Itoa(r.Family())+
					" but the set's first range is IPv"+strconv.Itoa(set[0].Family())+"; put IPv4 and IPv6 ranges in separate range sets")
				if full() {
					return nil, problems
				}
				ok = false
				continue
			}
			set = append(set, r)
		}
		for a := 0; ok && a < len(set); a++ {
			for b := a + 1; b < len(set); b++ {
				if set[a].Overlaps(set[b]) {
					add(i, b, "subnets "+set[a].String()+" and "+set[b].String()+" overlap; make the ranges of a set disjoint")
					if full() {
						return nil, problems
					}
					ok = false
				}
			}
		}
		sets[i], valid[i] = set, ok
	}
	for a := range sets {
		for b := a + 1; b < len(sets); b++ {
			if valid[a] && valid[b] && sets[a].Overlaps(sets[b]) {
				add(-1, -1, "range set "+strconv.Itoa(a)+" overlaps with range set "+strconv.Itoa(b)+"; an address can belong to one range set only")
				if full() {
					return nil, problems
				}
			}
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return sets, nil
}

// RangeFor returns the index of the range that contains a.
func (s RangeSet) RangeFor(a netip.Addr) (int, bool) {
	for i, r := range s {
		if r.Contains(a) {
			return i, true
		}
	}
	return -1, false
}

// Contains reports whether a belongs to one of the set's ranges.
func (s RangeSet) Contains(a netip.Addr) bool {
	_, ok := s.RangeFor(a)
	return ok
}

// Overlaps reports whether any range of s overlaps any range of o.
func (s RangeSet) Overlaps(o RangeSet) bool {
	for _, a := range s {
		for _, b := range o {
			if a.Overlaps(b) {
				return true
			}
		}
	}
	return false
}

// Capacity is the number of addresses the set can hand out, saturating at
// the largest uint64.
func (s RangeSet) Capacity() uint64 {
	var total uint64
	for _, r := range s {
		c := r.Capacity()
		if total+c < total {
			return ^uint64(0)
		}
		total += c
	}
	return total
}

// Capacities returns the Capacity of each of the set's ranges, in order:
// the figures a pool report and a fill plan show per range, computed here
// once so that both hosts give them alike.
func (s RangeSet) Capacities() []uint64 {
	out := make([]uint64, len(s))
	for i, r := range s {
		out[i] = r.Capacity()
	}
	return out
}

// Family returns 4 or 6 (a canonical set has one family).
func (s RangeSet) Family() int { return s[0].Family() }

// String lists the set's ranges as host-local does: start-end,start-end.
func (s RangeSet) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}
