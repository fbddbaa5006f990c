package ipam

import (
	"context"
	"fmt"

	"github.com/etcd-cni/etcd-ipam/core"
)

// Usage is how full one range is. Capacity is what the range can hand
// out (its gateway and excluded addresses left out), Excluded how many
// addresses its "exclude" list keeps back, and Used how many of the
// Capacity addresses are allocated: an address allocated before it was
// excluded stays allocated until released but counts in neither.
type Usage struct {
	RangeSet, Range int
	Capacity        uint64
	Excluded        uint64
	// Used counts the allocated addresses, held and cooling ones
	// included.
	Used uint64
	// Held counts the addresses held for a pod or reserved (no ADD but
	// the one they are held for takes them).
	Held uint64
	// Cooling counts the addresses cooling down after their release
	// (ipam "cooldown"): taken, and not held for anyone.
	Cooling uint64
}

// Usage counts the allocated, the held and the cooling addresses of every
// range in one round trip.
func (s *Session) Usage(ctx context.Context) ([]Usage, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var segs []core.Segment
	var owner []int // the usage each segment counts for
	var usage []Usage
	for _, c := range s.core.Capacities(s.sets) {
		// Counted without the excluded addresses, so that Used never
		// exceeds Capacity (a range without exclusions is one count).
		for _, seg := range c.Count {
			segs = append(segs, seg)
			owner = append(owner, len(usage))
		}
		usage = append(usage, Usage{RangeSet: c.RangeSet, Range: c.Range, Capacity: c.Capacity, Excluded: c.Excluded})
	}
	counts, held, cooling, err := s.net.CountUsage(ctx, segs)
	if err != nil {
		return nil, err
	}
	for k, n := range counts {
		usage[owner[k]].Used += uint64(n)
		usage[owner[k]].Held += uint64(held[k])
		usage[owner[k]].Cooling += uint64(cooling[k])
	}
	return usage, nil
}

// Status reports whether the network can serve an ADD: etcd answers and
// every range set has a free address (an ADD needs one from each).
func (s *Session) Status(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.net.Ping(ctx); err != nil {
		return &UnavailableError{Msg: fmt.Sprintf("network %q is unavailable: %s", s.name, withConfigAdvice(err)),
			Hint: "check that etcd is running and reachable at etcdURL", Err: err}
	}
	usage, err := s.Usage(ctx)
	if err != nil {
		return &UnavailableError{Msg: fmt.Sprintf("network %q is unavailable: %s", s.name, withConfigAdvice(err)), Err: err}
	}
	s.sight(ctx, bySTATUS)
	hasFree := make([]bool, len(s.sets))
	cooling := make([]uint64, len(s.sets))
	for _, u := range usage {
		if u.Used < u.Capacity {
			hasFree[u.RangeSet] = true
		}
		cooling[u.RangeSet] += u.Cooling
	}
	for i := range s.sets {
		if !hasFree[i] && cooling[i] > 0 {
			return &UnavailableError{
				Msg: fmt.Sprintf("network %q cannot serve ADD now: range set %d (%s) has no free address; %d released %s cooling down (ipam \"cooldown\")",
					s.name, i, s.sets[i], cooling[i], plural(int(cooling[i]), "address is", "addresses are")),
				Hint: "wait for the cooldown to pass, lower ipam \"cooldown\", or release unused addresses",
			}
		}
		if !hasFree[i] {
			return &UnavailableError{
				Msg:  fmt.Sprintf("network %q cannot serve ADD: range set %d (%s) has no free address", s.name, i, s.sets[i]),
				Hint: "release unused addresses or add a range to the range set",
			}
		}
	}
	return nil
}
