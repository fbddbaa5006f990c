package core

import (
	"net/netip"
	"strconv"
)

// MaxAttempts bounds how many writes an ADD offers before it gives up to
// other allocators that keep taking its candidates (Contention).
const MaxAttempts = 16

// run is one replay of an allocation: allocate walks the decisions from
// the start and consumes one answer at each action, until an action has no
// answer yet; that action is the step's result.
type run struct {
	req     Request
	answers []Answer
	next    int
}

// ask returns the answer to act, or stops the replay there: stop is the
// action to return, act itself when it is still unanswered.
func (r *run) ask(act Action) (ans Answer, stop *Action) {
	if r.next == len(r.answers) {
		return Answer{}, &act
	}
	ans = r.answers[r.next]
	r.next++
	return ans, nil
}

// allocate is one ADD's decisions. Before anything is read, it offers the
// next addresses after each set's position, guessed free; when all of
// those are taken, the same write read the searches, and the next offer is
// the free addresses they show. A lone allocator therefore always gets
// host-local's address, the first free one in search order. Guesses lost
// while the same write read a position another node just moved are a race
// (a fresh network shows no position to the first read): the next attempt
// guesses again from a spot of its own. A chain chosen from a read and
// still lost means other allocators are at work: the next attempt waits a
// jittered while (backoff.go), reads afresh and starts elsewhere
// (spread.go).
func (r *run) allocate() Action {
	sets := r.req.Sets
	if len(sets) == 0 {
		// A configuration always has a range set: a host bug, refused
		// rather than offering an empty candidate.
		return badAnswer("request: no range sets")
	}
	perSet, unmatched := AssignRequested(sets, r.req.Requested)
	// What the pod interface holds takes the place of a requested
	// address, in each range set where none is requested.
	held := heldFor(sets, r.req.Held, perSet)
	for _, h := range held {
		perSet[h.RangeSet] = h.Addr
	}
	guessable := len(unmatched) == 0
	for _, a := range perSet {
		guessable = guessable && !a.IsValid()
	}
	// observed is nil until a read has shown the searches' taken
	// addresses, and taken whether the requested ones were; races counts
	// the attempts lost to other allocators, backoffs those of them that
	// waited.
	var observed [][]Observation
	var taken []bool
	races, backoffs := 0, 0
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		searches := searchesFrom(sets, r.starts(races), perSet)
		var candidates [][]Assigned
		if observed == nil && guessable {
			candidates = guess(sets, searches)
		}
		if candidates == nil {
			// Nothing to guess from (a requested or held address, or a
			// set without a guessable address): read first.
			if observed == nil {
				ans, stop := r.ask(Action{Read: &Read{Searches: searches, Requested: unheld(perSet, held)}})
				if stop != nil {
					return *stop
				}
				if reason := observationsFit(ans.Observed, searches); reason != "" {
					return badAnswer("read: " + reason)
				}
				observed, taken = ans.Observed, ans.Taken
			}
			picked, failure, stop := r.pick(observed, taken, perSet, held)
			if stop != nil {
				return *stop
			}
			if failure != nil || len(unmatched) > 0 {
				// host-local keeps the round-robin position of every range
				// set that succeeded before the failure.
				if len(picked) > 0 {
					if _, stop := r.ask(Action{Advance: &Advance{Positions: picked}}); stop != nil {
						return *stop
					}
				}
				if failure != nil {
					return Action{Fail: failure}
				}
				return fail(Failure{Kind: RequestedUnmatched, RangeSet: -1, Addrs: unmatched})
			}
			candidates = candidatesFrom(sets, observed, picked, perSet)
		}
		ans, stop := r.ask(Action{Offer: &Offer{Candidates: candidates, Searches: searches, Held: held}})
		if stop != nil {
			return *stop
		}
		if ans.Committed {
			if ans.Won < 0 || ans.Won >= len(candidates) {
				return badAnswer("offer: candidate " + strconv.Itoa(ans.Won) + " of " + strconv.Itoa(len(candidates)) + " won")
			}
			return Action{Done: &Done{Addrs: candidates[ans.Won]}}
		}
		if ans.Retake {
			continue // the same offer, a vacant reservation taken as free
		}
		for _, lost := range ans.Lost {
			if isHeld(held, lost) {
				return fail(Failure{Kind: HoldChanged, RangeSet: -1, Addr: lost})
			}
		}
		for _, lost := range ans.Lost {
			for i, a := range perSet {
				if a == lost {
					return fail(Failure{Kind: RequestedTaken, RangeSet: i, Addr: lost})
				}
			}
		}
		if observed == nil {
			// The guesses were taken: not a race, the pool is busy
			// there. The same write read the searches, unless they were
			// too many to fit; then read them next.
			if ans.Observed != nil {
				if reason := observationsFit(ans.Observed, searches); reason != "" {
					return badAnswer("offer: " + reason)
				}
			}
			observed = ans.Observed
			guessable = false
			if races == 0 && r.movedMeanwhile(ans.Positions) {
				// Another node moved a position since the request's
				// read: nodes are allocating at this moment, and every
				// loser of these guesses would pick the same next free
				// address from what was read. Guess again from a spot
				// of this ADD's own instead, in one write, no read.
				observed, guessable = nil, true
				races++
			}
			continue
		}
		// Chosen from a read and still taken: other allocators are at
		// work. Back off for a jittered while, then start elsewhere,
		// from a fresh read.
		observed, taken = nil, nil
		races++
		backoffs++
		if attempt+1 < MaxAttempts {
			if _, stop := r.ask(Action{Wait: &Wait{Nanos: r.backoff(backoffs)}}); stop != nil {
				return *stop
			}
		}
	}
	return fail(Failure{Kind: Contention, RangeSet: -1, Rounds: MaxAttempts})
}

// searchesFrom returns each range set's search order from starts; nil for
// a set whose address is requested or held.
func searchesFrom(sets []RangeSet, starts []netip.Addr, perSet []netip.Addr) [][]Segment {
	searches := make([][]Segment, len(sets))
	for i, set := range sets {
		if !perSet[i].IsValid() {
			searches[i] = set.SearchOrder(starts[i])
		}
	}
	return searches
}

// unheld returns the requested addresses to read: a held address is not
// read, because its hold takes it and the write checks that it still
// holds exactly that.
func unheld(perSet []netip.Addr, held []Held) []netip.Addr {
	var out []netip.Addr
	for _, a := range perSet {
		if a.IsValid() && !isHeld(held, a) {
			out = append(out, a)
		}
	}
	return out
}

// observationsFit says what is wrong with observed as the answer to a read
// of searches, or "" when each set has one observation per segment.
func observationsFit(observed [][]Observation, searches [][]Segment) string {
	if len(observed) != len(searches) {
		return strconv.Itoa(len(observed)) + " range sets observed, " + strconv.Itoa(len(searches)) + " searched"
	}
	for i := range searches {
		if len(observed[i]) != len(searches[i]) {
			return "range set " + strconv.Itoa(i) + ": " + strconv.Itoa(len(observed[i])) + " observations of " + strconv.Itoa(len(searches[i])) + " segments"
		}
	}
	return ""
}
