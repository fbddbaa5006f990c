package wasm

import (
	"math"
	"net/netip"
	"slices"

	"github.com/etcd-cni/etcd-ipam/core"
)

// The allocations FuzzHostsAgree drives: requests and a store that
// answers the core's actions from fuzz bytes, truthfully or not (a count
// that says full, a race lost to an address that looked free).

// request draws an allocation's request: sometimes requested addresses,
// held ones, positions moved by this node or another, recently or not.
func (g *gen) request(sets []core.RangeSet) core.Request {
	req := core.Request{Sets: sets, Node: "node-a", ContainerID: string(rune('a' + g.intn(26))), Now: int64(g.uint64() >> 2)}
	for range g.intn(3) {
		if g.intn(2) == 0 {
			req.Requested = append(req.Requested, g.addrNear(sets[g.intn(len(sets))]))
		}
	}
	for range g.intn(3) {
		i := g.intn(len(sets)+1) - 1 // sometimes a range set that does not exist
		set := sets[max(i, 0)]
		req.Held = append(req.Held, core.Held{Addr: g.addrNear(set), RangeSet: i})
	}
	req.Positions = make([]core.Position, g.intn(len(sets)+1))
	for i := range req.Positions {
		p := &req.Positions[i]
		if g.intn(3) > 0 {
			p.Addr = g.addrNear(sets[i])
		}
		switch g.intn(4) {
		case 1:
			p.Node = req.Node
		case 2, 3:
			p.Node = "node-b"
		}
		p.At = req.Now - int64(g.intn(4))*1e9 + int64(g.intn(3)-1)
	}
	return req
}

// fakeStore is a network's taken addresses, ascending.
type fakeStore struct{ taken []netip.Addr }

func (g *gen) store(sets []core.RangeSet) *fakeStore {
	st := &fakeStore{}
	for _, set := range sets {
		for _, r := range set {
			if g.intn(2) == 0 {
				st.taken = append(st.taken, g.taken(core.Segment{From: r.RangeStart, To: r.RangeEnd})...)
			}
		}
	}
	slices.SortFunc(st.taken, netip.Addr.Compare)
	st.taken = slices.Compact(st.taken)
	return st
}

// answer answers act from the store, bent by the fuzz bytes.
func (st *fakeStore) answer(g *gen, act core.Action) core.Answer {
	switch {
	case act.Read != nil:
		taken := make([]bool, len(act.Read.Requested))
		for i, a := range act.Read.Requested {
			taken[i] = st.has(a) || g.intn(4) == 0
		}
		return core.Answer{Observed: st.observe(g, act.Read.Searches), Taken: taken}
	case act.Count != nil:
		counts := make([]int64, len(act.Count.Segments))
		for i, seg := range act.Count.Segments {
			counts[i] = int64(len(st.within(seg)))
			if g.intn(3) == 0 { // full, or taken meanwhile, whatever was read
				counts[i] = math.MaxInt64
			}
		}
		return core.Answer{Counts: counts}
	case act.Offer != nil:
		o := act.Offer
		switch g.intn(4) {
		case 0:
			return core.Answer{Committed: true, Won: g.intn(len(o.Candidates))}
		case 1:
			for i, c := range o.Candidates {
				if !slices.ContainsFunc(c, func(a core.Assigned) bool { return st.has(a.Address.Addr()) }) {
					return core.Answer{Committed: true, Won: i}
				}
			}
		}
		ans := core.Answer{Retake: g.intn(8) == 0}
		for k, a := range o.Candidates[0] {
			if st.has(a.Address.Addr()) || k == 0 || slices.ContainsFunc(o.Held, func(h core.Held) bool { return h.Addr == a.Address.Addr() }) {
				ans.Lost = append(ans.Lost, a.Address.Addr())
			}
		}
		if g.intn(3) > 0 {
			ans.Observed = st.observe(g, o.Searches)
		}
		if g.intn(2) == 0 { // the positions the write read: another node's, fresh or not
			ans.Positions = make([]core.Position, g.intn(len(o.Searches)+2))
			for i := range ans.Positions {
				p := &ans.Positions[i]
				p.Node = []string{"", "node-a", "node-b"}[g.intn(3)]
				p.At = int64(g.uint64()>>2) - int64(g.intn(3))*1e9
				if i < len(o.Searches) && len(o.Searches[i]) > 0 {
					p.Addr = o.Searches[i][0].From
				}
			}
		}
		return ans
	}
	return core.Answer{}
}

// observe reads searches as the store does (core.ReadLimit per segment),
// sometimes stopping early as if the limit had been reached.
func (st *fakeStore) observe(g *gen, searches [][]core.Segment) [][]core.Observation {
	out := make([][]core.Observation, len(searches))
	for i, segs := range searches {
		out[i] = make([]core.Observation, len(segs))
		for j, seg := range segs {
			all := st.within(seg)
			limit := core.ReadLimit(j)
			if g.intn(4) == 0 {
				limit = min(limit, g.intn(3))
			}
			out[i][j] = core.Observation{Segment: seg, Taken: slices.Clone(all[:min(len(all), limit)]), Complete: len(all) < limit}
		}
	}
	return out
}

func (st *fakeStore) has(a netip.Addr) bool {
	_, found := slices.BinarySearchFunc(st.taken, a, netip.Addr.Compare)
	return found
}

func (st *fakeStore) within(seg core.Segment) []netip.Addr {
	lo, _ := slices.BinarySearchFunc(st.taken, seg.From, netip.Addr.Compare)
	hi, found := slices.BinarySearchFunc(st.taken, seg.To, netip.Addr.Compare)
	if found {
		hi++
	}
	if hi < lo {
		return nil
	}
	return st.taken[lo:hi]
}
