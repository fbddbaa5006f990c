package ipam

import (
	"fmt"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// TestStickyRestartsDoNotPileUpLeases: M pods restarted N times each on
// a sticky network (DEL making holds, then the next instance's ADD taking
// them back), on two nodes, leave at most about M leases in etcd: each
// node reuses its lease, instead of granting one per DEL that the ADD
// leaves behind.
func TestStickyRestartsDoNotPileUpLeases(t *testing.T) {
	const pods, restarts = 10, 20
	srv := etcdtest.Start(t)
	conf, a := stickyNet(t, srv, "leases", time.Hour)
	b := openSession(t, conf, "node-b")
	for p := range pods {
		if _, err := a.AddPod(ctx(t), fmt.Sprintf("web-%d-0", p), "eth0", nil, pod(fmt.Sprintf("web-%d", p))); err != nil {
			t.Fatal(err)
		}
	}
	for r := range restarts {
		// Each restart moves the pod to the other node, as a
		// rescheduled StatefulSet pod does.
		from, to := []*Session{a, b}[r%2], []*Session{b, a}[r%2]
		for p := range pods {
			if err := from.Del(ctx(t), fmt.Sprintf("web-%d-%d", p, r), "eth0"); err != nil {
				t.Fatal(err)
			}
			if _, err := to.AddPod(ctx(t), fmt.Sprintf("web-%d-%d", p, r+1), "eth0", nil, pod(fmt.Sprintf("web-%d", p))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// GC's releases reuse the node's lease too.
	if _, err := []*Session{a, b}[restarts%2].GC(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	leases, err := srv.Client(t).Leases(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pods restarted %d times on 2 nodes, then GC: %d leases in etcd", pods, restarts, len(leases.Leases))
	if len(leases.Leases) > pods {
		t.Fatalf("%d leases after %d sticky restarts of %d pods, want at most %d", len(leases.Leases), pods*restarts, pods, pods)
	}
}

// TestStickyDELSurvivesALostLease: a node's recorded lease that etcd no
// longer has (revoked by hand, say) costs the DEL a new lease, not a
// failure, and the holds are made under the new one.
func TestStickyDELSurvivesALostLease(t *testing.T) {
	srv := etcdtest.Start(t)
	_, s := stickyNet(t, srv, "lost-lease", time.Hour)
	cli := srv.Client(t)
	ips, err := s.AddPod(ctx(t), "web-0-a", "eth0", nil, pod("web-0"))
	if err != nil {
		t.Fatal(err)
	}
	// A record naming a lease etcd never granted, valid for a day.
	etcdtest.Put(t, cli, store.Root+"lost-lease/leases/node-a", fmt.Sprintf(`{"id":12345,"until":%q}`, time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)))
	if err := s.Del(ctx(t), "web-0-a", "eth0"); err != nil {
		t.Fatalf("DEL with a lost lease recorded: %v", err)
	}
	held, err := s.LookupAddress(ctx(t), ips[0].Address.Addr())
	if err != nil || held == nil || held.Hold == nil || held.Hold.Kind != store.HoldSticky {
		t.Fatalf("after DEL: %+v (%v), want a sticky hold", held, err)
	}
	leases, err := cli.Leases(ctx(t))
	if err != nil || len(leases.Leases) != 1 {
		t.Fatalf("leases: %+v (%v), want the one new lease", leases, err)
	}
}
