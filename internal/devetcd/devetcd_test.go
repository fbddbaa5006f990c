package devetcd_test

import (
	"net/url"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// client returns a client of s, closed when the test ends.
func client(t *testing.T, s *devetcd.Server) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("connecting to %s: %v", s.Endpoint(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestTwoServersInParallelAreIndependent starts two servers at the same
// time in one process and checks that each has its own keyspace.
func TestTwoServersInParallelAreIndependent(t *testing.T) {
	var (
		wg      sync.WaitGroup
		servers [2]*devetcd.Server
		errs    [2]error
		took    [2]time.Duration
	)
	for i := range servers {
		dir := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			servers[i], errs[i] = devetcd.Start(dir)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, s := range servers {
		if errs[i] != nil {
			t.Fatalf("server %d: %v", i, errs[i])
		}
		t.Cleanup(s.Stop)
		t.Logf("server %d at %s started in %v", i, s.Endpoint(), took[i])
	}
	a, b := servers[0], servers[1]
	if a.Endpoint() == b.Endpoint() {
		t.Fatalf("both servers have endpoint %s", a.Endpoint())
	}
	for _, s := range servers {
		u, err := url.Parse(s.Endpoint())
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
			t.Fatalf("endpoint %q is not http://127.0.0.1:PORT (parse error %v)", s.Endpoint(), err)
		}
	}

	ca, cb := client(t, a), client(t, b)
	etcdtest.Put(t, ca, "/k", "a")
	etcdtest.Put(t, cb, "/k", "b")
	etcdtest.Put(t, ca, "/only-a", "x")
	if v, _ := etcdtest.Get(t, ca, "/k"); v != "a" {
		t.Errorf("server a: /k = %q, want %q", v, "a")
	}
	if v, _ := etcdtest.Get(t, cb, "/k"); v != "b" {
		t.Errorf("server b: /k = %q, want %q", v, "b")
	}
	if v, ok := etcdtest.Get(t, cb, "/only-a"); ok {
		t.Errorf("server b sees /only-a = %q, which was written to server a", v)
	}
}

// TestStartReusesDataDir checks that Start on a directory that
// already holds data comes back with that data, which dev-etcd --data-dir
// relies on.
func TestStartReusesDataDir(t *testing.T) {
	dir := t.TempDir()
	s, err := devetcd.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer s.Close()
		etcdtest.Put(t, client(t, s), "/kept", "yes")
	}()

	s, err = devetcd.Start(dir)
	if err != nil {
		t.Fatalf("restart on the same data dir: %v", err)
	}
	defer s.Close()
	if v, ok := etcdtest.Get(t, client(t, s), "/kept"); !ok || v != "yes" {
		t.Fatalf("after restart /kept = %q (exists %v), want %q", v, ok, "yes")
	}
}
