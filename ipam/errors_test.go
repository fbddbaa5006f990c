package ipam

import (
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/etcd-cni/etcd-ipam/config"
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

// TestAsCNIErrorConfigKinds checks that each kind of bad input from
// package config gets its CNI code, and keeps its message, hint and text,
// even when wrapped.
func TestAsCNIErrorConfigKinds(t *testing.T) {
	for _, tc := range []struct {
		kind config.Kind
		code uint
	}{
		{config.BadEnvironment, types.ErrInvalidEnvironmentVariables},
		{config.Undecodable, types.ErrDecodingFailure},
		{config.Invalid, types.ErrInvalidNetworkConfig},
	} {
		for _, hint := range []string{"", "do this instead"} {
			in := &config.Error{Kind: tc.kind, Msg: "something is wrong", Hint: hint}
			got := AsCNIError(fmt.Errorf("loading: %w", in))
			if got.Code != tc.code || got.Msg != in.Msg || got.Details != hint {
				t.Errorf("AsCNIError(kind %d, hint %q) = %d %q %q, want %d %q %q",
					tc.kind, hint, got.Code, got.Msg, got.Details, tc.code, in.Msg, hint)
			}
			if got.Error() != in.Error() {
				t.Errorf("kind %d, hint %q: CNI text %q, config text %q", tc.kind, hint, got.Error(), in.Error())
			}
		}
	}
}
