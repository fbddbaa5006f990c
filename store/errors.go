package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/etcd-cni/etcd-ipam/internal/redact"
)

// The store's errors are typed where they start, so that package ipam can
// map each to a CNI error code in one place; the store itself knows
// nothing of CNI.

// ErrOwnerChanged reports that an address was released, or handed to
// someone else, after the caller read who held it: an operator's release
// confirmed for one owner must never free another owner's address.
var ErrOwnerChanged = errors.New("the address changed owner since it was read")

// ErrAlreadyFree comes with ErrOwnerChanged when the address a release
// was to free is free already: released by someone else, or by the same
// release's earlier attempt whose reply was lost.
var ErrAlreadyFree = errors.New("it is free already")

// ErrDamagedAttachment marks an attachment record that cannot be decoded.
var ErrDamagedAttachment = errors.New("attachment record is damaged")

// ErrKeptChanging reports a record that changed between the read and the
// conditional write on every one of changedAttempts attempts; nothing was
// written.
var ErrKeptChanging = errors.New("kept changing")

// changedAttempts bounds how often a release reads again a record that
// changed between its read and its conditional write.
const changedAttempts = 5

// NameError is a network name, container ID or interface name that keys
// could hold but the JSON records could not (see checkName).
type NameError struct {
	// What names the kind of name: NetworkName, ContainerID or IfName.
	What string
	// Reason says what is wrong with it.
	Reason string
}

// The kinds of names a NameError is about.
const (
	NetworkName  = "network name"
	ContainerID  = "container ID"
	IfName       = "interface name"
	PodNamespace = "pod namespace"
	PodName      = "pod name"
)

func (e *NameError) Error() string { return e.What + " " + e.Reason }

// DialError is a failure to create the etcd client itself (rather than a
// failed request): logging in with etcdUsername, or an endpoint the client
// cannot use.
type DialError struct {
	Endpoints []string
	Err       error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("connecting to etcd at %s: %v", strings.Join(redact.Endpoints(e.Endpoints), ","), e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// TLSFileError is a TLS file (client certificate, key or CA) that can never
// work: missing, unreadable, mismatched, expired or of the wrong kind. Key
// is the configuration key that names the file.
type TLSFileError struct {
	Key, Path string
	// Message says what is wrong with the file and, usually, what to do.
	Message string
	Err     error
}

func (e *TLSFileError) Error() string { return e.Message }

func (e *TLSFileError) Unwrap() error { return e.Err }

// TLSError is a TLS failure on every endpoint that no retry can fix: etcd's
// certificate does not verify or does not name the endpoint, the endpoint
// does not speak TLS, or etcd rejected the client certificate.
type TLSError struct {
	// Failures holds "endpoint: error" per endpoint, in etcdURL order.
	Failures []string
	// Hints say what to change, one per kind of failure.
	Hints []string
}

func (e *TLSError) Error() string {
	return "TLS with etcd failed on every endpoint in a way no retry can fix: " + strings.Join(e.Failures, "; ")
}

// Hint is what the operator should change.
func (e *TLSError) Hint() string { return strings.Join(e.Hints, "; ") }
