package core

import "net/netip"

// One ADD's allocation is a conversation between this package, which
// decides, and a host, which reads and writes the store: the host calls
// Step with the request and every answer so far, performs the action Step
// returns, appends what it found, and calls Step again, until the action
// is Done or Fail. Nothing else passes between them, so a decision can be
// tested, fuzzed and replayed without a store (the shape of a sans-I/O
// protocol such as quinn-proto's or h11's).
//
// Step keeps no state between calls: it replays the answers from the
// start, so the transcript of answers is the whole state and one call
// crosses the WebAssembly boundary with one encoding each way. A later
// rule (a leaner first write, a wait with jitter) is a new kind of action
// and answer, not a new call.

// Request is what one ADD's allocation depends on besides what it reads:
// fixed for the whole ADD.
type Request struct {
	// Sets are the network's canonical range sets.
	Sets []RangeSet
	// Requested are the addresses the runtime asked for ("ips").
	Requested []netip.Addr
	// Held are the addresses held for the pod interface (an operator's
	// reservation or a sticky hold), each with the range set it was held
	// from: each takes its set's place when no address is requested there.
	Held []Held
	// Node and ContainerID name the allocator, to spread it over the pool
	// when it races other nodes.
	Node        string
	ContainerID string
	// Positions are the range sets' round-robin positions as read, one per
	// set (a missing one is no position).
	Positions []Position
	// Now is the ADD's time, Unix nanoseconds, passed in so that Step reads
	// no clock.
	Now int64
}

// Position is a range set's round-robin position: the address reserved
// last, and which node moved it when (Unix nanoseconds; 0 unknown).
type Position struct {
	Addr netip.Addr
	Node string
	At   int64
}

// Held is an address held for the ADD's pod interface, from range set
// RangeSet.
type Held struct {
	Addr     netip.Addr
	RangeSet int
}

// Assigned is one address an ADD takes from one range set, with the
// subnet's prefix length and gateway as the result reports them.
type Assigned struct {
	Address  netip.Prefix
	Gateway  netip.Addr
	RangeSet int
}

// Action is what the host does next: exactly one field is set.
type Action struct {
	Read    *Read
	Count   *Count
	Offer   *Offer
	Advance *Advance
	Wait    *Wait
	Done    *Done
	Fail    *Failure
}

// Read asks for the taken addresses of each range set's Searches (segment
// j at most ReadLimit(j) of them, ascending; nil for a set not read) and
// whether each of Requested is taken. Answered by Answer.Observed (one
// entry per range set, an Observation per segment) and Answer.Taken.
type Read struct {
	Searches  [][]Segment
	Requested []netip.Addr
}

// Count asks how many addresses of each of Segments (all of range set
// RangeSet) are taken, without reading them. Answered by Answer.Counts.
type Count struct {
	RangeSet int
	Segments []Segment
}

// Offer asks for one write that reserves the first of Candidates (one
// address per range set each, best first) whose addresses are all free,
// taking the addresses of Held from their holds instead of requiring them
// free. When none commits, the same write may read Searches as a Read
// would (Answer.Observed; nil when it could not). Answered by
// Answer.Committed and Won, or Lost, Observed and Retake.
type Offer struct {
	Candidates [][]Assigned
	Searches   [][]Segment
	Held       []Held
}

// Advance asks to move the round-robin position of each address's range
// set to it without reserving anything (host-local keeps the positions of
// the sets that succeeded before a failure); answered by an empty Answer.
type Advance struct {
	Positions []Assigned
}

// Wait asks the host to pause Nanos nanoseconds before the next attempt,
// answered by an empty Answer: allocators that keep losing races to each
// other back off, each for its own jittered time (backoff.go), instead of
// resending their writes into a store that is already busy. A host that
// cannot wait that long within its deadline gives up with Contention
// instead of waiting past it.
type Wait struct {
	Nanos int64
}

// Done ends the allocation: Addrs were reserved, one per range set.
type Done struct {
	Addrs []Assigned
}

// Answer is what the host found performing an action; the fields that
// apply are those the action's type names.
type Answer struct {
	// Observed: a Read's observations, or what a lost Offer read.
	Observed [][]Observation
	// Taken: a Read's, whether each requested address is taken.
	Taken []bool
	// Counts: a Count's, the taken addresses of each segment.
	Counts []int64
	// Committed: an Offer's candidate Won was reserved.
	Committed bool
	Won       int
	// Lost: when no candidate committed, the first candidate's addresses
	// that were taken (a held one: no longer held as read).
	Lost []netip.Addr
	// Retake: a held reservation was found vacant (released under etcd's
	// NOSPACE alarm); the next Offer takes it as a free key.
	Retake bool
	// Positions: a lost Offer's, each range set's round-robin position as
	// the same write read it (nil when it did not), so that the core sees
	// other nodes allocating at this moment on a fresh network too,
	// where the request's positions show nothing.
	Positions []Position
}

// Step returns the next action of the allocation req after answers, one
// for each action Step returned before, in order.
func Step(req Request, answers []Answer) Action {
	r := &run{req: req, answers: answers}
	return r.allocate()
}
