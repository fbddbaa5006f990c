package ipam

import (
	"context"
	"errors"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Retries of an operation that failed transiently (an etcd member without
// a leader, a leader election, a dropped connection): each waits longer,
// and none starts unless its wait ends before the deadline. An attempt may
// use half of the time left, and at least minAttemptTime, so that one
// request stuck on a member that lost its cluster leaves time for a retry
// on another.
const (
	settleAttempts  = 6
	settleFirstWait = 20 * time.Millisecond
	minAttemptTime  = time.Second
)

// settle runs op, and runs it again while it fails transiently and the
// deadline leaves room, so that an invocation rides out what a runtime's
// own retry would otherwise have to: etcd's client sends each attempt to
// the next endpoint.
//
// The contract of op: it is safe to repeat, and it reports honestly after
// an attempt whose outcome was lost. A transient failure may come after
// etcd committed the attempt's write (the reply was lost), so the next
// attempt must recognise that write as its own work done, never as
// someone else's: ADD and DEL start by reading what an earlier attempt
// may have committed, and an abandoned write can still only commit if
// nothing else created the attachment first; Reserve finds its own
// reservation and reports it made (store.Reserve); the operator's releases
// report an address or attachment found free already as released after
// such an attempt (releasing, releaseAttachments), as it is.
func settle(ctx context.Context, op func(context.Context) error) error {
	return settleSpread(ctx, "", op)
}

// settleSpread is settle with each wait jittered into its upper half by a
// hash of seed and the attempt: invocations that failed together (a
// leader election, an overloaded member timing out everyone's request)
// then retry apart instead of all at once into the same queue. An ADD
// seeds it with its container ID and node, so jitter needs no clock and no
// global random source.
func settleSpread(ctx context.Context, seed string, op func(context.Context) error) error {
	wait := settleFirstWait
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, attemptTime(ctx))
		err := op(attemptCtx)
		cancel()
		if err == nil || attempt == settleAttempts || !isTransient(err) || errors.Is(err, errContention) || ctx.Err() != nil {
			return err
		}
		d := jittered(wait, seed, attempt)
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return err
		}
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		wait *= 2
	}
}

// jittered returns a duration within [d/2, d] drawn from a hash of seed
// and attempt: the same for the same inputs, apart for different seeds.
func jittered(d time.Duration, seed string, attempt int) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed + "\x00" + strconv.Itoa(attempt)))
	half := d / 2
	return half + time.Duration(h.Sum64()%uint64(d-half+1))
}

// attemptTime is how long one attempt of settle may take: half of what is
// left of ctx's deadline, but at least minAttemptTime (or all that is left).
func attemptTime(ctx context.Context) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return minAttemptTime
	}
	left := time.Until(deadline)
	return min(left, max(left/2, minAttemptTime))
}

// retried runs a read under s's deadline and retry policy.
func retried[T any](ctx context.Context, s *Session, read func(context.Context) (T, error)) (T, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out T
	err := settle(ctx, func(ctx context.Context) (err error) {
		out, err = read(ctx)
		return err
	})
	return out, err
}

// releasing runs a release under s's deadline and retry policy. A release
// is conditional on what was read, so repeating it frees nothing twice;
// when an attempt failed transiently (its write may have committed) and a
// later one finds the address free already (store.ErrAlreadyFree), the
// release is done, by that attempt or by someone else meanwhile: it
// reports success, not "nothing was released".
func releasing[T any](ctx context.Context, s *Session, release func(context.Context) (T, error)) (T, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var out T
	uncertain := false
	err := settle(ctx, func(ctx context.Context) (err error) {
		out, err = release(ctx)
		if uncertain && errors.Is(err, store.ErrAlreadyFree) {
			var none T
			out, err = none, nil
		}
		uncertain = uncertain || isTransient(err)
		return err
	})
	return out, err
}
