// Package etcdtest gives tests real, embedded, single-node etcd servers.
//
// The project's tests talk to a real etcd, never to a fake: the allocator's
// correctness rests on etcd's transaction semantics (compare-and-swap on
// revisions and versions, key-range reads), and a fake would have to
// re-implement exactly the behaviour the tests are meant to check. An
// embedded etcd runs in the test process, needs no binary on PATH, and starts
// in well under a second, so every test can have its own fresh server.
//
// The server itself is internal/devetcd's, which the shipped CLI uses too;
// this package adds only what needs a testing.TB (cleanup, failing the test)
// and test fixtures (TLS files, users), so that no binary links it.
package etcdtest

import (
	"crypto/tls"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
)

// clientDialTimeout is the dial timeout of clients made by Client.
const clientDialTimeout = 5 * time.Second

// Server is an embedded single-node etcd listening on 127.0.0.1 only; its
// Endpoint, Stop and Close are devetcd's.
type Server struct {
	*devetcd.Server
	// clientTLS is what Client presents to a server started by StartTLS;
	// nil for a plaintext server.
	clientTLS *tls.Config
}

// Start starts a fresh embedded etcd for one test, in a data directory from
// t.TempDir and on free loopback ports, and registers t.Cleanup to stop it.
// It fails the test if etcd does not become ready within 30 s.
func Start(t testing.TB) *Server {
	t.Helper()
	d, err := devetcd.Start(t.TempDir())
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	// Registered after t.TempDir's own cleanup, so it runs before it:
	// etcd has closed its files by the time the directory is removed.
	t.Cleanup(d.Stop)
	return &Server{Server: d}
}

// Client returns a client of this server with a 5 s dial timeout (over
// TLS, with the client certificate, for a server from StartTLS), closed
// when the test ends (before the server stops, as cleanups run in reverse).
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.Endpoint()},
		DialTimeout: clientDialTimeout,
		TLS:         s.clientTLS,
		// Warnings such as retries after Stop are expected in tests
		// that stop etcd on purpose; real errors still show.
		Logger: zap.New(zapcore.NewCore(
			zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
			zapcore.Lock(os.Stderr), zapcore.ErrorLevel)),
	})
	if err != nil {
		t.Fatalf("etcdtest: connecting to %s: %v", s.Endpoint(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// StartCluster starts an n-member embedded cluster for one test, with data
// under t.TempDir, and stops it in t.Cleanup.
func StartCluster(t testing.TB, n int) *devetcd.Cluster {
	t.Helper()
	c, err := devetcd.StartCluster(t.TempDir(), n)
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}
