package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestExcludedAddressesAreSkipped: a /29 with .3 and .5 excluded hands out
// .2, .4 and .6 in round-robin order, then the pool is exhausted; asking
// for an excluded address fails like asking for the gateway.
func TestExcludedAddressesAreSkipped(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openSession(t, testNetwork(srv, "holes", []core.RangeSpec{{Subnet: "192.0.2.0/29", Exclude: []string{"192.0.2.5", "192.0.2.3"}}}), "node-a")

	_, err := s.Add(ctx(t), "wants-excluded", "eth0", []netip.Addr{netip.MustParseAddr("192.0.2.5")})
	var re *core.RequestedError
	if cniCode(err) != CodeRequestedUnavailable || !errors.As(err, &re) || !re.Excluded || !strings.Contains(err.Error(), "192.0.2.5 is excluded") {
		t.Fatalf("ADD asking for excluded 192.0.2.5: %v, want code %d naming the exclusion", err, CodeRequestedUnavailable)
	}
	var got []string
	for i := range 3 {
		got = append(got, mustAdd(t, s, fmt.Sprintf("c%d", i))...)
	}
	if want := []string{"192.0.2.2/29", "192.0.2.4/29", "192.0.2.6/29"}; !equal(got, want) {
		t.Fatalf("ADDs got %v, want %v", got, want)
	}
	if _, err := s.Add(ctx(t), "late", "eth0", nil); cniCode(err) != CodeExhausted {
		t.Fatalf("fourth ADD: %v, want code %d", err, CodeExhausted)
	}
	usage, err := s.Usage(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(usage) != 1 || usage[0].Capacity != 3 || usage[0].Used != 3 || usage[0].Excluded != 2 {
		t.Errorf("usage %+v, want capacity 3, used 3, excluded 2", usage)
	}
	if err := s.Status(ctx(t)); cniCode(err) != CodeStatusUnavailable {
		t.Errorf("STATUS with only excluded addresses left: %v, want code %d", err, CodeStatusUnavailable)
	}
	// Round robin wraps over the exclusions.
	if err := s.Del(ctx(t), "c0", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got := mustAdd(t, s, "again"); got[0] != "192.0.2.2/29" {
		t.Errorf("ADD after releasing .2 = %v", got)
	}
}

// TestExcludedUnderConcurrency: sessions of many nodes fill a range with
// exclusions at once; no excluded address is handed out, none twice, and
// every other one is.
func TestExcludedUnderConcurrency(t *testing.T) {
	srv := etcdtest.Start(t)
	// .1-.62 less the gateway (.1) and .8-.15, .20, .32-.47, .61: 35.
	spec := core.RangeSpec{Subnet: "198.51.100.0/26", Exclude: []string{"198.51.100.8/29", "198.51.100.20", "198.51.100.32/28", "198.51.100.33", "198.51.100.61"}}
	conf := testNetwork(srv, "busy-holes", []core.RangeSpec{spec})
	const workers, perWorker, capacity = 8, 6, 35
	var mu sync.Mutex
	holders := map[netip.Addr]string{}
	var failures []error
	var wg sync.WaitGroup
	sessions := make([]*Session, workers)
	for w := range sessions {
		sessions[w] = openSession(t, conf, fmt.Sprintf("node-%d", w))
	}
	r := sessions[0].RangeSets()[0][0]
	if r.Capacity() != capacity {
		t.Fatalf("capacity %d, want %d", r.Capacity(), capacity)
	}
	for w, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				id := fmt.Sprintf("w%d-c%d", w, i)
				ips, err := s.Add(context.Background(), id, "eth0", nil)
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					a := ips[0].Address.Addr()
					if r.IsExcluded(a) || a == r.Gateway {
						t.Errorf("%s was handed excluded address %s", id, a)
					}
					if prev, dup := holders[a]; dup {
						t.Errorf("address %s given to %s and %s", a, prev, id)
					}
					holders[a] = id
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(holders) != capacity {
		t.Errorf("%d addresses handed out, want all %d", len(holders), capacity)
	}
	if len(failures) != workers*perWorker-capacity {
		t.Errorf("%d ADDs failed, want %d", len(failures), workers*perWorker-capacity)
	}
	for _, err := range failures {
		if cniCode(err) != CodeExhausted {
			t.Errorf("failure %v: want code %d (pool exhausted)", err, CodeExhausted)
		}
	}
	atts, err := sessions[0].net.Attachments(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != capacity {
		t.Errorf("etcd holds %d attachments, want %d", len(atts), capacity)
	}
}

// TestSearchAcrossExclusions: the narrowing counts of a long search must
// treat excluded addresses as unavailable, whether they are free (a piece
// of only excluded addresses is not room) or were allocated before they
// were excluded (such a piece with one free address is not full).
func TestSearchAcrossExclusions(t *testing.T) {
	srv := etcdtest.Start(t)
	spec := core.RangeSpec{Subnet: "198.51.96.0/20", Exclude: []string{"198.51.100.0/24", "198.51.107.192/28", "198.51.107.212/30"}}
	s := openSession(t, testNetwork(srv, "long-holes", []core.RangeSpec{spec}), "node-a")
	free := netip.MustParseAddr("198.51.107.210") // between the excluded /28 and /30
	// The excluded /24 stays free, the excluded /28 and /30 are taken
	// (allocated before they were excluded), so is everything else but
	// one address: any piece a count could cut around that address holds
	// some of them.
	var keep []netip.Addr
	for a := netip.MustParseAddr("198.51.100.0"); a != netip.MustParseAddr("198.51.101.0"); a = a.Next() {
		keep = append(keep, a)
	}
	fillExcept(t, srv, s, append(keep, free)...)
	if got := mustAdd(t, s, "finder"); got[0] != "198.51.107.210/20" {
		t.Fatalf("ADD = %v, want the only free address %s", got, free)
	}
	if _, err := s.Add(ctx(t), "late", "eth0", nil); cniCode(err) != CodeExhausted {
		t.Fatalf("ADD into a full /20 (only excluded addresses free): %v, want code %d", err, CodeExhausted)
	}
	usage, err := s.Usage(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// 4094 less the gateway and 256+16+4 excluded; the 20 allocated
	// excluded addresses count in neither used nor capacity.
	if u := usage[0]; u.Capacity != 4093-276 || u.Used != u.Capacity || u.Excluded != 276 {
		t.Errorf("usage %+v, want capacity and used %d, excluded 276", u, 4093-276)
	}
}
