package ipam

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// addrsOf lists the addresses of an ADD's result.
func addrsOf(ips []store.AttachedAddr) []netip.Addr {
	out := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		out[i] = ip.Address.Addr()
	}
	return out
}

func pod(name string) *store.PodRef { return &store.PodRef{Namespace: "shop", Name: name} }

// stickyNet is a dual-stack network with "sticky" set, small enough that
// round robin comes back to freed addresses quickly.
func stickyNet(t *testing.T, srv *etcdtest.Server, name string, sticky time.Duration) (*config.Network, *Session) {
	t.Helper()
	conf := testNetwork(srv, name, []core.RangeSpec{{Subnet: "198.51.100.0/27"}}, []core.RangeSpec{{Subnet: "2001:db8:50::/123"}})
	conf.Sticky = sticky
	return conf, openSession(t, conf, "node-a")
}

// TestStickyAddressesFollowThePod: web-0's addresses, after its DEL on
// node A, go back to web-0 on node B and to no one else meanwhile, though
// round robin passes over them; two live instances never share them.
func TestStickyAddressesFollowThePod(t *testing.T) {
	srv := etcdtest.Start(t)
	conf, a := stickyNet(t, srv, "sticky", time.Hour)
	b := openSession(t, conf, "node-b")

	first, err := a.AddPod(ctx(t), "web-0-a", "eth0", nil, pod("web-0"))
	if err != nil {
		t.Fatal(err)
	}
	// A second instance while the first is attached: code 11, nothing taken.
	if _, err := b.AddPod(ctx(t), "web-0-b", "eth0", nil, pod("web-0")); AsCNIError(err).Code != types.ErrTryAgainLater {
		t.Fatalf("ADD of web-0 while its old container is attached: %v, want code 11", err)
	}
	if got, _ := b.ContainerAttachments(ctx(t), "web-0-b", "eth0"); len(got) != 0 {
		t.Fatalf("the refused ADD left %v", got)
	}
	if err := a.Del(ctx(t), "web-0-a", "eth0"); err != nil {
		t.Fatal(err)
	}
	// 50 other containers meanwhile, on both nodes, without pod
	// identity (freed at DEL), 10 live at most: round robin wraps around
	// the small pool twice and must skip web-0's addresses.
	for i := range 50 {
		s := []*Session{a, b}[i%2]
		ips, err := s.Add(ctx(t), fmt.Sprintf("other-%d", i), "eth0", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, got := range addrsOf(ips) {
			if slices.Contains(addrsOf(first), got) {
				t.Fatalf("container other-%d got %s, held for web-0", i, got)
			}
		}
		if i >= 9 {
			if err := s.Del(ctx(t), fmt.Sprintf("other-%d", i-9), "eth0"); err != nil {
				t.Fatal(err)
			}
		}
	}
	again, err := b.AddPod(ctx(t), "web-0-b", "eth0", nil, pod("web-0"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(addrsOf(again), addrsOf(first)) {
		t.Fatalf("web-0 on node B got %v, had %v", addrsOf(again), addrsOf(first))
	}
	// Taken back, the addresses are the new attachment's: its DEL frees
	// them exactly as any other (here: into a hold again).
	holds, err := b.Holds(ctx(t))
	if err != nil || len(holds) != 0 {
		t.Fatalf("holds after web-0 came back: %+v (%v), want none", holds, err)
	}
	if missing, err := b.net.Missing(ctx(t), mustAttachment(t, b, "web-0-b")); err != nil || len(missing) != 0 {
		t.Fatalf("CHECK of web-0 on node B: missing %v (%v)", missing, err)
	}
}

func mustAttachment(t *testing.T, s *Session, id string) store.StoredAttachment {
	t.Helper()
	atts, err := s.ContainerAttachments(ctx(t), id, "eth0")
	if err != nil || len(atts) != 1 {
		t.Fatalf("attachment of %s: %v, %v", id, atts, err)
	}
	return atts[0]
}

// TestStickyHoldExpires: the hold is an etcd lease's; when it ends, etcd
// frees the addresses, and the pod gets whatever round robin gives.
func TestStickyHoldExpires(t *testing.T) {
	srv := etcdtest.Start(t)
	_, s := stickyNet(t, srv, "expiry", 2*time.Second)
	ips, err := s.AddPod(ctx(t), "web-1-a", "eth0", nil, pod("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Del(ctx(t), "web-1-a", "eth0"); err != nil {
		t.Fatal(err)
	}
	held, err := s.LookupAddress(ctx(t), ips[0].Address.Addr())
	if err != nil || held == nil || held.Hold == nil || held.Hold.Kind != store.HoldSticky || held.Hold.For.Name != "web-1" ||
		held.Hold.Until.Sub(held.Hold.Since) < 2*time.Second || held.Hold.Until.Sub(held.Hold.Since) > 3*time.Second {
		t.Fatalf("after DEL: %+v, %v; want a sticky hold of 2 s (and at most 1 s of its lease's slack) for web-1", held, err)
	}
	// etcd expires leases on its own clock, within about a second of the
	// TTL; bounded wait.
	deadline := time.Now().Add(15 * time.Second)
	for {
		allocs, err := s.Allocations(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		holds, err := s.Holds(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(allocs) == 0 && len(holds) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("15 s after a 2 s hold: %d allocations, %d held sets left", len(allocs), len(holds))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if time.Since(held.Hold.Until) < -500*time.Millisecond {
		t.Fatalf("the hold ended before its time (%v)", held.Hold.Until)
	}
}

// TestStickyRacingADDsEndWithOneAttachment: two ADDs of one pod interface
// from two nodes at once (its old and new container both starting): one
// attachment, and the other fails with code 11.
func TestStickyRacingADDsEndWithOneAttachment(t *testing.T) {
	srv := etcdtest.Start(t)
	conf, a := stickyNet(t, srv, "race", time.Hour)
	b := openSession(t, conf, "node-b")
	for round := range 10 {
		name := fmt.Sprintf("db-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*Session{a, b} {
			wg.Go(func() {
				_, errs[i] = s.AddPod(context.Background(), fmt.Sprintf("%s-%d", name, i), "eth0", nil, pod(name))
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case AsCNIError(err).Code != types.ErrTryAgainLater:
				t.Fatalf("round %d: %v, want success or code 11", round, err)
			}
		}
		atts, err := a.Attachments(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, att := range atts {
			if att.Pod != nil && att.Pod.Name == name {
				n++
			}
		}
		if ok != 1 || n != 1 {
			t.Fatalf("round %d: %d ADDs succeeded, %d attachments of %s; want 1 and 1", round, ok, n, name)
		}
	}
}

// TestReservations: an address reserved for a pod interface goes to that
// pod only, comes back to the reservation at DEL, and a reservation for
// nobody is never handed out; reserving a taken address names its holder.
func TestReservations(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "reserved", []core.RangeSpec{{Subnet: "203.0.113.0/29"}})
	s := openSession(t, conf, "node-a")
	static := netip.MustParseAddr("203.0.113.4")
	nobody := netip.MustParseAddr("203.0.113.3")
	id := &store.Identity{Namespace: "shop", Name: "db-0", IfName: "eth0"}
	if _, err := s.Reserve(ctx(t), []netip.Addr{static}, id, "primary database"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx(t), []netip.Addr{nobody}, nil, "broken NIC"); err != nil {
		t.Fatal(err)
	}
	// The /29 hands out .2 to .6; two are reserved: three others fit.
	var got []netip.Addr
	for i := range 3 {
		ips, err := s.AddPod(ctx(t), fmt.Sprintf("c%d", i), "eth0", nil, pod(fmt.Sprintf("web-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, addrsOf(ips)...)
	}
	if want := []netip.Addr{netip.MustParseAddr("203.0.113.2"), netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("203.0.113.6")}; !slices.Equal(got, want) {
		t.Fatalf("other pods got %v, want %v (the reserved skipped)", got, want)
	}
	if _, err := s.Add(ctx(t), "c3", "eth0", nil); AsCNIError(err).Code != CodeExhausted {
		t.Fatalf("fourth ADD: %v, want code 100", err)
	}
	for round := range 2 {
		ips, err := s.AddPod(ctx(t), fmt.Sprintf("db-%d", round), "eth0", nil, pod("db-0"))
		if err != nil || len(ips) != 1 || ips[0].Address.Addr() != static {
			t.Fatalf("round %d: db-0 got %v (%v), want its reservation %s", round, ips, err, static)
		}
		// A second instance while the first has it: code 11, naming it.
		_, err = s.AddPod(ctx(t), "db-other", "eth0", nil, pod("db-0"))
		if e := AsCNIError(err); e.Code != types.ErrTryAgainLater || !strings.Contains(e.Msg, fmt.Sprintf("db-%d", round)) {
			t.Fatalf("round %d: second db-0: %v, want code 11 naming container db-%d", round, err, round)
		}
		if err := s.Del(ctx(t), fmt.Sprintf("db-%d", round), "eth0"); err != nil {
			t.Fatal(err)
		}
		held, err := s.LookupAddress(ctx(t), static)
		if err != nil || held == nil || held.ContainerID != "" || held.Hold == nil || held.Hold.Kind != store.HoldReserved || held.Hold.Note != "primary database" {
			t.Fatalf("round %d: after DEL %s is %+v (%v), want reserved for db-0 again", round, static, held, err)
		}
	}
	_, err := s.Reserve(ctx(t), []netip.Addr{netip.MustParseAddr("203.0.113.2")}, nil, "")
	if e := AsCNIError(err); e.Code != CodeRequestedUnavailable || !strings.Contains(e.Msg, "container c0") {
		t.Fatalf("reserving a taken address: %v, want code 101 naming container c0", err)
	}
	_, err = s.Reserve(ctx(t), []netip.Addr{netip.MustParseAddr("203.0.113.1")}, nil, "")
	if e := AsCNIError(err); e.Code != CodeRequestedUnavailable || !strings.Contains(e.Msg, "gateway") {
		t.Fatalf("reserving the gateway: %v, want code 101 saying so", err)
	}
	// Releasing the reservation makes the address free.
	held, err := s.LookupAddress(ctx(t), nobody)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseHold(ctx(t), *held); err != nil {
		t.Fatal(err)
	}
	if ips, err := s.Add(ctx(t), "c4", "eth0", nil); err != nil || ips[0].Address.Addr() != nobody {
		t.Fatalf("after releasing the reservation for nobody: %v, %v; want %s", ips, err, nobody)
	}
}

// TestStickyGCMakesHolds: GC, like DEL, turns a pod's addresses into holds
// on a sticky network (one lease for the batch), and frees the addresses
// of a container without pod identity.
func TestStickyGCMakesHolds(t *testing.T) {
	srv := etcdtest.Start(t)
	_, s := stickyNet(t, srv, "sticky-gc", time.Hour)
	podIPs, err := s.AddPod(ctx(t), "web-0-a", "eth0", nil, pod("web-0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(ctx(t), "anonymous", "eth0", nil); err != nil {
		t.Fatal(err)
	}
	released, err := s.GC(ctx(t), nil)
	if err != nil || len(released) != 2 {
		t.Fatalf("GC released %v (%v), want both attachments", released, err)
	}
	allocs, err := s.Allocations(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(allocs) != 2 {
		t.Fatalf("after GC %d allocations, want web-0's two addresses held", len(allocs))
	}
	for _, a := range allocs {
		if a.ContainerID != "" || a.Hold == nil || a.Hold.Kind != store.HoldSticky || a.Hold.For.Name != "web-0" || !slices.Contains(addrsOf(podIPs), a.Addr) {
			t.Fatalf("after GC: %+v, want web-0's addresses held for it", a)
		}
	}
	usage, err := s.Usage(ctx(t))
	if err != nil || usage[0].Held != 1 || usage[1].Held != 1 {
		t.Fatalf("usage after GC: %+v (%v), want one held address per range set", usage, err)
	}
	again, err := s.AddPod(ctx(t), "web-0-b", "eth0", nil, pod("web-0"))
	if err != nil || !slices.Equal(addrsOf(again), addrsOf(podIPs)) {
		t.Fatalf("web-0 after GC got %v (%v), had %v", again, err, podIPs)
	}
}

// TestStickyLeaseIsNeverShorterThanTheHold: the lease under a sticky hold
// lasts at least as long as the hold says, up to the longest duration
// Go can write, whose TTL in seconds once overflowed into a 2 s lease
// under a hold "until 2319". A TTL etcd cannot grant fails the DEL
// instead (the loader refuses such a "sticky" before it gets here).
func TestStickyLeaseIsNeverShorterThanTheHold(t *testing.T) {
	srv := etcdtest.Start(t)
	etcd := srv.Client(t)
	for i, sticky := range []time.Duration{1500 * time.Millisecond, config.MaxLeaseDuration, math.MaxInt64} {
		t.Run(sticky.String(), func(t *testing.T) {
			_, s := stickyNet(t, srv, fmt.Sprintf("lease-%d", i), sticky)
			if _, err := s.AddPod(ctx(t), "web-0-a", "eth0", nil, pod("web-0")); err != nil {
				t.Fatal(err)
			}
			delErr := s.Del(ctx(t), "web-0-a", "eth0")
			resp, err := etcd.Get(ctx(t), store.Root+fmt.Sprintf("lease-%d", i)+"/ips/", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			want := int64((sticky-1)/time.Second) + 1 // whole seconds, rounded up
			for _, kv := range resp.Kvs {
				if kv.Lease == 0 {
					continue
				}
				ttl, err := etcd.TimeToLive(ctx(t), clientv3.LeaseID(kv.Lease))
				if err != nil {
					t.Fatal(err)
				}
				if ttl.GrantedTTL < want {
					t.Fatalf("%s is held under a lease of %d s; the hold lasts %v (%d s)", kv.Key, ttl.GrantedTTL, sticky, want)
				}
			}
			if delErr == nil && len(resp.Kvs) == 0 {
				t.Fatalf("DEL succeeded without holds")
			}
			if sticky <= config.MaxLeaseDuration && delErr != nil {
				t.Fatalf("DEL with sticky %v, within etcd's lease TTL: %v", sticky, delErr)
			}
		})
	}
}
