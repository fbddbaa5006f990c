package etcdtest

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// put writes key=value with a short deadline and fails the test on error.
func put(t *testing.T, c *clientv3.Client, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, key, value); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// get reads key and returns its value and whether it exists.
func get(t *testing.T, c *clientv3.Client, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return "", false
	}
	return string(resp.Kvs[0].Value), true
}

// TestTwoServersInParallelAreIndependent starts two servers at the same
// time in one process and checks that each has its own keyspace.
func TestTwoServersInParallelAreIndependent(t *testing.T) {
	var (
		wg      sync.WaitGroup
		servers [2]*Server
		errs    [2]error
		took    [2]time.Duration
	)
	for i := range servers {
		dir := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			servers[i], errs[i] = StartServer(dir)
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

	ca, cb := a.Client(t), b.Client(t)
	put(t, ca, "/k", "a")
	put(t, cb, "/k", "b")
	put(t, ca, "/only-a", "x")
	if v, _ := get(t, ca, "/k"); v != "a" {
		t.Errorf("server a: /k = %q, want %q", v, "a")
	}
	if v, _ := get(t, cb, "/k"); v != "b" {
		t.Errorf("server b: /k = %q, want %q", v, "b")
	}
	if v, ok := get(t, cb, "/only-a"); ok {
		t.Errorf("server b sees /only-a = %q, which was written to server a", v)
	}
}

// TestStartIsFresh checks that Start gives an empty, working server, and
// logs how long it took (the figure reported for test start-up cost).
func TestStartIsFresh(t *testing.T) {
	start := time.Now()
	s := Start(t)
	t.Logf("Start took %v", time.Since(start))
	c := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, "", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatalf("get all keys: %v", err)
	}
	if resp.Count != 0 {
		t.Fatalf("fresh server has %d keys, want 0", resp.Count)
	}
}

// TestStopMakesRequestsFail covers the "etcd went away mid-test" case that
// store and plugin tests rely on.
func TestStopMakesRequestsFail(t *testing.T) {
	s := Start(t)
	c := s.Client(t)
	put(t, c, "/k", "v")

	s.Stop()
	s.Stop() // idempotent

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.Get(ctx, "/k"); err == nil {
		t.Fatal("get after Stop succeeded, want an error")
	}

	u, err := url.Parse(s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("connecting to %s after Stop succeeded, want refused", u.Host)
	}
}

// TestStartCloseTwice checks that servers can be started and closed one
// after another, and that Close is idempotent.
func TestStartCloseTwice(t *testing.T) {
	for i := range 2 {
		s := Start(t)
		put(t, s.Client(t), "/k", "v")
		if err := s.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("round %d: second Close: %v", i, err)
		}
	}
}

// TestStartServerReusesDataDir checks that StartServer on a directory that
// already holds data comes back with that data, which dev-etcd --data-dir
// relies on.
func TestStartServerReusesDataDir(t *testing.T) {
	dir := t.TempDir()
	s, err := StartServer(dir)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer s.Close()
		put(t, s.Client(t), "/kept", "yes")
	}()

	s, err = StartServer(dir)
	if err != nil {
		t.Fatalf("restart on the same data dir: %v", err)
	}
	defer s.Close()
	if v, ok := get(t, s.Client(t), "/kept"); !ok || v != "yes" {
		t.Fatalf("after restart /kept = %q (exists %v), want %q", v, ok, "yes")
	}
}

// BenchmarkStart measures the start-up cost of one embedded etcd, which
// every test that uses etcd pays.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		Start(b).Stop()
	}
}
