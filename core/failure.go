package core

import "net/netip"

// FailureKind says why an allocation ended without addresses. The host
// turns each into its own error and message (the network's name is not
// the core's), so the kinds carry the facts a message names.
type FailureKind uint8

const (
	// Exhausted: range set RangeSet has no free address.
	Exhausted FailureKind = iota + 1
	// RequestedInvalid: requested address Addr cannot be had from range
	// set RangeSet (a gateway, excluded, outside it); Err says why.
	RequestedInvalid
	// RequestedTaken: requested address Addr of range set RangeSet is
	// taken.
	RequestedTaken
	// RequestedUnmatched: requested addresses Addrs lie in no range set,
	// or another requested address took their set.
	RequestedUnmatched
	// HoldChanged: a held address changed between the read and the
	// write (taken, expired or released); a new ADD reads it again.
	HoldChanged
	// Contention: other allocators took every candidate of MaxAttempts
	// writes.
	Contention
	// NoAnswer: narrowing range set RangeSet found no free address after
	// Rounds rounds of counts and reads, though counts said there was one.
	NoAnswer
	// NoPiece: narrowing range set RangeSet found no piece small enough to
	// read after Rounds counts.
	NoPiece
	// BadAnswer: an answer does not fit the action it answers, or the
	// request has no range set (a bug in the host); Reason says how.
	BadAnswer
)

// Failure is the end of an allocation without addresses.
type Failure struct {
	Kind     FailureKind
	RangeSet int
	Addr     netip.Addr
	Addrs    []netip.Addr
	Err      *RequestedError
	Rounds   int
	Reason   string
}

// fail is the Action that ends an allocation with f.
func fail(f Failure) Action { return Action{Fail: &f} }

// badAnswer ends an allocation whose host answered out of turn.
func badAnswer(reason string) Action {
	return fail(Failure{Kind: BadAnswer, RangeSet: -1, Reason: reason})
}
