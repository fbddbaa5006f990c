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
	failing := func(err error, times int, calls *int) func() error {
		return func() error {
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
