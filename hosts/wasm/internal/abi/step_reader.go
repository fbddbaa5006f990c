package abi

import "github.com/etcd-cni/etcd-ipam/core"

// Readers of the step protocol's encodings (step_writer.go).

// Int64 reads a signed varint of 64 bits.
func (r *Reader) Int64() int64 {
	u := r.Uint()
	return int64(u>>1) ^ -int64(u&1)
}

// Request reads an allocation's request.
func (r *Reader) Request() core.Request {
	req := core.Request{Sets: r.RangeSets(), Requested: r.Addrs(), Held: r.Helds(), Node: r.String(), ContainerID: r.String()}
	req.Positions = r.Positions()
	req.Now = r.Int64()
	return req
}

// Positions reads round-robin positions.
func (r *Reader) Positions() []core.Position {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]core.Position, n)
	for i := range out {
		out[i] = core.Position{Addr: r.Addr(), Node: r.String(), At: r.Int64()}
	}
	return out
}

// Helds reads held addresses.
func (r *Reader) Helds() []core.Held {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]core.Held, n)
	for i := range out {
		out[i] = core.Held{Addr: r.Addr(), RangeSet: r.Int()}
	}
	return out
}

// Answers reads the answers of an allocation so far.
func (r *Reader) Answers() []core.Answer {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]core.Answer, n)
	for i := range out {
		a := &out[i]
		if m, ok := r.sliceLen(); ok {
			a.Observed = make([][]core.Observation, m)
			for j := range a.Observed {
				a.Observed[j] = r.Observations()
			}
		}
		if m, ok := r.sliceLen(); ok {
			a.Taken = make([]bool, m)
			for j := range a.Taken {
				a.Taken[j] = r.Bool()
			}
		}
		if m, ok := r.sliceLen(); ok {
			a.Counts = make([]int64, m)
			for j := range a.Counts {
				a.Counts[j] = r.Int64()
			}
		}
		a.Committed, a.Won, a.Lost, a.Retake = r.Bool(), r.Int(), r.Addrs(), r.Bool()
		a.Positions = r.Positions()
	}
	return out
}

// Action reads the action a step returned.
func (r *Reader) Action() core.Action {
	switch r.Uint() {
	case actionNone:
		return core.Action{}
	case actionRead:
		return core.Action{Read: &core.Read{Searches: r.SegmentLists(), Requested: r.Addrs()}}
	case actionCount:
		return core.Action{Count: &core.Count{RangeSet: r.Int(), Segments: r.Segments()}}
	case actionOffer:
		o := &core.Offer{}
		if n, ok := r.sliceLen(); ok {
			o.Candidates = make([][]core.Assigned, n)
			for i := range o.Candidates {
				o.Candidates[i] = r.Assigned()
			}
		}
		o.Searches, o.Held = r.SegmentLists(), r.Helds()
		return core.Action{Offer: o}
	case actionAdvance:
		return core.Action{Advance: &core.Advance{Positions: r.Assigned()}}
	case actionWait:
		return core.Action{Wait: &core.Wait{Nanos: r.Int64()}}
	case actionDone:
		return core.Action{Done: &core.Done{Addrs: r.Assigned()}}
	case actionFail:
		return core.Action{Fail: &core.Failure{
			Kind: core.FailureKind(r.Uint()), RangeSet: r.Int(), Addr: r.Addr(), Addrs: r.Addrs(),
			Err: r.RequestedError(), Rounds: r.Int(), Reason: r.String(),
		}}
	}
	r.fail()
	return core.Action{}
}

// SegmentLists reads one list of segments per range set.
func (r *Reader) SegmentLists() [][]core.Segment {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([][]core.Segment, n)
	for i := range out {
		out[i] = r.Segments()
	}
	return out
}

// Assigned reads addresses taken, one per range set.
func (r *Reader) Assigned() []core.Assigned {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]core.Assigned, n)
	for i := range out {
		out[i] = core.Assigned{Address: r.Prefix(), Gateway: r.Addr(), RangeSet: r.Int()}
	}
	return out
}

// RangeCapacities reads what usage reports need of every range.
func (r *Reader) RangeCapacities() []core.RangeCapacity {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]core.RangeCapacity, n)
	for i := range out {
		out[i] = core.RangeCapacity{RangeSet: r.Int(), Range: r.Int(), Capacity: r.Uint(), Excluded: r.Uint(), Count: r.Segments()}
	}
	return out
}
