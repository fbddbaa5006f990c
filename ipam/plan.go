package ipam

import (
	"context"
	"net/netip"
	"slices"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/store"
)

// Plan is a dry run of consecutive ADDs: what they would return, computed
// from one read of etcd and never written back, so that an operator can see
// what the plugin will do before any container asks.
//
// A plan is exact for a quiet network allocated from one node: it predicts
// the ADDs that node makes next, with no other ADD or DEL in between. It
// is not a reservation. When other nodes allocate at the same moment, an
// ADD may start its search at a spread-out spot instead (see searchStarts),
// and then the addresses differ, though never the rule that each is free.
type Plan struct {
	// Adds are the ADDs that would succeed, in order.
	Adds []PlannedAdd
	// Failure is set when the ADD after the last of Adds would fail
	// because a range set has no free address; every later ADD would fail
	// the same way until an address is released.
	Failure *PlanFailure
	// Usage is how full each range is before the planned ADDs.
	Usage []Usage
	// Racing lists the range sets whose round-robin position another
	// node moved less than BurstWindow ago: an ADD from this node right
	// now would start its search at a spread-out spot instead of where
	// the plan assumes. The plan holds once the network is quiet.
	Racing []int
}

// PlannedAdd is one ADD of a plan: one address per range set, in result
// order, exactly as Session.Add would return them.
type PlannedAdd struct {
	IPs []store.AttachedAddr
}

// PlanFailure says which ADD of a plan fails and where: Add is its index
// (zero-based, equal to len(Plan.Adds)) and RangeSet the set that ran out.
type PlanFailure struct {
	Add      int
	RangeSet int
}

// Plan predicts the next n ADDs from the network's current state in etcd.
// It reads every allocated address of the range sets (keys only) in one
// transaction and writes nothing.
func (s *Session) Plan(ctx context.Context, n int) (Plan, error) {
	st, err := retried(ctx, s, func(ctx context.Context) (store.PlanState, error) {
		return s.net.ReadPlanState(ctx, wholeRanges(s.sets))
	})
	if err != nil {
		return Plan{}, err
	}
	plan := Simulate(s.core, s.sets, st, n)
	now := s.now()
	for i, p := range st.Positions {
		if s.racing(p, now) {
			plan.Racing = append(plan.Racing, i)
		}
	}
	return plan, nil
}

// wholeRanges lists every range of every set as one segment.
func wholeRanges(sets []core.RangeSet) [][]core.Segment {
	out := make([][]core.Segment, len(sets))
	for i, set := range sets {
		for j, r := range set {
			out[i] = append(out[i], core.Segment{Range: j, From: r.RangeStart, To: r.RangeEnd})
		}
	}
	return out
}

// Simulate runs n ADDs in memory against state, with the same core calls
// an ADD makes (SearchOrder from the round-robin position, then Choose the
// first free address), but with every taken address known up front. An
// empty state (no positions, nothing taken) plans for a new network.
func Simulate(host hosts.Core, sets []core.RangeSet, state store.PlanState, n int) Plan {
	last := make([]netip.Addr, len(sets))
	taken := make([][]netip.Addr, len(sets))
	for i := range sets {
		if i < len(state.Positions) {
			last[i] = state.Positions[i].Addr
		}
		if i < len(state.Taken) {
			taken[i] = slices.Clone(state.Taken[i])
		}
		slices.SortFunc(taken[i], netip.Addr.Compare)
		taken[i] = slices.Compact(taken[i])
	}
	plan := Plan{Usage: usageOf(host, sets, taken)}
	for k := 0; k < n; k++ {
		add := PlannedAdd{IPs: make([]store.AttachedAddr, 0, len(sets))}
		for i, set := range sets {
			choice := host.Choose(set, observeAll(taken[i], host.SearchOrder(set, last[i])), 0)
			if !choice.Found {
				plan.Failure = &PlanFailure{Add: k, RangeSet: i}
				return plan
			}
			r := set[choice.Range]
			add.IPs = append(add.IPs, store.AttachedAddr{
				Address:  netip.PrefixFrom(choice.Addr, r.Subnet.Bits()),
				Gateway:  r.Gateway,
				RangeSet: i,
			})
		}
		for i, ip := range add.IPs {
			a := ip.Address.Addr()
			at, _ := slices.BinarySearchFunc(taken[i], a, netip.Addr.Compare)
			taken[i] = slices.Insert(taken[i], at, a)
			last[i] = a
		}
		plan.Adds = append(plan.Adds, add)
	}
	return plan
}

// observeAll is what a store would report for segs if it read every key:
// each segment's taken addresses, complete.
func observeAll(taken []netip.Addr, segs []core.Segment) []core.Observation {
	out := make([]core.Observation, len(segs))
	for i, seg := range segs {
		out[i] = core.Observation{Segment: seg, Taken: within(taken, seg.From, seg.To), Complete: true}
	}
	return out
}

// within returns the part of the sorted slice taken that lies in [from, to].
func within(taken []netip.Addr, from, to netip.Addr) []netip.Addr {
	lo, _ := slices.BinarySearchFunc(taken, from, netip.Addr.Compare)
	hi, found := slices.BinarySearchFunc(taken, to, netip.Addr.Compare)
	if found {
		hi++
	}
	if hi < lo {
		return nil
	}
	return taken[lo:hi]
}

// usageOf counts the taken addresses of each range, as Session.Usage does
// with etcd's counts.
func usageOf(host hosts.Core, sets []core.RangeSet, taken [][]netip.Addr) []Usage {
	var out []Usage
	for i, set := range sets {
		caps := host.RangeCapacities(set)
		excl := host.RangeExclusions(set)
		for j, r := range set {
			u := Usage{RangeSet: i, Range: j, Capacity: caps[j], Excluded: excl[j]}
			for _, seg := range host.WithoutExcluded(set, []core.Segment{{Range: j, From: r.RangeStart, To: r.RangeEnd}}) {
				u.Used += uint64(len(within(taken[i], seg.From, seg.To)))
			}
			out = append(out, u)
		}
	}
	return out
}
