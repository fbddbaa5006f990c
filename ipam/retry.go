package ipam

import (
	"context"
	"errors"
	"time"
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
// the next endpoint. op must be safe to repeat; ADD and DEL are, because
// each starts by reading what an earlier attempt may have committed, and
// an abandoned write can still only commit if nothing else created the
// attachment first.
func settle(ctx context.Context, op func(context.Context) error) error {
	wait := settleFirstWait
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, attemptTime(ctx))
		err := op(attemptCtx)
		cancel()
		if err == nil || attempt == settleAttempts || !isTransient(err) || errors.Is(err, errContention) || ctx.Err() != nil {
			return err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return err
		case <-timer.C:
		}
		wait *= 2
	}
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
