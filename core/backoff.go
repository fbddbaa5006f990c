package core

import "strconv"

// Under overload the worst thing an allocator can do is to resend its
// write at once: every loser of a race does the same, into a store whose
// queue is what made them lose. So an allocator that loses an attempt it
// chose from a fresh read waits first, longer after each such loss, for a
// time drawn from its own inputs (full jitter between half and all of the
// current bound), so that the losers of one race do not come back
// together. The times are computed here, deterministically, from the
// container ID, node and number of losses; the host only sleeps.

// Bounds of the wait before an attempt that follows a lost race:
// BackoffBase after the first loss, doubling with each further loss up to
// BackoffCap (nanoseconds). Sixteen attempts wait at most about 2.5 s in
// all, well within an ADD's deadline.
const (
	BackoffBase int64 = 8e6
	BackoffCap  int64 = 200e6
)

// backoff returns the wait, in nanoseconds, before the attempt that
// follows this ADD's k-th lost race (from 1): a bound of BackoffBase
// doubled k-1 times, at most BackoffCap, jittered into [bound/2, bound]
// by a hash of the container ID, node and k.
func (r *run) backoff(k int) int64 {
	bound := BackoffBase
	for i := 1; i < k && bound < BackoffCap; i++ {
		bound *= 2
	}
	bound = min(bound, BackoffCap)
	half := bound / 2
	seed := fnv64a(r.req.ContainerID + "\x00" + r.req.Node + "\x00wait\x00" + strconv.Itoa(k))
	return half + int64(seed%uint64(bound-half+1))
}

// movedMeanwhile reports whether another node moved a range set's
// round-robin position within BurstWindow, to something else than the
// request read (no position, on a fresh network): positions are what a
// lost write read. A lone allocator never sees that, so its order stays
// host-local's.
func (r *run) movedMeanwhile(positions []Position) bool {
	for i, p := range positions {
		if i >= len(r.req.Sets) {
			break
		}
		var before Position
		if i < len(r.req.Positions) {
			before = r.req.Positions[i]
		}
		if p != before && Racing(p, r.req.Node, r.req.Now) {
			return true
		}
	}
	return false
}
