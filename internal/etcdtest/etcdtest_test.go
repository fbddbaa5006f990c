package etcdtest

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

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
	Put(t, c, "/k", "v")

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
		Put(t, s.Client(t), "/k", "v")
		if err := s.Close(); err != nil {
			t.Fatalf("round %d: Close: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("round %d: second Close: %v", i, err)
		}
	}
}

// BenchmarkStart measures the start-up cost of one embedded etcd, which
// every test that uses etcd pays.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		Start(b).Stop()
	}
}
