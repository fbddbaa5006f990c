package core

// RangeCapacity is what usage reports need of one range: how many
// addresses it can hand out (its gateway and excluded addresses left out,
// saturating at the largest uint64), how many its "exclude" list keeps
// back besides the gateway, and the exclusion-free pieces whose taken
// addresses count toward Capacity (an address allocated before it was
// excluded stays a key, and must not count).
type RangeCapacity struct {
	RangeSet, Range int
	Capacity        uint64
	Excluded        uint64
	Count           []Segment
}

// Capacities returns every range's capacity, the range sets' ranges in
// order, so that `usage`, `plan` and the exporter ask once for all of it.
func Capacities(sets []RangeSet) []RangeCapacity {
	var out []RangeCapacity
	for i, set := range sets {
		caps, excl := set.Capacities(), set.Exclusions()
		for j, r := range set {
			out = append(out, RangeCapacity{
				RangeSet: i, Range: j, Capacity: caps[j], Excluded: excl[j],
				Count: set.WithoutExcluded([]Segment{{Range: j, From: r.RangeStart, To: r.RangeEnd}}),
			})
		}
	}
	return out
}
