package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// addIO performs the actions of one ADD attempt's allocation on etcd. It
// decides nothing about addresses: it reads, counts and writes what the
// core asks, and explains or repairs a hold the write could not take
// (heldLost), which needs lookups only etcd can answer.
type addIO struct {
	s    *Session
	att  store.Attachment
	id   *store.Identity
	snap store.Snapshot
	now  time.Time
	// seen is the node's liveness record, riding in the write when due.
	seen *store.Sighting
	// vacant: reserved addresses found released under etcd's NOSPACE
	// alarm, taken as free keys (see heldLost).
	vacant map[netip.Addr]bool
	// reserved is the ADD's answer once the allocation is done.
	reserved []store.AttachedAddr
}

func (s *Session) newAddIO(containerID, ifName string, pod *store.PodRef, id *store.Identity, snap store.Snapshot) *addIO {
	now := s.now().UTC().Truncate(time.Millisecond)
	var seen *store.Sighting
	if store.Due(snap.Seen, now) {
		seen = &store.Sighting{Node: s.node, At: now, By: byADD}
	}
	return &addIO{
		s:   s,
		att: store.Attachment{ContainerID: containerID, IfName: ifName, Node: s.node, Created: now, Pod: pod},
		id:  id, snap: snap, now: now, seen: seen,
	}
}

// perform does act and returns the core's answer; done ends the
// allocation, with io.reserved or an error.
func (io *addIO) perform(ctx context.Context, act core.Action) (ans core.Answer, done bool, err error) {
	switch {
	case act.Read != nil:
		observed, taken, err := io.s.net.Observe(ctx, act.Read.Searches, act.Read.Requested)
		return core.Answer{Observed: observed, Taken: taken}, false, err
	case act.Count != nil:
		counts, err := io.s.net.CountTaken(ctx, act.Count.Segments)
		return core.Answer{Counts: counts}, false, err
	case act.Advance != nil:
		advanced := make(map[int]store.Position, len(act.Advance.Positions))
		for _, a := range act.Advance.Positions {
			advanced[a.RangeSet] = store.Position{Addr: a.Address.Addr(), Node: io.s.node, At: io.now}
		}
		return core.Answer{}, false, io.s.net.AdvanceLastReserved(ctx, advanced)
	case act.Offer != nil:
		return io.offer(ctx, act.Offer)
	case act.Wait != nil:
		return core.Answer{}, false, io.wait(ctx, time.Duration(act.Wait.Nanos))
	case act.Done != nil:
		return core.Answer{}, true, nil
	case act.Fail != nil:
		return core.Answer{}, true, io.s.explainCooling(ctx, act.Fail, io.s.allocationError(act.Fail))
	}
	return core.Answer{}, true, fmt.Errorf("allocating in network %q: the core returned no action", io.s.name)
}

// offer writes the candidates in one transaction (store.ReserveFirst).
func (io *addIO) offer(ctx context.Context, o *core.Offer) (core.Answer, bool, error) {
	held := io.heldAddrs(o.Held)
	extras := &store.ReserveExtras{Sighting: io.seen, Sticky: io.s.sticky > 0, Held: held, HeldSet: io.snap.Held, Vacant: io.vacant}
	outcome, err := io.s.net.ReserveFirst(ctx, io.att, attachedAddrs(o.Candidates), o.Searches, extras)
	if err != nil {
		return core.Answer{}, true, err
	}
	switch {
	case outcome.IPs != nil:
		io.reserved = outcome.IPs
		return core.Answer{Committed: true, Won: outcome.Won}, false, nil
	case outcome.Existing != nil:
		// A concurrent ADD for the same attachment won: its addresses
		// are this ADD's answer too.
		io.reserved = outcome.Existing.IPs
		return core.Answer{}, true, nil
	case outcome.PodAttached != nil:
		return core.Answer{}, true, io.s.podAttachedError(*io.id, *outcome.PodAttached)
	}
	retake := false
	for _, lost := range outcome.Lost {
		h, ok := held[lost]
		if !ok {
			continue
		}
		isVacant, err := io.s.heldLost(ctx, h, io.vacant[lost])
		if err != nil {
			return core.Answer{}, true, err
		}
		if isVacant {
			if io.vacant == nil {
				io.vacant = map[netip.Addr]bool{}
			}
			io.vacant[lost], retake = true, true
		}
	}
	var positions []core.Position
	if outcome.Positions != nil {
		positions = positionsOf(outcome.Positions)
	}
	return core.Answer{Lost: outcome.Lost, Observed: outcome.Observed, Retake: retake, Positions: positions}, false, nil
}

// wait sleeps d, the core's backoff after a lost race, unless that would
// pass ctx's deadline: then the ADD gives up at once with errContention
// (a CNI "try again later"), rather than sleep into a deadline where its
// next write could not finish anyway.
func (io *addIO) wait(ctx context.Context, d time.Duration) error {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		return fmt.Errorf("allocating in network %q: backing off %v after lost races would pass the deadline: %w", io.s.name, d, errContention)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("allocating in network %q: backing off after lost races: %w", io.s.name, ctx.Err())
	case <-timer.C:
		return nil
	}
}

// heldAddrs returns the held set's entries of the addresses the core
// takes from their holds, by address, as the write compares them.
func (io *addIO) heldAddrs(take []core.Held) map[netip.Addr]store.HeldAddr {
	if len(take) == 0 || io.snap.Held == nil {
		return nil
	}
	out := make(map[netip.Addr]store.HeldAddr, len(take))
	for _, t := range take {
		for _, h := range io.snap.Held.Addrs {
			if h.Addr == t.Addr && h.RangeSet == t.RangeSet {
				out[h.Addr] = h
				break
			}
		}
	}
	return out
}

// heldOf is what the core needs of the pod interface's held set.
func heldOf(set *store.StoredHeldSet) []core.Held {
	if set == nil {
		return nil
	}
	out := make([]core.Held, len(set.Addrs))
	for i, h := range set.Addrs {
		out[i] = core.Held{Addr: h.Addr, RangeSet: h.RangeSet}
	}
	return out
}

// positionsOf is what the core needs of the round-robin positions.
func positionsOf(positions []store.Position) []core.Position {
	out := make([]core.Position, len(positions))
	for i, p := range positions {
		out[i] = core.Position{Addr: p.Addr, Node: p.Node, At: unixNanos(p.At)}
	}
	return out
}

// attachedAddrs converts the core's candidates into the store's.
func attachedAddrs(candidates [][]core.Assigned) [][]store.AttachedAddr {
	out := make([][]store.AttachedAddr, len(candidates))
	for i, c := range candidates {
		out[i] = make([]store.AttachedAddr, len(c))
		for j, a := range c {
			out[i][j] = store.AttachedAddr{Address: a.Address, Gateway: a.Gateway, RangeSet: a.RangeSet}
		}
	}
	return out
}

// unixNanos is t as the core takes times: Unix nanoseconds, 0 for none.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
