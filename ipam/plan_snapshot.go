package ipam

import (
	"net/netip"
	"slices"
	"strconv"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/store"
)

// planSnapshot is a network held in memory for a dry run (Simulate): it
// answers the core's actions as etcd would answer them from the same
// state, read limits included, and "commits" an offer into itself, so
// that consecutive planned ADDs see each other. It never writes to etcd.
type planSnapshot struct {
	sets      []core.RangeSet
	positions []netip.Addr
	// taken is every taken address, ascending and without duplicates: the
	// address keys as etcd orders them, whatever range set they are of.
	taken []netip.Addr
}

func newPlanSnapshot(sets []core.RangeSet, state store.PlanState) *planSnapshot {
	p := &planSnapshot{sets: sets, positions: make([]netip.Addr, len(sets))}
	for i := range sets {
		if i < len(state.Positions) {
			p.positions[i] = state.Positions[i].Addr
		}
	}
	for _, taken := range state.Taken {
		p.taken = append(p.taken, taken...)
	}
	slices.SortFunc(p.taken, netip.Addr.Compare)
	p.taken = slices.Compact(p.taken)
	return p
}

// add runs the k-th planned ADD to its end. A planned ADD has no node: it
// sees no other node's position, as on a quiet network.
func (p *planSnapshot) add(host hosts.Core, k int) ([]store.AttachedAddr, *PlanFailure) {
	req := core.Request{Sets: p.sets, Positions: make([]core.Position, len(p.sets)), ContainerID: "plan-" + strconv.Itoa(k)}
	for i, a := range p.positions {
		req.Positions[i].Addr = a
	}
	var answers []core.Answer
	for {
		act := host.Step(req, answers)
		var ans core.Answer
		switch {
		case act.Read != nil:
			ans = core.Answer{Observed: p.observe(act.Read.Searches), Taken: p.takenEach(act.Read.Requested)}
		case act.Count != nil:
			ans.Counts = make([]int64, len(act.Count.Segments))
			for i, seg := range act.Count.Segments {
				ans.Counts[i] = int64(len(p.within(seg)))
			}
		case act.Advance != nil:
			for _, a := range act.Advance.Positions {
				p.positions[a.RangeSet] = a.Address.Addr()
			}
		case act.Offer != nil:
			ans = p.offer(act.Offer)
		case act.Wait != nil:
			// A plan has no clock and no rival: a wait is answered at once.
		case act.Done != nil:
			return attachedAddrs([][]core.Assigned{act.Done.Addrs})[0], nil
		case act.Fail != nil:
			return nil, &PlanFailure{Add: k, RangeSet: act.Fail.RangeSet}
		default:
			return nil, &PlanFailure{Add: k, RangeSet: -1}
		}
		answers = append(answers, ans)
	}
}

// offer commits the first candidate whose addresses are all free, as
// store.ReserveFirst, or reports the first candidate's taken addresses and
// reads the searches.
func (p *planSnapshot) offer(o *core.Offer) core.Answer {
	for i, c := range o.Candidates {
		free := true
		for _, a := range c {
			// A held address is taken from its hold (a plan has none).
			addr := a.Address.Addr()
			free = free && (isHeldIn(o.Held, addr) || !p.isTaken(addr))
		}
		if free {
			for _, a := range c {
				addr := a.Address.Addr()
				at, _ := slices.BinarySearchFunc(p.taken, addr, netip.Addr.Compare)
				p.taken = slices.Insert(p.taken, at, addr)
				p.positions[a.RangeSet] = addr
			}
			return core.Answer{Committed: true, Won: i}
		}
	}
	var lost []netip.Addr
	for _, a := range o.Candidates[0] {
		if addr := a.Address.Addr(); p.isTaken(addr) || isHeldIn(o.Held, addr) {
			lost = append(lost, addr)
		}
	}
	return core.Answer{Lost: lost, Observed: p.observe(o.Searches)}
}

// observe reads searches as store.Network.Observe does: each segment's
// taken addresses up to core.ReadLimit, complete when fewer were there.
// The slices are copies, because the core replays them after commits.
func (p *planSnapshot) observe(searches [][]core.Segment) [][]core.Observation {
	out := make([][]core.Observation, len(searches))
	for i, segs := range searches {
		out[i] = make([]core.Observation, len(segs))
		for j, seg := range segs {
			all := p.within(seg)
			limit := core.ReadLimit(j)
			out[i][j] = core.Observation{Segment: seg, Taken: slices.Clone(all[:min(len(all), limit)]), Complete: len(all) < limit}
		}
	}
	return out
}

// takenEach reports whether each address is taken.
func (p *planSnapshot) takenEach(addrs []netip.Addr) []bool {
	out := make([]bool, len(addrs))
	for i, a := range addrs {
		out[i] = p.isTaken(a)
	}
	return out
}

func (p *planSnapshot) isTaken(a netip.Addr) bool {
	_, found := slices.BinarySearchFunc(p.taken, a, netip.Addr.Compare)
	return found
}

// within returns the taken addresses of seg.
func (p *planSnapshot) within(seg core.Segment) []netip.Addr {
	lo, _ := slices.BinarySearchFunc(p.taken, seg.From, netip.Addr.Compare)
	hi, found := slices.BinarySearchFunc(p.taken, seg.To, netip.Addr.Compare)
	if found {
		hi++
	}
	if hi < lo {
		return nil
	}
	return p.taken[lo:hi]
}

// usage counts the taken addresses of each range, as Session.Usage does
// with etcd's counts.
func (p *planSnapshot) usage(host hosts.Core) []Usage {
	var out []Usage
	for _, c := range host.Capacities(p.sets) {
		u := Usage{RangeSet: c.RangeSet, Range: c.Range, Capacity: c.Capacity, Excluded: c.Excluded}
		for _, seg := range c.Count {
			u.Used += uint64(len(p.within(seg)))
		}
		out = append(out, u)
	}
	return out
}

// isHeldIn reports whether a is one of held's addresses.
func isHeldIn(held []core.Held, a netip.Addr) bool {
	for _, h := range held {
		if h.Addr == a {
			return true
		}
	}
	return false
}
