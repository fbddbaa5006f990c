package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// testNetwork returns a network configuration pointing at srv.
func testNetwork(srv *etcdtest.Server, name string, sets ...[]core.RangeSpec) *config.Network {
	return &config.Network{
		CNIVersion: "1.1.0",
		Name:       name,
		RangeSets:  sets,
		Etcd:       config.Etcd{Endpoints: []string{srv.Endpoint()}, Timeout: 5 * time.Second},
	}
}

func openSession(t *testing.T, conf *config.Network, node string) *Session {
	t.Helper()
	s, err := Open(conf, Options{Core: native.New(), Node: node})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func addrs(ips []store.AttachedAddr) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.Address.String()
	}
	return out
}

func mustAdd(t *testing.T, s *Session, id string, requested ...netip.Addr) []string {
	t.Helper()
	ips, err := s.Add(ctx(t), id, "eth0", requested)
	if err != nil {
		t.Fatalf("Add(%s): %v", id, err)
	}
	return addrs(ips)
}

// cniCode is the CNI code a runtime would see for err; 0 for nil.
func cniCode(err error) uint {
	if err == nil {
		return 0
	}
	return AsCNIError(err).Code
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAddSequentialAndRepeat(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "examplenet",
		[]core.RangeSpec{{Subnet: "203.0.113.0/24"}},
		[]core.RangeSpec{{Subnet: "2001:db8:1::/64"}})
	s := openSession(t, conf, "node-a")

	if got := mustAdd(t, s, "c1"); !equal(got, []string{"203.0.113.2/24", "2001:db8:1::2/64"}) {
		t.Fatalf("first ADD = %v", got)
	}
	if got := mustAdd(t, s, "c2"); !equal(got, []string{"203.0.113.3/24", "2001:db8:1::3/64"}) {
		t.Fatalf("second ADD = %v", got)
	}
	// A repeated ADD returns what the container holds; it takes nothing new.
	if got := mustAdd(t, s, "c1"); !equal(got, []string{"203.0.113.2/24", "2001:db8:1::2/64"}) {
		t.Fatalf("repeated ADD = %v", got)
	}
	if got := mustAdd(t, s, "c3"); !equal(got, []string{"203.0.113.4/24", "2001:db8:1::4/64"}) {
		t.Fatalf("third ADD = %v", got)
	}
}

func TestRoundRobinAfterRelease(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openSession(t, testNetwork(srv, "rr", []core.RangeSpec{{Subnet: "192.0.2.0/29"}}), "node-a")
	// /29: .1 gateway, .2-.6 allocatable.
	for i, want := range []string{"192.0.2.2/29", "192.0.2.3/29", "192.0.2.4/29"} {
		if got := mustAdd(t, s, fmt.Sprintf("c%d", i)); got[0] != want {
			t.Fatalf("ADD %d = %v, want %s", i, got, want)
		}
	}
	if err := s.Del(ctx(t), "c0", "eth0"); err != nil {
		t.Fatal(err)
	}
	// Round robin continues after the last reserved address, not at the
	// freed one, then wraps to it.
	for i, want := range []string{"192.0.2.5/29", "192.0.2.6/29", "192.0.2.2/29"} {
		if got := mustAdd(t, s, fmt.Sprintf("d%d", i)); got[0] != want {
			t.Fatalf("ADD d%d = %v, want %s", i, got, want)
		}
	}
	_, err := s.Add(ctx(t), "full", "eth0", nil)
	if cniCode(err) != CodeExhausted {
		t.Fatalf("ADD into a full pool: %v, want code %d", err, CodeExhausted)
	}
}

func TestLateDelNeverFreesAnotherContainersAddress(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openSession(t, testNetwork(srv, "late", []core.RangeSpec{{Subnet: "192.0.2.0/30"}}), "node-a")
	// /30 has a single allocatable address, .2.
	mustAdd(t, s, "old")
	stale, err := s.net.Attachment(ctx(t), "old", "eth0")
	if err != nil || stale == nil {
		t.Fatalf("reading attachment: %v %v", stale, err)
	}
	if err := s.Del(ctx(t), "old", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got := mustAdd(t, s, "new"); got[0] != "192.0.2.2/30" {
		t.Fatalf("new container got %v", got)
	}
	// The old container's release, replayed late with the state it read
	// before, must not free the new container's address.
	if n, _, err := s.net.ReleaseAttachments(ctx(t), []store.StoredAttachment{*stale}, nil); err != nil || n != 0 {
		t.Fatalf("late release released %d (err %v), want 0", n, err)
	}
	if err := s.Del(ctx(t), "old", "eth0"); err != nil {
		t.Fatalf("DEL of a released container: %v", err)
	}
	if err := s.Check(ctx(t), "new", "eth0"); err != nil {
		t.Fatalf("CHECK new after late DEL: %v", err)
	}
}

// TestExhaustedSecondRangeSetTakesNothingButMovesFirstPosition checks that
// an ADD whose second range set is full reserves nothing in either set
// (the ADD is one transaction, so there is nothing to roll back), and that
// the first set's round-robin position still moves on, as in host-local.
func TestExhaustedSecondRangeSetTakesNothingButMovesFirstPosition(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "rollback",
		[]core.RangeSpec{{Subnet: "198.51.100.0/24"}},
		[]core.RangeSpec{{Subnet: "203.0.113.0/30"}}) // one address: .2
	s := openSession(t, conf, "node-a")
	mustAdd(t, s, "holder")
	_, err := s.Add(ctx(t), "second", "eth0", nil)
	if cniCode(err) != CodeExhausted {
		t.Fatalf("ADD with exhausted second set: %v", err)
	}
	usage, uerr := s.Usage(ctx(t))
	if uerr != nil {
		t.Fatal(uerr)
	}
	if usage[0].Used != 1 || usage[1].Used != 1 {
		t.Fatalf("after the failed ADD usage = %+v, want one address used in each set", usage)
	}
	if att, _ := s.net.Attachment(ctx(t), "second", "eth0"); att != nil {
		t.Fatalf("failed ADD left an attachment: %+v", att)
	}
	// Like host-local, the first set's round-robin position moved on.
	if err := s.Del(ctx(t), "holder", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got := mustAdd(t, s, "third"); !equal(got, []string{"198.51.100.4/24", "203.0.113.2/30"}) {
		t.Fatalf("ADD after the failed ADD = %v, want 198.51.100.4/24 (the failed ADD moved set 0 past .3) and 203.0.113.2/30", got)
	}
}

func TestRequestedAddresses(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "req",
		[]core.RangeSpec{{Subnet: "203.0.113.0/24"}},
		[]core.RangeSpec{{Subnet: "2001:db8:1::/64"}})
	s := openSession(t, conf, "node-a")
	want := netip.MustParseAddr("203.0.113.77")
	got := mustAdd(t, s, "c1", want)
	if !equal(got, []string{"203.0.113.77/24", "2001:db8:1::2/64"}) {
		t.Fatalf("requested ADD = %v", got)
	}
	// The requested address moved set 0's round-robin position, as in host-local.
	if got := mustAdd(t, s, "c2"); got[0] != "203.0.113.78/24" {
		t.Fatalf("ADD after requested = %v", got)
	}
	for _, tc := range []struct {
		name string
		addr string
	}{
		{"taken", "203.0.113.77"},
		{"gateway", "203.0.113.1"},
		{"outside every range", "198.51.100.9"},
	} {
		_, err := s.Add(ctx(t), "bad-"+tc.name, "eth0", []netip.Addr{netip.MustParseAddr(tc.addr)})
		if cniCode(err) != CodeRequestedUnavailable {
			t.Errorf("%s: err %v, want code %d", tc.name, err, CodeRequestedUnavailable)
		}
		if att, _ := s.net.Attachment(ctx(t), "bad-"+tc.name, "eth0"); att != nil {
			t.Errorf("%s: failed ADD left %+v", tc.name, att)
		}
	}
}

func TestGCReleasesOnlyThisNodesStaleAttachments(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "gc", []core.RangeSpec{{Subnet: "198.51.100.0/24"}})
	a := openSession(t, conf, "node-a")
	b := openSession(t, conf, "node-b")
	mustAdd(t, a, "a-keep")
	mustAdd(t, a, "a-stale")
	mustAdd(t, b, "b-1")
	released, err := a.GC(ctx(t), []types.GCAttachment{{ContainerID: "a-keep", IfName: "eth0"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(released) != 1 || released[0].ContainerID != "a-stale" {
		t.Fatalf("GC released %+v, want only a-stale", released)
	}
	for id, s := range map[string]*Session{"a-keep": a, "b-1": b} {
		if err := s.Check(ctx(t), id, "eth0"); err != nil {
			t.Errorf("CHECK %s after GC: %v", id, err)
		}
	}
	if err := a.Check(ctx(t), "a-stale", "eth0"); cniCode(err) != types.ErrUnknownContainer {
		t.Errorf("CHECK a-stale after GC: %v, want code 3", err)
	}
}

// TestConcurrentGoroutinesFillPoolExactly runs many allocators, as separate
// nodes with separate etcd clients, against one small pool.
func TestConcurrentGoroutinesFillPoolExactly(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "busy", []core.RangeSpec{{Subnet: "198.51.100.0/25"}}) // .2-.126: 125 addresses
	const workers, perWorker = 16, 10                                               // 160 ADDs for 125 addresses
	var mu sync.Mutex
	holders := map[string]string{}
	var failures []error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		s := openSession(t, conf, fmt.Sprintf("node-%d", w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				id := fmt.Sprintf("w%d-c%d", w, i)
				ips, err := s.Add(context.Background(), id, "eth0", nil)
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else if prev, dup := holders[ips[0].Address.String()]; dup {
					t.Errorf("address %s given to %s and %s", ips[0].Address, prev, id)
				} else {
					holders[ips[0].Address.String()] = id
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(holders) != 125 {
		t.Errorf("%d addresses handed out, want all 125", len(holders))
	}
	if len(failures) != workers*perWorker-125 {
		t.Errorf("%d ADDs failed, want %d", len(failures), workers*perWorker-125)
	}
	for _, err := range failures {
		if cniCode(err) != CodeExhausted {
			t.Errorf("failure %v: want code %d (pool exhausted)", err, CodeExhausted)
		}
	}
	// Every success is recorded in etcd.
	s := openSession(t, conf, "checker")
	atts, err := s.net.Attachments(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != len(holders) {
		t.Errorf("etcd holds %d attachments, want %d", len(atts), len(holders))
	}
	for _, att := range atts {
		if holders[att.IPs[0].Address.String()] != att.ContainerID {
			t.Errorf("etcd says %s holds %s; the ADD said %s", att.ContainerID, att.IPs[0].Address, holders[att.IPs[0].Address.String()])
		}
	}
}

func TestEtcdStoppedGivesTryAgainLater(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "down", []core.RangeSpec{{Subnet: "198.51.100.0/24"}})
	conf.Etcd.Timeout = 2 * time.Second
	s := openSession(t, conf, "node-a")
	mustAdd(t, s, "before")
	srv.Stop()
	c, cancel := s.Context(context.Background())
	defer cancel()
	start := time.Now()
	_, err := s.Add(c, "after", "eth0", nil)
	if cniCode(err) != types.ErrTryAgainLater {
		t.Fatalf("ADD with etcd stopped: %v, want code 11", err)
	}
	if elapsed := time.Since(start); elapsed > 8*time.Second {
		t.Errorf("ADD took %v to give up, want it bounded by the 2 s timeout", elapsed)
	}
	if err := s.Status(context.Background()); cniCode(err) != CodeStatusUnavailable {
		t.Errorf("STATUS with etcd stopped: %v, want code 50", err)
	}
}

func TestStatusReportsExhaustion(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openSession(t, testNetwork(srv, "status", []core.RangeSpec{{Subnet: "192.0.2.0/30"}}), "node-a")
	if err := s.Status(ctx(t)); err != nil {
		t.Fatalf("STATUS on an empty pool: %v", err)
	}
	mustAdd(t, s, "only")
	if err := s.Status(ctx(t)); cniCode(err) != CodeStatusUnavailable {
		t.Fatalf("STATUS on a full pool: %v, want code 50", err)
	}
}

// fillExcept records an attachment of another node for every address of
// set 0's first range except the given ones, as if other containers held
// them.
func fillExcept(t *testing.T, srv *etcdtest.Server, s *Session, free ...netip.Addr) {
	t.Helper()
	r := s.RangeSets()[0][0]
	var atts []store.Attachment
	for a := r.RangeStart; !r.RangeEnd.Less(a); a = a.Next() {
		skip := a == r.Gateway
		for _, f := range free {
			skip = skip || a == f
		}
		if !skip {
			atts = append(atts, filler(a, r.Subnet.Bits()))
		}
	}
	if err := s.net.Record(ctx(t), atts); err != nil {
		t.Fatal(err)
	}
}

// filler is an attachment of another node holding a, with the prefix
// length of its subnet.
func filler(a netip.Addr, bits int) store.Attachment {
	return store.Attachment{ContainerID: "filler-" + a.String(), IfName: "eth0", Node: "filler-node", Created: time.Now().UTC(),
		IPs: []store.AttachedAddr{{Address: netip.PrefixFrom(a, bits)}}}
}

// TestSearchAcrossLongTakenRuns checks that a search finds the one free
// address far behind a long run of taken ones, and recognises a full pool,
// by counting instead of reading every key.
func TestSearchAcrossLongTakenRuns(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openSession(t, testNetwork(srv, "long", []core.RangeSpec{{Subnet: "198.51.96.0/20"}}), "node-a")
	hole := netip.MustParseAddr("198.51.107.200")
	fillExcept(t, srv, s, hole)
	if got := mustAdd(t, s, "finder"); got[0] != "198.51.107.200/20" {
		t.Fatalf("ADD = %v, want the only free address %s", got, hole)
	}
	_, err := s.Add(ctx(t), "late", "eth0", nil)
	if cniCode(err) != CodeExhausted {
		t.Fatalf("ADD into a full /20: %v, want code %d", err, CodeExhausted)
	}
	if err := s.Del(ctx(t), "finder", "eth0"); err != nil {
		t.Fatal(err)
	}
	// After a wrap the search starts right after the last reserved address.
	if got := mustAdd(t, s, "again"); got[0] != "198.51.107.200/20" {
		t.Fatalf("ADD after release = %v", got)
	}
}

// TestSearchAcrossLongTakenRunsIPv6: the same narrowing on a /64, whose
// segment capacities reach 2^64: with its position moved back before 40
// taken addresses (more than one read shows), an ADD must still find the
// first free address after them, not count the same segment for ever.
func TestSearchAcrossLongTakenRunsIPv6(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "long6", []core.RangeSpec{{Subnet: "2001:db8:0:1::/64"}})
	s := openSession(t, conf, "node-a")
	for i := range 40 {
		mustAdd(t, s, fmt.Sprintf("c%d", i))
	}
	if err := s.net.AdvanceLastReserved(ctx(t), map[int]store.Position{0: {Addr: netip.MustParseAddr("2001:db8:0:1::1")}}); err != nil {
		t.Fatal(err)
	}
	if got := mustAdd(t, s, "finder"); got[0] != "2001:db8:0:1::2a/64" {
		t.Fatalf("ADD after 40 taken addresses = %v, want 2001:db8:0:1::2a/64", got)
	}
}
