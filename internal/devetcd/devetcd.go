// Package devetcd starts a real, embedded, single-node etcd on loopback for
// development: the CLI's demo and dev-etcd commands, the bench harness, and
// (through internal/etcdtest) every test that needs etcd.
//
// It imports no test code, so that the shipped etcd-ipam binary links none;
// the testing.TB helpers live in internal/etcdtest, built on this package,
// so that there is one way to start etcd.
package devetcd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// readyTimeout bounds how long a start waits for etcd to serve; a
	// healthy start here takes well under a second, so 30 s only trips
	// when something is really wrong (or the machine is badly overloaded).
	readyTimeout = 30 * time.Second

	// portAttempts is how often a start is retried when a picked port was
	// taken by someone else between picking and binding it.
	portAttempts = 5
)

// Server is an embedded single-node etcd listening on 127.0.0.1 only.
type Server struct {
	etcd     *embed.Etcd
	endpoint string
	// muted silences etcd's logger. It is set from Stop on, because etcd
	// logs its own orderly shutdown ("http: Server closed", "use of
	// closed network connection") at error level, and output should show
	// only real trouble.
	muted    *atomic.Bool
	stopOnce sync.Once
}

// Start starts etcd with its data in dir (created if missing; existing data
// there is reused) on free loopback ports, plaintext. The caller must Close
// it; removing dir is left to the caller too.
func Start(dir string) (*Server, error) {
	return start(dir, nil, Options{})
}

// StartTLS is Start for a server that speaks https only, with the server
// certificate of info, and that requires clients to present a certificate
// signed by info.TrustedCAFile. Peer traffic stays plaintext (a single
// member has no peers).
func StartTLS(dir string, info transport.TLSInfo) (*Server, error) {
	return start(dir, &info, Options{})
}

// start starts etcd with its data in dir, plaintext or (with clientTLS)
// https only, retrying when a picked port was taken meanwhile.
func start(dir string, clientTLS *transport.TLSInfo, opts Options) (*Server, error) {
	var err error
	for range portAttempts {
		var s *Server
		s, err = startOnce(dir, clientTLS, opts)
		if err == nil {
			return s, nil
		}
		// Ports are picked by binding to port 0 and releasing them, so
		// another process may grab one before etcd binds it; only that
		// race is worth another try.
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("starting embedded etcd: no free loopback ports after %d attempts: %w", portAttempts, err)
}

// startOnce makes one attempt to start etcd on freshly picked ports.
func startOnce(dir string, clientTLS *transport.TLSInfo, opts Options) (*Server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if clientTLS != nil {
		scheme = "https"
	}
	clientURL := url.URL{Scheme: scheme, Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))}
	peerURL := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))}

	muted := new(atomic.Bool)
	// Muted while embed.StartEtcd runs: whatever fails there is returned
	// as an error, and a lost port race must not print a scary log line.
	muted.Store(true)

	// The client port is unique on this machine while the server lives,
	// so it makes the member name and cluster token unique too; servers
	// in one process (parallel tests) then never look like one cluster.
	name := "devetcd-" + strconv.Itoa(ports[0])
	cfg, err := memberConfig(name, dir, clientURL, peerURL, muted, opts)
	if err != nil {
		return nil, err
	}
	cfg.InitialCluster = cfg.InitialClusterFromName(name)
	cfg.InitialClusterToken = name
	// A single member has no peer to lose touch with, so short raft
	// timers are safe; they cut the time to elect itself leader from up
	// to ~1 s (defaults 100 ms / 1000 ms) to under 100 ms.
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	if clientTLS != nil {
		cfg.ClientTLSInfo = *clientTLS
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd on %s: %w", clientURL.String(), err)
	}
	muted.Store(false)

	if err := waitReady(e); err != nil {
		muted.Store(true)
		e.Close()
		return nil, fmt.Errorf("embedded etcd on %s: %w", clientURL.String(), err)
	}
	return &Server{etcd: e, endpoint: clientURL.String(), muted: muted}, nil
}

// memberConfig is the configuration every embedded member shares: its
// name, data directory and loopback URLs, a logger that muted silences,
// and the settings that make throwaway data cheap, with opts applied.
func memberConfig(name, dir string, clientURL, peerURL url.URL, muted *atomic.Bool, opts Options) (*embed.Config, error) {
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peerURL}, []url.URL{peerURL}
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newLogger(muted).With(zap.String("etcd", name)))
	// Development data is thrown away, so durability buys nothing and
	// fsync costs a lot on slow disks.
	cfg.UnsafeNoFsync = true
	// With a leader elected quickly, etcd's storage-version monitor can
	// run before the backend's first commit (every 100 ms by default)
	// and log "failed to update storage version: missing term
	// information" at error level; committing sooner removes that race
	// and its noise.
	cfg.BackendBatchInterval = 5 * time.Millisecond
	if err := opts.apply(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// waitReady waits until member e serves, fails, or readyTimeout passes.
func waitReady(e *embed.Etcd) error {
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case err := <-e.Err():
		return fmt.Errorf("failed while starting: %w", err)
	case <-timer.C:
		return fmt.Errorf("not ready within %v", readyTimeout)
	}
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago. Port 0 cannot be handed to etcd instead: it listens fine, but it
// advertises ":0" in the member list and its HTTP/JSON gateway dials the
// configured ":0" address rather than the real one, so it would be broken.
// All n listeners are held open until the end so the kernel cannot hand out
// the same port twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// newLogger returns the logger handed to etcd: error level only, to stderr,
// and silent while muted is set, so that a healthy server prints nothing.
func newLogger(muted *atomic.Bool) *zap.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zapcore.ErrorLevel)
	return zap.New(mutableCore{Core: core, muted: muted})
}

// mutableCore is a zapcore.Core that drops every entry while muted is set.
type mutableCore struct {
	zapcore.Core
	muted *atomic.Bool
}

// Enabled reports false while muted, so callers skip building entries.
func (c mutableCore) Enabled(l zapcore.Level) bool {
	return !c.muted.Load() && c.Core.Enabled(l)
}

// With keeps the mute switch on derived loggers, which etcd makes a lot of.
func (c mutableCore) With(fields []zapcore.Field) zapcore.Core {
	return mutableCore{Core: c.Core.With(fields), muted: c.muted}
}

// Check adds this core (not the inner one) so the mute switch is consulted.
func (c mutableCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(ent.Level) {
		return ce.AddCore(ent, c)
	}
	return ce
}

// Write drops entries that were checked before the server was muted.
func (c mutableCore) Write(ent zapcore.Entry, fields []zapcore.Field) error {
	if c.muted.Load() {
		return nil
	}
	return c.Core.Write(ent, fields)
}

// Endpoint returns the client URL, e.g. "http://127.0.0.1:41234", as the
// plugin's "etcdURL" and clientv3 endpoints expect it.
func (s *Server) Endpoint() string { return s.endpoint }

// Stop stops etcd and closes its listeners, so that afterwards the endpoint
// refuses connections; tests use it to make etcd go away mid-test. It is
// idempotent and safe to call from several goroutines.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.muted.Store(true)
		s.etcd.Close()
	})
}

// Close stops etcd like Stop, so that a Server is an io.Closer for callers
// that defer cleanup; it leaves the data directory alone and always returns
// nil. It is idempotent.
func (s *Server) Close() error {
	s.Stop()
	return nil
}
