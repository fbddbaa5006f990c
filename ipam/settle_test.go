package ipam

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestSettleRetriesOnlyWhatMayPass: transient failures are retried, up to
// settleAttempts and never past the deadline; anything else, and losing
// every race (errContention), is returned at once.
func TestSettleRetriesOnlyWhatMayPass(t *testing.T) {
	failing := func(err error, times int, calls *int) func(context.Context) error {
		return func(context.Context) error {
			*calls++
			if *calls <= times {
				return err
			}
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	calls := 0
	if err := settle(ctx, failing(rpctypes.ErrNoLeader, 2, &calls)); err != nil || calls != 3 {
		t.Errorf("two leaderless failures then success: err %v after %d calls, want nil after 3", err, calls)
	}
	calls = 0
	if err := settle(ctx, failing(rpctypes.ErrNoLeader, 100, &calls)); !errors.Is(err, rpctypes.ErrNoLeader) || calls != settleAttempts {
		t.Errorf("always leaderless: err %v after %d calls, want ErrNoLeader after %d", err, calls, settleAttempts)
	}
	for _, permanent := range []error{rpctypes.ErrPermissionDenied, errContention, errors.New("other")} {
		calls = 0
		if err := settle(ctx, failing(permanent, 100, &calls)); !errors.Is(err, permanent) || calls != 1 {
			t.Errorf("%v: err %v after %d calls, want it after 1", permanent, err, calls)
		}
	}
	short, cancelShort := context.WithTimeout(context.Background(), settleFirstWait/2)
	defer cancelShort()
	calls = 0
	if err := settle(short, failing(rpctypes.ErrNoLeader, 100, &calls)); err == nil || calls != 1 {
		t.Errorf("a deadline shorter than the first wait: err %v after %d calls, want a failure after 1", err, calls)
	}
}

// TestSettleAbandonsAStuckAttempt: an attempt that hangs (a request held by
// a member that lost its cluster) is given up after half the time left,
// and the retry still has time to succeed.
func TestSettleAbandonsAStuckAttempt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*minAttemptTime)
	defer cancel()
	calls := 0
	err := settle(ctx, func(attemptCtx context.Context) error {
		calls++
		if calls == 1 {
			<-attemptCtx.Done() // stuck until the attempt's own deadline
			return attemptCtx.Err()
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("a stuck first attempt: err %v after %d calls, want success on the second", err, calls)
	}
}

// TestAttemptTime: half of what is left, at least minAttemptTime, never
// more than is left.
func TestAttemptTime(t *testing.T) {
	for _, tc := range []struct {
		left     time.Duration
		min, max time.Duration
	}{
		{10 * time.Second, 4 * time.Second, 5 * time.Second},
		{3 * time.Second / 2, minAttemptTime, minAttemptTime},
		{minAttemptTime / 2, 0, minAttemptTime / 2},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), tc.left)
		if got := attemptTime(ctx); got < tc.min || got > tc.max {
			t.Errorf("attemptTime with %v left = %v, want between %v and %v", tc.left, got, tc.min, tc.max)
		}
		cancel()
	}
	if got := attemptTime(context.Background()); got != minAttemptTime {
		t.Errorf("attemptTime without a deadline = %v, want %v", got, minAttemptTime)
	}
}

// TestSettleWaitsAreJittered: a retry's wait lies in the upper half of its
// bound, is the same for the same ADD and attempt, and differs between
// ADDs, so that invocations failing together do not retry together.
func TestSettleWaitsAreJittered(t *testing.T) {
	distinct := map[time.Duration]bool{}
	for i := range 20 {
		seed := "c" + string(rune('a'+i)) + "\x00node-a"
		d := jittered(settleFirstWait, seed, 1)
		if d < settleFirstWait/2 || d > settleFirstWait {
			t.Errorf("wait %v, want within [%v, %v]", d, settleFirstWait/2, settleFirstWait)
		}
		if d != jittered(settleFirstWait, seed, 1) {
			t.Errorf("seed %q: two waits for the same attempt differ", seed)
		}
		distinct[d] = true
	}
	if len(distinct) < 15 {
		t.Errorf("20 ADDs drew %d distinct waits, want them apart", len(distinct))
	}
}
