package ipam

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
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
		// A full database is not transient, although its gRPC code
		// (ResourceExhausted) is that of "too many requests".
		{fmt.Errorf("reserving: %w", rpctypes.ErrNoSpace), types.ErrIOFailure},
		{types.NewError(CodeExhausted, "full", ""), CodeExhausted},
		// The typed errors of the store, the core and ipam itself.
		{&store.NameError{What: store.ContainerID, Reason: "is empty"}, types.ErrInvalidEnvironmentVariables},
		{&store.NameError{What: store.IfName, Reason: "is empty"}, types.ErrInvalidEnvironmentVariables},
		{&store.NameError{What: store.NetworkName, Reason: "is empty"}, types.ErrInvalidNetworkConfig},
		{&store.TLSFileError{Key: "etcdCertFile", Message: "expired"}, types.ErrInvalidNetworkConfig},
		{fmt.Errorf("reading: %w", &store.TLSError{Failures: []string{"a: bad"}}), types.ErrInvalidNetworkConfig},
		{&store.DialError{Err: errors.New("bad endpoint")}, types.ErrInvalidNetworkConfig},
		{&store.DialError{Err: context.DeadlineExceeded}, types.ErrTryAgainLater},
		{fmt.Errorf("open: %w", &core.ConfigError{Reason: "bad"}), types.ErrInvalidNetworkConfig},
		{ErrNoNode, types.ErrInvalidNetworkConfig},
		{&ExhaustedError{Network: "n"}, CodeExhausted},
		{&RequestedError{Msg: "taken", Err: &core.RequestedError{}}, CodeRequestedUnavailable},
		{&UnknownAttachmentError{Msg: "none"}, types.ErrUnknownContainer},
		{&UnavailableError{Msg: "down", Err: context.DeadlineExceeded}, CodeStatusUnavailable},
		{errContention, types.ErrTryAgainLater},
		{fmt.Errorf("releasing: %w", store.ErrOwnerChanged), types.ErrIOFailure},
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

// TestNameErrorsNameTheVariable: a container ID or interface name the store
// refuses is the runtime's CNI_CONTAINERID or CNI_IFNAME, and says so.
func TestNameErrorsNameTheVariable(t *testing.T) {
	got := AsCNIError(&store.NameError{What: store.ContainerID, Reason: "is 2000 bytes long; the limit is 1024"})
	if got.Msg != "CNI_CONTAINERID is 2000 bytes long; the limit is 1024" {
		t.Errorf("message %q", got.Msg)
	}
}

// TestExplainAddsTheAdviceOnce: frontends that print text get the hint a
// runtime would get, once, with the cause still wrapped.
func TestExplainAddsTheAdviceOnce(t *testing.T) {
	err := fmt.Errorf("listing: %w", rpctypes.ErrPermissionDenied)
	explained := Explain(err)
	if !errors.Is(explained, rpctypes.ErrPermissionDenied) || !strings.Contains(explained.Error(), "check etcdUsername") {
		t.Errorf("Explain(%v) = %v", err, explained)
	}
	cniErr := AsCNIError(err)
	if again := Explain(cniErr); again.Error() != cniErr.Error() {
		t.Errorf("Explain of an error that carries its advice: %q, want %q", again, cniErr)
	}
}
