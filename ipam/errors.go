package ipam

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/etcd-cni/etcd-ipam/config"
)

// Plugin-specific CNI error codes (the CNI spec reserves 100 and above for
// plugins). The well-known codes used are 3 (unknown container), 5 (I/O
// failure), 6 (undecodable configuration), 7 (invalid configuration), 11
// (try again later) and 50 (plugin not available, from STATUS).
const (
	// CodeExhausted: a range set has no free address.
	CodeExhausted uint = 100
	// CodeRequestedUnavailable: a requested address is taken, outside
	// every range, or a gateway.
	CodeRequestedUnavailable uint = 101
	// CodeStatusUnavailable is CNI's "plugin not available" for STATUS.
	CodeStatusUnavailable uint = 50
)

// AsCNIError is the one place that maps an error to a CNI error code.
// Errors that already carry a code keep it; bad input from package config
// gets the code of its kind (4, 6 or 7); etcd's transient failures
// become code 11 so that the runtime retries; authentication failures
// become code 7 because retrying cannot fix them.
func AsCNIError(err error) *types.Error {
	if err == nil {
		return nil
	}
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		return cniErr
	}
	var confErr *config.Error
	if errors.As(err, &confErr) {
		return types.NewError(configCode(confErr.Kind), confErr.Msg, confErr.Hint)
	}
	switch {
	case isTransient(err):
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("etcd is unreachable or too slow: %v", err),
			"check that etcdURL points at a running etcd and that this node can reach it; the runtime may retry")
	case isAccessDenied(err):
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("etcd refused access: %v", err),
			"check etcdUsername, etcdPassword and the etcd role's permissions on /etcd-cni/networks/")
	}
	return types.NewError(types.ErrIOFailure, err.Error(), "")
}

// configCode is the CNI code of a kind of bad input.
func configCode(k config.Kind) uint {
	switch k {
	case config.Undecodable:
		return types.ErrDecodingFailure
	case config.BadEnvironment:
		return types.ErrInvalidEnvironmentVariables
	}
	return types.ErrInvalidNetworkConfig
}

// isAccessDenied reports etcd refusing who we are or what we asked for.
func isAccessDenied(err error) bool {
	return errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrAuthFailed) ||
		errors.Is(err, rpctypes.ErrUserEmpty) || errors.Is(err, rpctypes.ErrInvalidAuthToken) ||
		errors.Is(err, rpctypes.ErrAuthNotEnabled)
}

func isTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrNoLeader) ||
		errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrTooManyRequests) ||
		errors.Is(err, errContention) {
		return true
	}
	// etcd's client turns known server errors into rpctypes.EtcdError,
	// which carries the gRPC code but is not a status: "request timed
	// out, possibly due to previous leader failure" is one of them.
	var etcdErr rpctypes.EtcdError
	if errors.As(err, &etcdErr) && transientCode(etcdErr.Code()) {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if s, ok := status.FromError(e); ok && transientCode(s.Code()) {
			return true
		}
	}
	return false
}

// transientCode reports gRPC codes that a later attempt can get past.
func transientCode(c codes.Code) bool {
	switch c {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	return false
}

// errContention: too many allocators kept winning the same addresses.
var errContention = errors.New("other allocators took every candidate address")

func exhausted(network string, set int, rangeSet fmt.Stringer) *types.Error {
	return types.NewError(CodeExhausted,
		fmt.Sprintf("no IP addresses available in range set %d (%s) of network %q", set, rangeSet, network),
		"release unused addresses (CNI DEL or GC, or etcd-ipam release) or add a range to the range set")
}

func requestedUnavailable(msg string) *types.Error {
	return types.NewError(CodeRequestedUnavailable, msg,
		"request an address that is free and inside a range of the network, or request none")
}
