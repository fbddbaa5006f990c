package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// maxAttempts bounds how often an ADD retries after losing a race for an
// address to another allocator.
const maxAttempts = 16

// Add reserves one address from every range set for (containerID, ifName),
// or returns the addresses it already holds.
func (s *Session) Add(ctx context.Context, containerID, ifName string, requested []netip.Addr) ([]store.AttachedAddr, error) {
	return s.AddPod(ctx, containerID, ifName, requested, nil)
}

// AddPod is Add for a container of a Kubernetes pod (nil: none), which is
// recorded with the attachment. When the pod is an identity
// (store.IdentityOf), the pod interface takes the addresses held for it (a
// reservation, or a sticky network's hold from its previous instance), and
// on a sticky network it has one attachment at a time; otherwise (podman's
// lone container name) the pod is shown by listings and nothing more.
func (s *Session) AddPod(ctx context.Context, containerID, ifName string, requested []netip.Addr, pod *store.PodRef) ([]store.AttachedAddr, error) {
	if err := store.CheckAttachment(containerID, ifName); err != nil {
		return nil, err
	}
	if pod != nil && !pod.Storable() {
		// Recorded for display only, and never a reason to refuse a
		// container (NOTES 25): a name the records cannot hold is left out.
		pod = nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var ips []store.AttachedAddr
	err := settle(ctx, func(ctx context.Context) (err error) {
		ips, err = s.add(ctx, containerID, ifName, requested, pod)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ips, nil
}

// add is one read (the attachment and the round-robin positions) and,
// usually, one write. The write offers a chain of candidates in search
// order, the first free one wins (store.ReserveFirst): before anything else
// is read, the next addresses after each set's position, guessed free;
// when all of those are taken, the same transaction reads the search
// segments, and the next write offers the free addresses they show. A lone
// allocator therefore always gets host-local's address, the first free one
// in search order, in two round trips when one of the guesses is free.
func (s *Session) add(ctx context.Context, containerID, ifName string, requested []netip.Addr, pod *store.PodRef) ([]store.AttachedAddr, error) {
	// Only a pod that Kubernetes could have is an identity that takes
	// holds and, on a sticky network, has one attachment at a time.
	id := store.IdentityOf(store.Attachment{IfName: ifName, Pod: pod})
	snap, err := s.net.Snapshot(ctx, containerID, ifName, len(s.sets), s.node, id)
	if err != nil {
		return nil, err
	}
	if snap.Attachment != nil {
		return snap.Attachment.IPs, nil
	}
	if s.sticky > 0 && snap.PodAttached != nil {
		return nil, s.podAttachedError(*id, *snap.PodAttached)
	}
	perSet, unmatched := s.core.AssignRequested(s.sets, requested)
	// What the pod interface holds takes the place of a requested
	// address, in each range set where none is requested.
	held := s.heldFor(snap.Held, perSet)
	for a := range held {
		perSet[held[a].RangeSet] = a
	}
	guessable := len(unmatched) == 0
	for _, r := range perSet {
		guessable = guessable && !r.IsValid()
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	// Liveness rides in the reservation, when due.
	var seen *store.Sighting
	if store.Due(snap.Seen, now) {
		seen = &store.Sighting{Node: s.node, At: now, By: byADD}
	}
	// observed is nil until a read has shown the searches' taken
	// addresses; races counts the attempts lost to other allocators.
	var observed [][]core.Observation
	races := 0
	// vacant: reserved addresses found released under etcd's NOSPACE
	// alarm, taken as free keys (see heldLost).
	var vacant map[netip.Addr]bool
	for attempt := 0; attempt < maxAttempts; attempt++ {
		searches := s.searches(s.searchStarts(snap.LastReserved, containerID, races, now), perSet)
		var candidates [][]store.AttachedAddr
		if observed == nil && guessable {
			candidates = s.guess(searches)
		}
		if candidates == nil {
			// Nothing to guess from (a requested address, or a set
			// without a guessable address): read first.
			var taken []bool
			if observed == nil {
				// A held address is not read: its hold takes it, and the
				// write checks that it still holds exactly that. With
				// every range set's address held, nothing is read at all.
				var wanted []netip.Addr
				for _, r := range perSet {
					if _, isHeld := held[r]; r.IsValid() && !isHeld {
						wanted = append(wanted, r)
					}
				}
				if observed, taken, err = s.net.Observe(ctx, searches, wanted); err != nil {
					return nil, err
				}
			}
			picked, failure, err := s.pick(ctx, observed, taken, perSet, held)
			if err != nil {
				return nil, err
			}
			if failure != nil || len(unmatched) > 0 {
				// host-local keeps the round-robin position of every range set
				// that succeeded before the failure.
				advanced := make(map[int]store.Position, len(picked))
				for i, p := range picked {
					advanced[i] = store.Position{Addr: p.Address.Addr(), Node: s.node, At: now}
				}
				if err := s.net.AdvanceLastReserved(ctx, advanced); err != nil {
					return nil, err
				}
				if failure != nil {
					return nil, s.explainCooling(ctx, failure, perSet)
				}
				return nil, &RequestedError{Msg: fmt.Sprintf("failed to allocate all requested IPs: %s %s in no range set of network %q, or another requested address already took %s range set (one address per range set)",
					joinAddrs(unmatched), plural(len(unmatched), "is", "are"), s.name, plural(len(unmatched), "its", "their"))}
			}
			candidates = s.candidates(observed, picked, perSet)
		}
		att := store.Attachment{ContainerID: containerID, IfName: ifName, Node: s.node, Created: now, Pod: pod}
		extras := &store.ReserveExtras{Sighting: seen, Sticky: s.sticky > 0, Held: held, HeldSet: snap.Held, Vacant: vacant}
		outcome, err := s.net.ReserveFirst(ctx, att, candidates, searches, extras)
		if err != nil {
			return nil, err
		}
		switch {
		case outcome.IPs != nil:
			return outcome.IPs, nil
		case outcome.Existing != nil:
			// A concurrent ADD for the same attachment won: its addresses
			// are this ADD's answer too.
			return outcome.Existing.IPs, nil
		case outcome.PodAttached != nil:
			return nil, s.podAttachedError(*id, *outcome.PodAttached)
		}
		heldLost, retake := false, false
		for _, lost := range outcome.Lost {
			if h, ok := held[lost]; ok {
				isVacant, err := s.heldLost(ctx, h, vacant[lost])
				if err != nil {
					return nil, err
				}
				if isVacant {
					if vacant == nil {
						vacant = map[netip.Addr]bool{}
					}
					vacant[lost], retake = true, true
				}
				heldLost = true
			}
		}
		if retake {
			continue
		}
		if heldLost {
			// A hold changed meanwhile: read again (settle retries).
			return nil, errHoldChanged
		}
		for _, lost := range outcome.Lost {
			for i, req := range perSet {
				if req == lost {
					return nil, &RequestedError{Msg: fmt.Sprintf("requested IP address %s is not available in range set %d (%s) of network %q", lost, i, s.sets[i], s.name)}
				}
			}
		}
		if observed == nil {
			// The guesses were taken: not a race, the pool is busy
			// there. The same transaction read the searches, unless
			// they were too many to fit; then read them next.
			observed = outcome.Observed
			guessable = false
			continue
		}
		// Chosen from a read and still taken: other allocators are at
		// work. Start elsewhere, from a fresh read.
		observed = nil
		races++
	}
	return nil, errContention
}

// searches returns each range set's search order from starts; nil for a
// set whose address is requested.
func (s *Session) searches(starts []netip.Addr, requested []netip.Addr) [][]core.Segment {
	searches := make([][]core.Segment, len(s.sets))
	for i, set := range s.sets {
		if !requested[i].IsValid() {
			searches[i] = s.core.SearchOrder(set, starts[i])
		}
	}
	return searches
}
