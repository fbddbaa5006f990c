package ipam

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// wire counts the etcd requests a session makes and the bytes it receives.
type wire struct {
	mu       sync.Mutex
	calls    map[string]int
	received int
}

func (w *wire) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls[method]++
	if m, ok := reply.(proto.Message); ok {
		w.received += proto.Size(m)
	}
	return err
}

// measure returns the KV requests and received bytes of op.
func (w *wire) measure(op func()) (requests, received int) {
	w.mu.Lock()
	w.calls, w.received = map[string]int{}, 0
	w.mu.Unlock()
	op()
	w.mu.Lock()
	defer w.mu.Unlock()
	for method, n := range w.calls {
		if method == "/etcdserverpb.KV/Txn" || method == "/etcdserverpb.KV/Range" || method == "/etcdserverpb.KV/Put" || method == "/etcdserverpb.KV/DeleteRange" {
			requests += n
		}
	}
	return requests, w.received
}

// every returns how many etcd requests of any kind op makes: KV requests
// and lease grants alike, each a round trip.
func (w *wire) every(op func()) int {
	w.measure(op)
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.calls {
		n += c
	}
	return n
}

// TestRoundTripsStayConstant checks the design's promise: an uncontended
// ADD into a pool with room after its position is two etcd requests (one
// read, one write), at most three in a fragmented pool, and a DEL two; and
// the bytes an ADD reads do not grow with the number of allocations.
func TestRoundTripsStayConstant(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "wire",
		[]core.RangeSpec{{Subnet: "198.51.96.0/20"}},
		[]core.RangeSpec{{Subnet: "2001:db8:5::/64"}})
	w := &wire{calls: map[string]int{}}
	s, err := Open(conf, Options{Core: native.New(), Node: "node-a", DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(w.interceptor)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	addCost := func(id string) (int, int) {
		return w.measure(func() { mustAdd(t, s, id) })
	}
	emptyRequests, emptyBytes := addCost("first")
	if emptyRequests != 2 {
		t.Errorf("ADD into an empty pool made %d etcd requests, want 2", emptyRequests)
	}
	delRequests, _ := w.measure(func() {
		if err := s.Del(ctx(t), "first", "eth0"); err != nil {
			t.Fatal(err)
		}
	})
	if delRequests != 2 {
		t.Errorf("DEL made %d etcd requests, want 2", delRequests)
	}

	// Fill 90% of the /20 directly, then free every tenth address so the
	// pool is fragmented the way churn leaves it.
	fillExcept(t, srv, s)
	var holes int
	r := s.RangeSets()[0][0]
	for a, i := r.RangeStart.Next(), 0; !r.RangeEnd.Less(a); a, i = a.Next(), i+1 {
		if i%10 == 0 {
			if _, err := s.net.Release(ctx(t), filler(a, r.Subnet.Bits()).ContainerID, "eth0", nil); err != nil {
				t.Fatal(err)
			}
			holes++
		}
	}
	for i := 0; i < 20; i++ {
		requests, bytes := addCost(fmt.Sprintf("busy-%d", i))
		// Dual-stack, the first guesses of each set cover only a few
		// addresses, and holes ten apart lie beyond them: the guessing
		// write reads the searches, and a second write takes the hole.
		if requests > 3 {
			t.Errorf("ADD %d into a 90%%-full pool made %d etcd requests, want at most 3", i, requests)
		}
		// The store reads at most 32 + 8 address keys per range set,
		// whatever the pool holds: about 3 KiB here.
		if bytes > 4096 {
			t.Errorf("ADD %d into a 90%%-full pool read %d bytes, want at most 4 KiB (an empty pool: %d)", i, bytes, emptyBytes)
		}
	}
	t.Logf("bytes received per ADD: empty pool %d; %d holes left in a full /20", emptyBytes, holes)
}

// TestGuessesFindTheFirstFreeAddressInOneWrite checks that in a fragmented
// single-range pool an ADD still takes host-local's address, the first free
// one after the position, with one read and one write when that address
// lies among the guesses.
func TestGuessesFindTheFirstFreeAddressInOneWrite(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "guess", []core.RangeSpec{{Subnet: "203.0.113.0/24"}})
	w := &wire{calls: map[string]int{}}
	s, err := Open(conf, Options{Core: native.New(), Node: "node-a", DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(w.interceptor)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	free := []netip.Addr{netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("203.0.113.17"), netip.MustParseAddr("203.0.113.25")}
	fillExcept(t, srv, s, free...)
	for _, want := range free {
		var got []string
		requests, _ := w.measure(func() { got = mustAdd(t, s, "c-"+want.String()) })
		if len(got) != 1 || got[0] != want.String()+"/24" {
			t.Errorf("ADD got %v, want %s/24, the first free address after the position", got, want)
		}
		// Both are Txn requests: the read of the position, then the write.
		if txns := w.calls["/etcdserverpb.KV/Txn"]; requests != 2 || txns != 2 {
			t.Errorf("ADD of %s made %d requests (%d Txn), want 2: one read, one write", want, requests, txns)
		}
	}
}

// TestFarHoleAndFullPoolRoundTrips checks the cost of the last addresses
// of a pool: a single free address far behind the position is found by two
// counts and one read, and a full pool is reported after one count.
func TestFarHoleAndFullPoolRoundTrips(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "far", []core.RangeSpec{{Subnet: "198.51.96.0/20"}})
	w := &wire{calls: map[string]int{}}
	s, err := Open(conf, Options{Core: native.New(), Node: "node-a", DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(w.interceptor)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hole := netip.MustParseAddr("198.51.111.200")
	fillExcept(t, srv, s, hole)
	var got []string
	requests, _ := w.measure(func() { got = mustAdd(t, s, "finder") })
	if len(got) != 1 || got[0] != hole.String()+"/20" {
		t.Fatalf("ADD = %v, want the only free address %s", got, hole)
	}
	// Position, guesses (which read the first spans), two counts, a read
	// of the last piece, the write.
	if requests > 6 {
		t.Errorf("finding the one free address of a /20 took %d requests, want at most 6", requests)
	}
	requests, _ = w.measure(func() {
		if _, err := s.Add(ctx(t), "late", "eth0", nil); cniCode(err) != CodeExhausted {
			t.Fatalf("ADD into a full /20: %v, want code %d", err, CodeExhausted)
		}
	})
	// Position, guesses, one count.
	if requests != 3 {
		t.Errorf("ADD into a full pool made %d requests, want 3: the full pool is known from one count", requests)
	}
}

// TestManyRangesStayWithinEtcdsOperationLimit checks that a range set with
// so many ranges that its search reads cannot ride along in the reserving
// transaction (etcd allows 128 operations per level, fewer in nested
// levels) still allocates, reading its search separately.
func TestManyRangesStayWithinEtcdsOperationLimit(t *testing.T) {
	srv := etcdtest.Start(t)
	var ranges []core.RangeSpec
	for i := 0; i < 120; i++ {
		ranges = append(ranges, core.RangeSpec{Subnet: fmt.Sprintf("2001:db8:7:%x::/120", i)})
	}
	s := openSession(t, testNetwork(srv, "many", ranges), "node-a")
	// Take the first range whole, so that every guess misses.
	first := s.RangeSets()[0][0]
	var atts []store.Attachment
	for a := first.RangeStart; !first.RangeEnd.Less(a); a = a.Next() {
		atts = append(atts, filler(a, first.Subnet.Bits()))
	}
	if err := s.net.Record(ctx(t), atts); err != nil {
		t.Fatal(err)
	}
	if got := mustAdd(t, s, "c1"); len(got) != 1 || got[0] != "2001:db8:7:1::2/120" {
		t.Fatalf("ADD = %v, want the first address of the second range after its gateway, 2001:db8:7:1::2/120", got)
	}
}

// TestStickyRoundTrips: on a sticky network an ADD with nothing held is
// still one read and one write (the hold lookup rides in the read); the
// node's first DEL that turns its addresses into holds is a read, a lease
// grant and a write, its later ones a read and a write (the node's lease
// is reused); the ADD that takes them back is a read and a write.
func TestStickyRoundTrips(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "sticky-wire", []core.RangeSpec{{Subnet: "198.51.100.0/24"}}, []core.RangeSpec{{Subnet: "2001:db8:70::/64"}})
	conf.Sticky = time.Hour
	w := &wire{calls: map[string]int{}}
	s, err := Open(conf, Options{Core: native.New(), Node: "node-a", DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(w.interceptor)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Warm up: the first request opens the connection, and the node's
	// liveness record is written once.
	if _, err := s.AddPod(ctx(t), "warm", "eth0", nil, pod("warm")); err != nil {
		t.Fatal(err)
	}
	var first []store.AttachedAddr
	if n := w.every(func() { first, err = s.AddPod(ctx(t), "web-0-a", "eth0", nil, pod("web-0")) }); err != nil || n != 2 {
		t.Errorf("sticky ADD with nothing held: %d requests (%v), want 2", n, err)
	}
	if n := w.every(func() { err = s.Del(ctx(t), "web-0-a", "eth0") }); err != nil || n != 3 {
		t.Errorf("the node's first DEL making holds: %d requests (%v), want 3 (read, lease grant, write)", n, err)
	}
	// The node's later DELs reuse its lease, read with the attachment.
	if n := w.every(func() { err = s.Del(ctx(t), "warm", "eth0") }); err != nil || n != 2 {
		t.Errorf("a later DEL making holds: %d requests (%v), want 2 (read, write)", n, err)
	}
	var again []store.AttachedAddr
	if n := w.every(func() { again, err = s.AddPod(ctx(t), "web-0-b", "eth0", nil, pod("web-0")) }); err != nil || n != 2 {
		t.Errorf("ADD taking its holds back: %d requests (%v), want 2", n, err)
	}
	if !slices.Equal(addrsOf(first), addrsOf(again)) {
		t.Fatalf("web-0 got %v back, had %v", addrsOf(again), addrsOf(first))
	}
}

// TestCooldownRoundTrips: on a network with a cooldown, the node's first
// DEL that makes an address cool is a read (with the node's lease
// record), a lease grant and a write; its later ones reuse the lease, a
// read and a write, as sticky's DELs do; an ADD is still a read and a
// write.
func TestCooldownRoundTrips(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "cool-wire", []core.RangeSpec{{Subnet: "198.51.100.0/24"}}, []core.RangeSpec{{Subnet: "2001:db8:71::/64"}})
	conf.Cooldown, conf.Sticky = time.Minute, time.Hour
	w := &wire{calls: map[string]int{}}
	s, err := Open(conf, Options{Core: native.New(), Node: "node-a", DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(w.interceptor)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Warm up: the first request opens the connection, and the node's
	// liveness record is written once.
	for _, id := range []string{"warm", "c1", "c2"} {
		if _, err := s.Add(ctx(t), id, "eth0", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.every(func() { err = s.Del(ctx(t), "c1", "eth0") }); err != nil || n != 3 {
		t.Errorf("the node's first DEL making addresses cool: %d requests (%v), want 3 (read, lease grant, write)", n, err)
	}
	if n := w.every(func() { err = s.Del(ctx(t), "c2", "eth0") }); err != nil || n != 2 {
		t.Errorf("a later DEL making addresses cool: %d requests (%v), want 2 (read, write)", n, err)
	}
	if n := w.every(func() { err = s.Del(ctx(t), "c2", "eth0") }); err != nil || n != 1 {
		t.Errorf("a repeated DEL: %d requests (%v), want 1 (read)", n, err)
	}
	if n := w.every(func() { _, err = s.Add(ctx(t), "c3", "eth0", nil) }); err != nil || n != 2 {
		t.Errorf("ADD beside cooling addresses: %d requests (%v), want 2", n, err)
	}
}
