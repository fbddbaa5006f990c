package abi

import (
	"github.com/etcd-cni/etcd-ipam/core"
)

// The allocator's step protocol (core.Step): its request, the answers so
// far and the action, each in one encoding. An action is a tag byte naming
// its kind (actionNone when no field is set) followed by that kind's
// fields.

// Tags of an encoded core.Action.
const (
	actionNone = iota
	actionRead
	actionCount
	actionOffer
	actionAdvance
	actionDone
	actionFail
	actionWait
)

// Int64 writes a signed (zig-zag) varint of 64 bits on every platform.
func (w *Writer) Int64(v int64) { w.Uint(uint64(v<<1) ^ uint64(v>>63)) }

// Request writes an allocation's request.
func (w *Writer) Request(req core.Request) {
	w.RangeSets(req.Sets)
	w.Addrs(req.Requested)
	w.Helds(req.Held)
	w.String(req.Node)
	w.String(req.ContainerID)
	w.Positions(req.Positions)
	w.Int64(req.Now)
}

// Positions writes round-robin positions.
func (w *Writer) Positions(positions []core.Position) {
	w.sliceLen(len(positions), positions == nil)
	for _, p := range positions {
		w.Addr(p.Addr)
		w.String(p.Node)
		w.Int64(p.At)
	}
}

// Helds writes held addresses.
func (w *Writer) Helds(held []core.Held) {
	w.sliceLen(len(held), held == nil)
	for _, h := range held {
		w.Addr(h.Addr)
		w.Int(h.RangeSet)
	}
}

// Answers writes the answers of an allocation so far.
func (w *Writer) Answers(answers []core.Answer) {
	w.sliceLen(len(answers), answers == nil)
	for _, a := range answers {
		w.sliceLen(len(a.Observed), a.Observed == nil)
		for _, obs := range a.Observed {
			w.Observations(obs)
		}
		w.sliceLen(len(a.Taken), a.Taken == nil)
		for _, t := range a.Taken {
			w.Bool(t)
		}
		w.sliceLen(len(a.Counts), a.Counts == nil)
		for _, c := range a.Counts {
			w.Int64(c)
		}
		w.Bool(a.Committed)
		w.Int(a.Won)
		w.Addrs(a.Lost)
		w.Bool(a.Retake)
		w.Positions(a.Positions)
	}
}

// Action writes the action a step returned.
func (w *Writer) Action(act core.Action) {
	switch {
	case act.Read != nil:
		w.Uint(actionRead)
		w.SegmentLists(act.Read.Searches)
		w.Addrs(act.Read.Requested)
	case act.Count != nil:
		w.Uint(actionCount)
		w.Int(act.Count.RangeSet)
		w.Segments(act.Count.Segments)
	case act.Offer != nil:
		w.Uint(actionOffer)
		w.sliceLen(len(act.Offer.Candidates), act.Offer.Candidates == nil)
		for _, c := range act.Offer.Candidates {
			w.Assigned(c)
		}
		w.SegmentLists(act.Offer.Searches)
		w.Helds(act.Offer.Held)
	case act.Advance != nil:
		w.Uint(actionAdvance)
		w.Assigned(act.Advance.Positions)
	case act.Wait != nil:
		w.Uint(actionWait)
		w.Int64(act.Wait.Nanos)
	case act.Done != nil:
		w.Uint(actionDone)
		w.Assigned(act.Done.Addrs)
	case act.Fail != nil:
		w.Uint(actionFail)
		f := act.Fail
		w.Uint(uint64(f.Kind))
		w.Int(f.RangeSet)
		w.Addr(f.Addr)
		w.Addrs(f.Addrs)
		w.RequestedError(f.Err)
		w.Int(f.Rounds)
		w.String(f.Reason)
	default:
		w.Uint(actionNone)
	}
}

// SegmentLists writes one list of segments per range set.
func (w *Writer) SegmentLists(lists [][]core.Segment) {
	w.sliceLen(len(lists), lists == nil)
	for _, l := range lists {
		w.Segments(l)
	}
}

// Assigned writes addresses taken, one per range set.
func (w *Writer) Assigned(as []core.Assigned) {
	w.sliceLen(len(as), as == nil)
	for _, a := range as {
		w.Prefix(a.Address)
		w.Addr(a.Gateway)
		w.Int(a.RangeSet)
	}
}

// RangeCapacities writes what usage reports need of every range.
func (w *Writer) RangeCapacities(caps []core.RangeCapacity) {
	w.sliceLen(len(caps), caps == nil)
	for _, c := range caps {
		w.Int(c.RangeSet)
		w.Int(c.Range)
		w.Uint(c.Capacity)
		w.Uint(c.Excluded)
		w.Segments(c.Count)
	}
}
