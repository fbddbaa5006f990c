package main

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/etcd-cni/etcd-ipam/internal/bench"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestLockNetworkTakesTurns: a second taker of the same node's lock waits
// and gives up after its wait; other nodes and networks are not held up.
func TestLockNetworkTakesTurns(t *testing.T) {
	endpoints := []string{"http://127.0.0.1:1", t.Name()} // a key no other test uses
	release, held := lockNetwork("node-a", "net", endpoints, time.Second)
	if !held {
		t.Fatal("the first taker did not get the lock")
	}
	again, held := lockNetwork("node-a", "net", endpoints, 20*time.Millisecond)
	again() // a taker that gave up still releases its file
	if held {
		t.Fatal("a second taker got the lock while the first held it")
	}
	for _, other := range [][2]string{{"node-b", "net"}, {"node-a", "other-net"}} {
		r, held := lockNetwork(other[0], other[1], endpoints, 20*time.Millisecond)
		if !held {
			t.Errorf("node %s network %s waited for node-a's lock on net", other[0], other[1])
		}
		r()
	}
	release()
	r, held := lockNetwork("node-a", "net", endpoints, 20*time.Millisecond)
	if !held {
		t.Fatal("the lock was not free after its release")
	}
	r()
}

// TestOneNodesConcurrentADDsTakeTurns: plugin processes of one node
// starting together on one network take turns, so each ADD commits with
// its first write (etcd counts one applied proposal per ADD) and they hand
// out exactly the first addresses in host-local's order, as one node's
// sequential ADDs do.
func TestOneNodesConcurrentADDsTakeTurns(t *testing.T) {
	const n = 24
	srv := etcdtest.Start(t)
	// A long etcdTimeout: each ADD waits for its turn up to half of it,
	// and an attempt may take half of what is left, so that a machine
	// loaded by other tests makes no ADD give up its turn or abandon a
	// write, which would be a second write this test counts.
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "burst", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": %q, "etcdTimeout": "60s"},
		"ranges": [[{"subnet": "198.51.100.0/24"}]]}}`, srv.Endpoint())
	before, err := bench.Scrape(t.Context(), srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		got []string
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := mustSucceed(t, invocation{Command: "ADD", ContainerID: fmt.Sprintf("c%02d", i), Config: conf})
			r := parseResult(t, out)
			mu.Lock()
			defer mu.Unlock()
			for _, ip := range r.IPs {
				got = append(got, ip.Address)
			}
		}()
	}
	wg.Wait()
	after, err := bench.Scrape(t.Context(), srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	if writes := after.Sub(before).Writes; writes != n {
		t.Errorf("%d concurrent ADDs of one node made %v writes, want one each", n, writes)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("198.51.100.%d/24", i+2))
	}
	slices.SortFunc(got, func(a, b string) int {
		return netip.MustParsePrefix(a).Addr().Compare(netip.MustParsePrefix(b).Addr())
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("addresses of %d concurrent ADDs of one node (-want +got):\n%s", n, diff)
	}
}
