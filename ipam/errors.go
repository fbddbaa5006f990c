package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// Plugin-specific CNI error codes (the CNI spec reserves 100 and above for
// plugins). The well-known codes used are 3 (unknown container), 4
// (invalid environment variables), 5 (I/O failure), 6 (undecodable
// configuration), 7 (invalid configuration), 11 (try again later) and 50
// (plugin not available, from STATUS).
const (
	// CodeExhausted: a range set has no free address.
	CodeExhausted uint = 100
	// CodeRequestedUnavailable: a requested address is taken, outside
	// every range, or a gateway.
	CodeRequestedUnavailable uint = 101
	// CodeStatusUnavailable is CNI's "plugin not available" for STATUS.
	CodeStatusUnavailable uint = 50
)

// AsCNIError is the one place that maps an error to a CNI error code. Every
// package returns typed errors (or wraps them); only here do they become
// codes: bad input from package config the code of its kind (4, 6 or 7),
// other configuration problems 7 (retrying cannot fix them), etcd's
// transient failures 11 (so that the runtime retries), and anything
// unexpected 5.
func AsCNIError(err error) *types.Error {
	if err == nil {
		return nil
	}
	var (
		cniErr       *types.Error
		exhaustedErr *ExhaustedError
		coolingErr   *CoolingError
		requestedErr *RequestedError
		unknownErr   *UnknownAttachmentError
		unavailErr   *UnavailableError
		tlsErr       *store.TLSError
		fileErr      *store.TLSFileError
		nameErr      *store.NameError
		rangeErr     *core.ConfigError
		dialErr      *store.DialError
		confErr      *config.Error
		heldErr      *HeldElsewhereError
		takenErr     *store.TakenError
		silenceErr   *SilenceError
	)
	switch {
	case errors.As(err, &cniErr):
		return cniErr
	case errors.As(err, &confErr):
		return types.NewError(configCode(confErr.Kind), confErr.Msg, confErr.Hint)
	case errors.As(err, &coolingErr):
		// 11, not 100: the range set is not too small, its addresses
		// are cooling and come back by themselves.
		return types.NewError(types.ErrTryAgainLater, coolingErr.Error(), coolingErr.Hint())
	case errors.As(err, &exhaustedErr):
		return types.NewError(CodeExhausted, exhaustedErr.Error(),
			"release unused addresses (CNI DEL or GC, or etcd-ipam release) or add a range to the range set")
	case errors.As(err, &requestedErr) && requestedErr.Hint != "":
		return types.NewError(CodeRequestedUnavailable, requestedErr.Error(), requestedErr.Hint)
	case errors.As(err, &requestedErr):
		return types.NewError(CodeRequestedUnavailable, requestedErr.Error(),
			"request an address that is free and inside a range of the network, or request none")
	case errors.As(err, &heldErr):
		return types.NewError(types.ErrTryAgainLater, heldErr.Error(),
			"the pod's previous instance still has it: once its DEL arrives, an ADD gets it; the runtime retries")
	case errors.As(err, &takenErr):
		return types.NewError(CodeRequestedUnavailable, takenErr.Error(), "choose a free address (etcd-ipam plan shows them), or release this one first")
	case errors.As(err, &silenceErr):
		return types.NewError(types.ErrInvalidNetworkConfig, silenceErr.Error(), "")
	case errors.As(err, &unknownErr):
		return types.NewError(types.ErrUnknownContainer, unknownErr.Error(), unknownErr.Hint)
	case errors.As(err, &unavailErr):
		return types.NewError(CodeStatusUnavailable, unavailErr.Error(), unavailErr.Hint)
	case errors.As(err, &tlsErr):
		return types.NewError(types.ErrInvalidNetworkConfig, tlsErr.Error(), tlsErr.Hint())
	case errors.As(err, &nameErr) && nameErr.What == store.ContainerID:
		return types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_CONTAINERID "+nameErr.Reason, "")
	case errors.As(err, &nameErr) && (nameErr.What == store.PodNamespace || nameErr.What == store.PodName):
		return types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_ARGS: the "+nameErr.What+" "+nameErr.Reason, "")
	case errors.As(err, &nameErr) && nameErr.What == store.IfName:
		return types.NewError(types.ErrInvalidEnvironmentVariables, "CNI_IFNAME "+nameErr.Reason, "")
	case errors.As(err, &fileErr), errors.As(err, &nameErr), errors.As(err, &rangeErr), errors.Is(err, ErrNoNode):
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	case errors.Is(err, rpctypes.ErrNoSpace):
		// Not 11: no retry gets past a NOSPACE alarm; an operator must act.
		return types.NewError(types.ErrIOFailure, fmt.Sprintf("etcd's database is full: %v", err), noSpaceHint)
	case isTransient(err):
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("etcd is unreachable or too slow: %v", err),
			"check that etcdURL points at a running etcd and that this node can reach it; the runtime may retry")
	case isAccessDenied(err):
		return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("etcd refused access: %v", err),
			"check etcdUsername, etcdPassword and the etcd role's permissions on /etcd-cni/networks/")
	case errors.As(err, &dialErr):
		// A client that cannot be made, for a reason other than etcd
		// being unreachable, is the configuration's fault.
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	return types.NewError(types.ErrIOFailure, err.Error(), "")
}

// AsStatusError is AsCNIError for STATUS, which the CNI spec lets answer
// only "the configuration is wrong" (7) or "not available" (50).
func AsStatusError(err error) *types.Error {
	e := AsCNIError(err)
	if e == nil || e.Code == types.ErrInvalidNetworkConfig || e.Code == CodeStatusUnavailable {
		return e
	}
	return types.NewError(CodeStatusUnavailable, e.Error(), "")
}

// withConfigAdvice is err's text, followed by what to change when err is a
// configuration problem (TLS files or certificates, etcd's role): STATUS
// reports such a failure as code 50, whose message must still say what to
// fix.
func withConfigAdvice(err error) string {
	if e := AsCNIError(err); e.Code == types.ErrInvalidNetworkConfig && e.Details != "" {
		return err.Error() + "; " + e.Details
	}
	return err.Error()
}

// isAccessDenied reports etcd refusing who we are or what we asked for.
func isAccessDenied(err error) bool {
	return errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrAuthFailed) ||
		errors.Is(err, rpctypes.ErrUserEmpty) || errors.Is(err, rpctypes.ErrInvalidAuthToken) ||
		errors.Is(err, rpctypes.ErrAuthNotEnabled)
}

// noSpaceHint is what an operator does about etcd's NOSPACE alarm, which
// refuses every write but deletes (so DEL and GC still work) until it is
// disarmed.
const noSpaceHint = "etcd reached its space quota (--quota-backend-bytes) and raised the NOSPACE alarm; " +
	"compact its history (etcdctl compact REVISION), defragment every member (etcdctl defrag --cluster), " +
	"then run etcdctl alarm disarm, or raise the quota; DEL and GC still work meanwhile"

// isTransient reports failures that a later attempt can get past.
func isTransient(err error) bool {
	// etcd reports a full database as ResourceExhausted, like "too many
	// requests", but it lasts until an operator clears the alarm.
	if errors.Is(err, rpctypes.ErrNoSpace) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrNoLeader) ||
		errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrTooManyRequests) ||
		errors.Is(err, errContention) || errors.Is(err, errHoldChanged) {
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

// ErrNoNode: a session needs a node name to record in its allocations.
var ErrNoNode = errors.New(`the node name is empty; set ipam "nodeName" or ETCD_IPAM_NODE_NAME`)

// ExhaustedError: a range set has no free address.
type ExhaustedError struct {
	Network  string
	RangeSet int
	Set      core.RangeSet
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("no IP addresses available in range set %d (%s) of network %q", e.RangeSet, e.Set, e.Network)
}

// RequestedError: a requested address cannot be had (taken, outside every
// range set, or a gateway). Msg names the address and why; Err is the
// core's *core.RequestedError when the core refused it.
type RequestedError struct {
	Msg string
	Err error
	// Hint says what to do instead; empty gives an ADD's advice.
	Hint string
}

func (e *RequestedError) Error() string { return e.Msg }

func (e *RequestedError) Unwrap() error { return e.Err }

// UnknownAttachmentError: CHECK found no attachment, or one that lost
// addresses.
type UnknownAttachmentError struct{ Msg, Hint string }

func (e *UnknownAttachmentError) Error() string { return e.Msg }

// UnavailableError: STATUS found the network unable to serve an ADD.
type UnavailableError struct {
	Msg, Hint string
	Err       error
}

func (e *UnavailableError) Error() string { return e.Msg }

func (e *UnavailableError) Unwrap() error { return e.Err }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func joinAddrs(addrs []netip.Addr) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ", ")
}

// Explain returns err with the advice AsCNIError would give a runtime
// (what to check, what to change), for frontends that print text rather
// than CNI JSON; err itself stays wrapped.
func Explain(err error) error {
	if err == nil {
		return nil
	}
	e := AsCNIError(err)
	if e.Details == "" || strings.Contains(err.Error(), e.Details) {
		return err
	}
	return fmt.Errorf("%w; %s", err, e.Details)
}

// configCode is the CNI code of each kind of bad input that package config
// reports.
func configCode(k config.Kind) uint {
	switch k {
	case config.Undecodable:
		return types.ErrDecodingFailure
	case config.BadEnvironment:
		return types.ErrInvalidEnvironmentVariables
	}
	return types.ErrInvalidNetworkConfig
}
