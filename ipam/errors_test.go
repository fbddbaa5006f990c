package ipam

import (
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

// TestAsCNIErrorCodes pins down the mapping of etcd's errors, as the
// client returns them (often wrapped), to the codes a runtime acts on.
func TestAsCNIErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code uint
	}{
		// Seen in e2e when the leader was killed mid-request.
		{rpctypes.ErrTimeoutDueToLeaderFail, types.ErrTryAgainLater},
		{fmt.Errorf("reserving: %w", rpctypes.ErrTimeoutDueToConnectionLost), types.ErrTryAgainLater},
		{rpctypes.ErrLeaderChanged, types.ErrTryAgainLater},
		{rpctypes.ErrNoLeader, types.ErrTryAgainLater},
		{rpctypes.ErrTooManyRequests, types.ErrTryAgainLater},
		{rpctypes.ErrPermissionDenied, types.ErrInvalidNetworkConfig},
		{fmt.Errorf("login: %w", rpctypes.ErrAuthFailed), types.ErrInvalidNetworkConfig},
		{rpctypes.ErrKeyNotFound, types.ErrIOFailure},
		{rpctypes.ErrRequestTooLarge, types.ErrIOFailure},
		{types.NewError(CodeExhausted, "full", ""), CodeExhausted},
	} {
		if got := AsCNIError(tc.err).Code; got != tc.code {
			t.Errorf("AsCNIError(%v) has code %d, want %d", tc.err, got, tc.code)
		}
	}
}
