package ipam

import (
	"context"

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
// ADD may start its search at a spread-out spot instead (core.Racing),
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
	now := unixNanos(s.now())
	for i, p := range positionsOf(st.Positions) {
		if core.Racing(p, s.node, now) {
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

// Simulate runs n ADDs in memory against state with the very steps an
// ADD takes (hosts.Core's Step), answered from state instead of etcd
// (planSnapshot), so that a plan can never predict differently from the
// ADDs of a quiet network. An empty state (no positions, nothing taken)
// plans for a new network.
func Simulate(host hosts.Core, sets []core.RangeSet, state store.PlanState, n int) Plan {
	snap := newPlanSnapshot(sets, state)
	plan := Plan{Usage: snap.usage(host)}
	for k := 0; k < n; k++ {
		ips, failure := snap.add(host, k)
		if failure != nil {
			plan.Failure = failure
			return plan
		}
		plan.Adds = append(plan.Adds, PlannedAdd{IPs: ips})
	}
	return plan
}
