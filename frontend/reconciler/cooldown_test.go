package reconciler

import (
	"net/netip"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// TestReleasedLeaksCoolAndUnderNoSpaceAreDeleted: on a network with a
// cooldown, the reconciler's release of a leak leaves its address cooling
// (held for nobody), as DEL's does; under etcd's NOSPACE alarm the
// release still succeeds, with deletes only, and nothing cools (NOTES
// 28, 29).
func TestReleasedLeaksCoolAndUnderNoSpaceAreDeleted(t *testing.T) {
	c := newCluster(t, `, "cooldown": "1h"`)
	c.namespace("shop")
	c.node("node-1")
	c.node("node-2")
	// A node that stays, with a live pod: the reconciler releases for a
	// missing node only while some attachment names a node it has.
	c.node("node-3")
	c.podADD("shop", "web-1", "node-1", "c-web-1")
	c.podADD("shop", "web-2", "node-2", "c-web-2")
	c.podADD("shop", "web-3", "node-3", "c-web-3")
	addrOf := func(container string) netip.Addr {
		atts, err := c.session.ContainerAttachments(t.Context(), container, "eth0")
		if err != nil || len(atts) != 1 {
			t.Fatalf("attachment of %s: %v (%v)", container, atts, err)
		}
		return atts[0].IPs[0].Address.Addr()
	}
	a1, a2 := addrOf("c-web-1"), addrOf("c-web-2")
	r := c.reconciler(c.admin, "r")
	deleteNode := func(name string) {
		t.Helper()
		if err := c.admin.CoreV1().Nodes().Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, name+"'s deletion reached the cache", func() bool {
			_, ok, _ := r.nodes.GetIndexer().GetByKey(name)
			return !ok
		})
	}
	lookup := func(a netip.Addr) *store.StoredAllocation {
		t.Helper()
		held, err := c.session.LookupAddress(t.Context(), a)
		if err != nil {
			t.Fatal(err)
		}
		return held
	}

	deleteNode("node-1")
	if report := r.Pass(t.Context()); report.Released != 1 {
		t.Fatalf("pass after node-1's deletion: %+v", report)
	}
	if held := lookup(a1); held == nil || held.Hold == nil || held.Hold.Kind != store.HoldCooling || held.Hold.For != nil {
		t.Fatalf("%s after the reconciler's release: %+v, want a cooling hold for nobody", a1, held)
	}

	cli := c.etcd.Client(t)
	etcdtest.RaiseNoSpace(t, cli)
	defer etcdtest.ClearNoSpace(t, cli)
	deleteNode("node-2")
	if report := r.Pass(t.Context()); report.Released != 1 {
		t.Fatalf("pass after node-2's deletion under NOSPACE: %+v", report)
	}
	if held := lookup(a2); held != nil {
		t.Fatalf("%s after the reconciler's release under NOSPACE: %+v, want free", a2, held)
	}
}
