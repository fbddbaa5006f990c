// Package ipam carries out the plugin's operations (ADD, DEL, CHECK, GC,
// STATUS) and the operator's (listing, releasing, planning) by combining
// the allocation core, which decides, with the etcd store, which persists.
// It owns what every frontend must share: one deadline per invocation, the
// retry policy, and the one mapping from errors to CNI codes (errors.go).
// It knows nothing of stdin, stdout or environment variables, so that the
// CNI plugin and the etcd-ipam CLI share it.
package ipam

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/store"
)

// Session is one network's allocator, connected to etcd.
type Session struct {
	core    hosts.Core
	cli     *clientv3.Client
	net     *store.Network
	name    string
	node    string
	sets    []core.RangeSet
	timeout time.Duration
	now     func() time.Time
	// sticky is ipam "sticky": how long a pod's addresses stay held for
	// it after DEL or GC; 0 frees them.
	sticky time.Duration
	// cooldown is ipam "cooldown": how long an address released to
	// nobody stays taken before another pod may have it; 0 frees it.
	cooldown time.Duration
}

// Options are the parts of a Session that do not come from the network
// configuration.
type Options struct {
	// Core runs the allocation logic (hosts/native or hosts/wasm).
	Core hosts.Core
	// Node names this host in every allocation it makes.
	Node string
	// Now is the clock used to stamp allocations; time.Now when nil.
	Now func() time.Time
	// DialOptions are passed to the etcd client (instrumentation).
	DialOptions []grpc.DialOption
}

// Open validates the network's range sets and connects to etcd. Close the
// session when done. Its errors, like every Session method's, are typed;
// AsCNIError gives their CNI codes.
func Open(conf *config.Network, opts Options) (*Session, error) {
	sets, err := opts.Core.CanonicalizeRangeSets(conf.RangeSets)
	if err != nil {
		return nil, fmt.Errorf("invalid ipam configuration of network %q: %w", conf.Name, err)
	}
	if opts.Node == "" {
		return nil, ErrNoNode
	}
	cli, err := store.Dial(dialConfig(conf.Etcd), opts.DialOptions...)
	if err != nil {
		return nil, err
	}
	net, err := store.Open(cli, conf.Name)
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Session{
		core: opts.Core, cli: cli, net: net, name: conf.Name, node: opts.Node,
		sets: sets, timeout: conf.Etcd.Timeout, now: now, sticky: conf.Sticky, cooldown: conf.Cooldown,
	}, nil
}

// dialConfig is the store's view of etcdConfig.
func dialConfig(e config.Etcd) store.DialConfig {
	return store.DialConfig{
		Endpoints: e.Endpoints, TLS: e.Secure(),
		CertFile: e.CertFile, KeyFile: e.KeyFile, CAFile: e.CAFile,
		Username: e.Username, Password: e.Password, Timeout: e.Timeout,
	}
}

// CheckTLSFiles reports every TLS file of etcdConfig that cannot be read,
// as the plugin checks them before connecting, without connecting.
func CheckTLSFiles(e config.Etcd) []error { return store.CheckTLSFiles(dialConfig(e)) }

// Close disconnects from etcd.
func (s *Session) Close() error { return s.cli.Close() }

// Connect opens the connection to etcd (TCP, and TLS when configured)
// without making a request, waiting until it is ready or ctx ends. A
// session connects by itself on its first request; Connect only lets a
// caller pay for it before entering a turn that others wait for. A failure
// is left for the first request to report.
func (s *Session) Connect(ctx context.Context) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	conn := s.cli.ActiveConnection()
	conn.Connect()
	for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
		if state == connectivity.TransientFailure || state == connectivity.Shutdown || !conn.WaitForStateChange(ctx, state) {
			return
		}
	}
}

// Node is the node name this session records in its allocations.
func (s *Session) Node() string { return s.node }

// RangeSets returns the canonical range sets.
func (s *Session) RangeSets() []core.RangeSet { return s.sets }

// Context returns a context bounded by the configured etcd timeout: every
// operation of one invocation shares this deadline.
func (s *Session) Context(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.timeout)
}

// bound gives ctx the session's timeout unless it already has a deadline,
// so that no etcd call made by a Session can wait forever.
//
// Every request also requires the member it reaches to have a leader: a
// member cut off from the rest of the cluster then refuses at once, and
// the retry (see settle) goes to another endpoint, instead of the request
// waiting out the whole timeout on a member that cannot commit.
func (s *Session) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = clientv3.WithRequireLeader(ctx)
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return s.Context(ctx)
}
