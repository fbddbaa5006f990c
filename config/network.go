package config

import (
	"net/netip"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/internal/redact"
)

// DefaultTimeout bounds a whole plugin invocation's work against etcd when
// etcdConfig.etcdTimeout is not set: a runtime must hear back, even when
// etcd is unreachable, well before its own timeouts fire. 8 s leaves room
// for process start and shutdown inside the 10 s the README promises.
const DefaultTimeout = 8 * time.Second

// Network is what one plugin invocation needs to know.
type Network struct {
	CNIVersion string
	Name       string

	// RangeSets in host-local's order: runtimeConfig.ipRanges first, then
	// the deprecated top-level range, then "ranges". Not yet validated.
	RangeSets [][]core.RangeSpec
	// Requested addresses from CNI_ARGS ip=, args.cni.ips and
	// runtimeConfig.ips, in that order.
	Requested []netip.Addr

	Routes     []*types.Route
	ResolvConf string
	Etcd       Etcd
	// NodeName is the ipam "nodeName" key; empty means "ask the host".
	NodeName string
	// Core selects the host that runs the allocation core.
	Core string
	// WasmCacheDir is the ipam "wasmCacheDir" key: where core "wasm" keeps
	// compiled code between invocations. Empty means the host's default.
	WasmCacheDir string
	// LogFile is where the plugin appends its log; empty means no log.
	// Logs never go to stdout, which carries the CNI result.
	LogFile string
	// LogLevel is "debug", "info" (the default), "warn" or "error".
	LogLevel string

	// Pod is the Kubernetes pod of the invocation, from CNI_ARGS; nil
	// when the runtime names none.
	Pod *Pod
	// Sticky is ipam "sticky": how long a pod's addresses stay held for
	// it after DEL or GC; 0 frees them at once.
	Sticky time.Duration
	// Cooldown is ipam "cooldown": how long an address released to
	// nobody stays taken (cooling) before another pod may have it, so
	// that stale ARP entries, conntrack state and endpoints drain; 0
	// frees it at once.
	Cooldown time.Duration

	// ValidAttachments is GC's list of attachments to keep.
	ValidAttachments []types.GCAttachment
}

// Pod is a Kubernetes pod as CNI_ARGS names it.
type Pod struct {
	Namespace, Name, UID string
}

// Etcd says how to reach etcd.
type Etcd struct {
	Endpoints []string
	CertFile  string
	KeyFile   string
	CAFile    string
	Username  string
	Password  string
	Timeout   time.Duration
}

// RedactedEndpoints are the endpoints as logs and messages show them: a
// password in a URL hidden, its user kept.
func (e Etcd) RedactedEndpoints() []string { return redact.Endpoints(e.Endpoints) }

// Secure reports whether the endpoints use TLS.
func (e Etcd) Secure() bool {
	for _, ep := range e.Endpoints {
		if strings.HasPrefix(ep, "https://") {
			return true
		}
	}
	return false
}
