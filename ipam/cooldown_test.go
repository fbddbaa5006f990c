package ipam

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// coolNet is a one-range network with a cooldown, on node-a.
func coolNet(t *testing.T, srv *etcdtest.Server, name, subnet string, cooldown time.Duration) *Session {
	t.Helper()
	conf := testNetwork(srv, name, []core.RangeSpec{{Subnet: subnet}})
	conf.Cooldown = cooldown
	return openSession(t, conf, "node-a")
}

// coolingKeys returns how many keys etcd has under the network's
// cooling/ marks, and whether addr's ips/ key exists, read directly.
func coolingKeys(t *testing.T, cli *clientv3.Client, network string, addr netip.Addr) (marks int64, taken bool) {
	t.Helper()
	resp, err := cli.Get(ctx(t), store.Root+network+"/cooling/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	ip, err := cli.Get(ctx(t), store.Root+network+"/ips/"+store.AddrKey(addr), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count, ip.Count > 0
}

// isCooling reports whether addr is a cooling hold.
func isCooling(t *testing.T, s *Session, addr netip.Addr) bool {
	t.Helper()
	held, err := s.LookupAddress(ctx(t), addr)
	if err != nil {
		t.Fatal(err)
	}
	return held != nil && held.ContainerID == "" && held.Hold != nil && held.Hold.Kind == store.HoldCooling && held.Hold.For == nil
}

// TestCooldownKeepsAReleasedAddressFromOtherPods: after a DEL, 50 ADDs
// of other pods on a small pool (each released again, so that the pool
// churns) never get the cooling address while its cooldown lasts; an ADD
// that finds only cooling addresses fails with 11, never with a cooling
// address. Once the cooldown has passed, with no plugin call in between,
// etcd has freed it (its lease ended) and an ADD gets it.
func TestCooldownKeepsAReleasedAddressFromOtherPods(t *testing.T) {
	const cooldown = 2 * time.Second
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	s := coolNet(t, srv, "cool", "203.0.113.0/28", cooldown)
	first, err := s.Add(ctx(t), "a", "eth0", nil)
	if err != nil {
		t.Fatal(err)
	}
	released := addrsOf(first)[0]
	if err := s.Del(ctx(t), "a", "eth0"); err != nil {
		t.Fatal(err)
	}
	delAt := time.Now()
	if !isCooling(t, s, released) {
		t.Fatalf("after DEL, %s is not a cooling hold", released)
	}
	got, failed := 0, 0
	for i := range 50 {
		id := fmt.Sprintf("other-%d", i)
		ips, err := s.Add(ctx(t), id, "eth0", nil)
		during := time.Since(delAt) < cooldown
		if err != nil {
			if code := cniCode(err); code != 11 {
				t.Fatalf("ADD %d: %v (code %d), want an address or 11", i, err, code)
			}
			failed++
			continue
		}
		got++
		if a := addrsOf(ips)[0]; a == released && during {
			t.Fatalf("ADD %d, %v after the DEL, got the cooling address %s", i, time.Since(delAt), a)
		}
		if err := s.Del(ctx(t), id, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("50 ADDs within %v of the DEL: %d got an address, %d answered 11", time.Since(delAt).Round(time.Millisecond), got, failed)
	if got == 0 || failed == 0 {
		t.Fatalf("%d ADDs got an address and %d failed: the pool should have run out of non-cooling addresses", got, failed)
	}
	// Expiry is etcd's: no call of the plugin until the key is gone.
	held, err := s.LookupAddress(ctx(t), released)
	if err != nil || held == nil || held.Hold == nil {
		t.Fatalf("%s: %+v (%v), want still cooling", released, held, err)
	}
	until := held.Hold.Until
	if until.Sub(delAt) < cooldown-time.Second || until.Sub(delAt) > cooldown+2*time.Second {
		t.Errorf("cooling of %s ends %v after the DEL, want about %v (and at most an eighth, at least a second, more)", released, until.Sub(delAt), cooldown)
	}
	deadline := until.Add(5 * time.Second)
	for {
		if _, taken := coolingKeys(t, cli, "cool", released); !taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still taken %v after its cooling ended", released, time.Since(until))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("etcd freed %s %v after the DEL (cooling until %v after)", released, time.Since(delAt).Round(100*time.Millisecond), until.Sub(delAt).Round(time.Millisecond))
	if time.Since(delAt) < cooldown {
		t.Fatalf("%s freed %v after the DEL, before the cooldown of %v", released, time.Since(delAt), cooldown)
	}
	if _, err := s.Add(ctx(t), "after", "eth0", []netip.Addr{released}); err != nil {
		t.Fatalf("ADD requesting %s after its cooldown: %v", released, err)
	}
}

// TestCooldownYieldsToStickyAndReservations: on a network with both
// "sticky" and "cooldown", the sticky pod and the pod with a reservation
// get their addresses back at once, on their next ADD; only the plain
// container's address cools.
func TestCooldownYieldsToStickyAndReservations(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "cool-precedence", []core.RangeSpec{{Subnet: "203.0.113.0/28"}})
	conf.Sticky, conf.Cooldown = time.Hour, time.Hour
	s := openSession(t, conf, "node-a")
	static := netip.MustParseAddr("203.0.113.9")
	router := &store.Identity{Namespace: "db", Name: "router-0", IfName: "eth0"}
	if _, err := s.Reserve(ctx(t), []netip.Addr{static}, router, "static"); err != nil {
		t.Fatal(err)
	}
	r, err := s.AddPod(ctx(t), "router-a", "eth0", nil, &store.PodRef{Namespace: "db", Name: "router-0"})
	if err != nil || addrsOf(r)[0] != static {
		t.Fatalf("router: %v (%v), want %s", r, err, static)
	}
	web, err := s.AddPod(ctx(t), "web-a", "eth0", nil, pod("web-0"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := s.Add(ctx(t), "plain", "eth0", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"router-a", "web-a", "plain"} {
		if err := s.Del(ctx(t), id, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	if !isCooling(t, s, addrsOf(plain)[0]) {
		t.Fatalf("the plain container's %s does not cool", addrsOf(plain)[0])
	}
	for _, a := range []netip.Addr{static, addrsOf(web)[0]} {
		if isCooling(t, s, a) {
			t.Fatalf("%s cools; a reservation or a sticky hold comes first", a)
		}
	}
	if again, err := s.AddPod(ctx(t), "router-b", "eth0", nil, &store.PodRef{Namespace: "db", Name: "router-0"}); err != nil || addrsOf(again)[0] != static {
		t.Fatalf("router again: %v (%v), want %s at once", again, err, static)
	}
	if again, err := s.AddPod(ctx(t), "web-b", "eth0", nil, pod("web-0")); err != nil || addrsOf(again)[0] != addrsOf(web)[0] {
		t.Fatalf("web-0 again: %v (%v), want %s at once", again, err, addrsOf(web)[0])
	}
	usage, err := s.Usage(ctx(t))
	if err != nil || usage[0].Cooling != 1 || usage[0].Held != 0 {
		t.Fatalf("usage %+v (%v), want 1 cooling and none held", usage, err)
	}
}

// TestOnlyCoolingAddressesLeftTryAgainLater: a pool whose only addresses
// not in use are cooling answers an ADD with 11 (not 100, "exhausted"),
// naming how many cool and when the first is free; a request for a
// cooling address fails as for a taken one, saying it cools and until
// when; usage counts them, plan predicts none of them, and an operator's
// release of a cooling address frees it at once.
func TestOnlyCoolingAddressesLeftTryAgainLater(t *testing.T) {
	srv := etcdtest.Start(t)
	s := coolNet(t, srv, "cool-full", "203.0.113.0/29", time.Hour)
	// 203.0.113.2 to .6: five addresses.
	var ids []string
	for i := range 5 {
		ids = append(ids, fmt.Sprintf("c%d", i))
		mustAdd(t, s, ids[i])
	}
	for _, id := range ids[:3] {
		if err := s.Del(ctx(t), id, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Add(ctx(t), "late", "eth0", nil)
	e := AsCNIError(err)
	if e == nil || e.Code != 11 {
		t.Fatalf("ADD into a pool of cooling addresses: %v, want code 11", err)
	}
	lease, _ := s.LookupAddress(ctx(t), netip.MustParseAddr("203.0.113.2"))
	firstFree := lease.Hold.Until.UTC().Format(time.RFC3339)
	for _, want := range []string{"3 released addresses are cooling down", "the first free again at " + firstFree, `"cooldown" is 1h0m0s`, `lower ipam "cooldown"`} {
		if !strings.Contains(e.Msg+" "+e.Details, want) {
			t.Errorf("message %q (%q) does not say %q", e.Msg, e.Details, want)
		}
	}
	t.Logf("code %d: %s; %s", e.Code, e.Msg, e.Details)
	_, err = s.Add(ctx(t), "asks", "eth0", []netip.Addr{netip.MustParseAddr("203.0.113.3")})
	if e := AsCNIError(err); e == nil || e.Code != CodeRequestedUnavailable || !strings.Contains(e.Msg, "203.0.113.3") || !strings.Contains(e.Msg, "cooling down after its release until") {
		t.Fatalf("ADD requesting a cooling address: %v, want code %d saying it cools", err, CodeRequestedUnavailable)
	}
	if n, _ := s.ContainerAttachments(ctx(t), "asks", "eth0"); len(n) != 0 {
		t.Fatalf("the failed ADD left %v", n)
	}
	if err := s.Status(ctx(t)); cniCode(err) != CodeStatusUnavailable || !strings.Contains(err.Error(), "3 released addresses are cooling down") {
		t.Fatalf("STATUS of a pool whose only addresses left cool: %v, want code %d saying they cool", err, CodeStatusUnavailable)
	}
	usage, err := s.Usage(ctx(t))
	if err != nil || usage[0].Cooling != 3 || usage[0].Used != 5 || usage[0].Held != 0 {
		t.Fatalf("usage %+v (%v), want 5 used of which 3 cooling", usage, err)
	}
	plan, err := s.Plan(ctx(t), 1)
	if err != nil || len(plan.Adds) != 0 || plan.Failure == nil {
		t.Fatalf("plan %+v (%v), want no ADD: the only addresses left cool", plan, err)
	}
	// The operator frees one at once.
	held, err := s.LookupAddress(ctx(t), netip.MustParseAddr("203.0.113.4"))
	if err != nil || held == nil {
		t.Fatal(err)
	}
	if err := s.ReleaseHold(ctx(t), *held); err != nil {
		t.Fatalf("release of a cooling address: %v", err)
	}
	if plan, err := s.Plan(ctx(t), 1); err != nil || len(plan.Adds) != 1 || addrsOf(plan.Adds[0].IPs)[0] != held.Addr {
		t.Fatalf("plan %+v (%v), want the released %s", plan, err, held.Addr)
	}
	if got := mustAdd(t, s, "late"); got[0] != "203.0.113.4/29" {
		t.Fatalf("ADD after the release = %v, want 203.0.113.4/29", got)
	}
	if usage, err := s.Usage(ctx(t)); err != nil || usage[0].Cooling != 2 {
		t.Fatalf("usage %+v (%v), want 2 cooling", usage, err)
	}
}

// TestEveryReleaseCools: each release path (DEL, GC, reclaim, the
// operator's release of a container or an address) leaves the address
// cooling, not free; a repeated DEL (its first reply lost, say) changes
// nothing.
func TestEveryReleaseCools(t *testing.T) {
	for i, path := range releasePaths {
		t.Run(path.name, func(t *testing.T) {
			srv := etcdtest.Start(t)
			s := coolNet(t, srv, "cools", fmt.Sprintf("10.%d.0.0/24", 80+i), time.Hour)
			ips, err := s.Add(ctx(t), "c", "eth0", nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := path.release(t, s, []string{"c"}); err != nil {
				t.Fatalf("%s: %v", path.name, err)
			}
			a := addrsOf(ips)[0]
			if !isCooling(t, s, a) {
				t.Fatalf("after %s, %s does not cool", path.name, a)
			}
			before, _ := s.LookupAddress(ctx(t), a)
			if err := s.Del(ctx(t), "c", "eth0"); err != nil {
				t.Fatalf("a repeated DEL: %v", err)
			}
			if after, _ := s.LookupAddress(ctx(t), a); after == nil || after.ModRevision != before.ModRevision {
				t.Fatalf("a repeated DEL changed the cooling hold: %+v, was %+v", after, before)
			}
		})
	}
}

// TestEveryReleaseUnderNoSpaceSkipsCooldown: with etcd's NOSPACE alarm
// raised, every release path succeeds with deletes only and leaves no
// cooling hold (NOTES 29), also when the node's cooling lease is recorded
// (so the release first tries to reuse it).
func TestEveryReleaseUnderNoSpaceSkipsCooldown(t *testing.T) {
	for i, path := range releasePaths {
		t.Run(path.name, func(t *testing.T) {
			srv := etcdtest.Start(t)
			cli := srv.Client(t)
			network := "cool-nospace"
			s := coolNet(t, srv, network, fmt.Sprintf("10.%d.0.0/24", 90+i), time.Hour)
			// Record the node's cooling lease.
			mustAdd(t, s, "warm")
			if err := s.Del(ctx(t), "warm", "eth0"); err != nil {
				t.Fatal(err)
			}
			ips, err := s.Add(ctx(t), "c", "eth0", nil)
			if err != nil {
				t.Fatal(err)
			}
			etcdtest.RaiseNoSpace(t, cli)
			defer etcdtest.ClearNoSpace(t, cli)
			if err := path.release(t, s, []string{"c"}); err != nil {
				t.Fatalf("%s under NOSPACE: %v", path.name, err)
			}
			if marks, taken := coolingKeys(t, cli, network, addrsOf(ips)[0]); taken || marks != 1 {
				t.Fatalf("after %s under NOSPACE: %s taken %v, %d cooling marks (want free, and only warm's)", path.name, addrsOf(ips)[0], taken, marks)
			}
		})
	}
}

// TestCoolingLeasesStayBounded: many releases on two nodes leave one
// cooling lease per node in etcd, not one per release.
func TestCoolingLeasesStayBounded(t *testing.T) {
	const cycles = 100
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "cool-leases", []core.RangeSpec{{Subnet: "10.70.0.0/24"}})
	conf.Cooldown = time.Hour
	nodes := []*Session{openSession(t, conf, "node-a"), openSession(t, conf, "node-b")}
	for i := range cycles {
		s := nodes[i%2]
		id := fmt.Sprintf("c%d", i)
		mustAdd(t, s, id)
		if err := s.Del(ctx(t), id, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	// A GC and the operator's releases reuse the node's lease too.
	mustAdd(t, nodes[0], "gc-me")
	if _, err := nodes[0].GC(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	leases, err := srv.Client(t).Leases(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	usage, err := nodes[0].Usage(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d releases on 2 nodes: %d leases in etcd, %d addresses cooling", cycles+1, len(leases.Leases), usage[0].Cooling)
	if len(leases.Leases) > len(nodes) {
		t.Fatalf("%d leases after %d releases on %d nodes, want at most %d", len(leases.Leases), cycles+1, len(nodes), len(nodes))
	}
	if usage[0].Cooling != cycles+1 {
		t.Fatalf("%d cooling, want %d", usage[0].Cooling, cycles+1)
	}
}

// TestWithoutCooldownNothingCools: without "cooldown" a DEL frees at once,
// as before, and writes no cooling key.
func TestWithoutCooldownNothingCools(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	s := coolNet(t, srv, "warm-net", "203.0.113.0/29", 0)
	ips, err := s.Add(ctx(t), "c", "eth0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Del(ctx(t), "c", "eth0"); err != nil {
		t.Fatal(err)
	}
	if marks, taken := coolingKeys(t, cli, "warm-net", addrsOf(ips)[0]); taken || marks != 0 {
		t.Fatalf("without cooldown: taken %v, %d cooling marks", taken, marks)
	}
	if leases, err := cli.Leases(ctx(t)); err != nil || len(leases.Leases) != 0 {
		t.Fatalf("leases %+v (%v), want none", leases, err)
	}
}

// TestCoolingReleasesAfterALostReply: a DEL and an operator's release of
// an address whose write committed but whose reply was lost are retried
// and report success; the address cools once.
func TestCoolingReleasesAfterALostReply(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "cool-lost", []core.RangeSpec{{Subnet: "203.0.113.0/28"}})
	conf.Cooldown = time.Hour
	l := &replyLoser{}
	s, err := Open(conf, Options{Core: native.New(), Node: "node-a", DialOptions: []grpc.DialOption{grpc.WithUnaryInterceptor(l.interceptor)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	a := addrsOf(mustAddIPs(t, s, "c1"))[0]
	b := addrsOf(mustAddIPs(t, s, "c2"))[0]
	l.loseNext(t, func() {
		if err := s.Del(ctx(t), "c1", "eth0"); err != nil {
			t.Fatalf("DEL, reply lost: %v", err)
		}
	})
	held, err := s.LookupAddress(ctx(t), b)
	if err != nil || held == nil {
		t.Fatal(held, err)
	}
	l.loseNext(t, func() {
		if _, err := s.ReleaseAddress(ctx(t), *held); err != nil {
			t.Fatalf("release %s, reply lost: %v", b, err)
		}
	})
	for _, addr := range []netip.Addr{a, b} {
		if !isCooling(t, s, addr) {
			t.Fatalf("%s does not cool", addr)
		}
	}
	if usage, err := s.Usage(ctx(t)); err != nil || usage[0].Cooling != 2 || usage[0].Used != 2 {
		t.Fatalf("usage %+v (%v), want 2 used, both cooling", usage, err)
	}
}

func mustAddIPs(t *testing.T, s *Session, id string) []store.AttachedAddr {
	t.Helper()
	ips, err := s.Add(ctx(t), id, "eth0", nil)
	if err != nil {
		t.Fatalf("Add(%s): %v", id, err)
	}
	return ips
}
