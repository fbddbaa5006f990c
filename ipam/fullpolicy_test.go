package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// A release path under test: it releases the attachments of containers
// ids (all made by s's node), as DEL, GC, reclaim or the operator's
// release would.
type releasePath struct {
	name    string
	release func(t *testing.T, s *Session, ids []string) error
}

var releasePaths = []releasePath{
	{"DEL", func(t *testing.T, s *Session, ids []string) error {
		for _, id := range ids {
			if err := s.Del(ctx(t), id, "eth0"); err != nil {
				return err
			}
		}
		return nil
	}},
	{"GC", func(t *testing.T, s *Session, ids []string) error {
		// Keep every attachment of the node but ids.
		all, err := s.NodeAttachments(ctx(t), s.Node())
		if err != nil {
			return err
		}
		var keep []types.GCAttachment
		for _, att := range all {
			if !slices.Contains(ids, att.ContainerID) {
				keep = append(keep, types.GCAttachment{ContainerID: att.ContainerID, IfName: att.IfName})
			}
		}
		released, err := s.GC(ctx(t), keep)
		if err == nil && len(released) != len(ids) {
			return fmt.Errorf("GC released %d attachments, want %d", len(released), len(ids))
		}
		return err
	}},
	{"reclaim", func(t *testing.T, s *Session, ids []string) error {
		atts := attachmentsOf(t, s, ids)
		released, _, err := s.Reclaim(ctx(t), SilentNode{NodeReport: NodeReport{Sighting: store.Sighting{Node: s.Node()}}, Attachments: atts})
		if err == nil && released != len(ids) {
			return fmt.Errorf("reclaim released %d attachments, want %d", released, len(ids))
		}
		return err
	}},
	{"release --container", func(t *testing.T, s *Session, ids []string) error {
		released, err := s.FreeAttachments(ctx(t), attachmentsOf(t, s, ids))
		if err == nil && released != len(ids) {
			return fmt.Errorf("released %d attachments, want %d", released, len(ids))
		}
		return err
	}},
	{"release ADDRESS", func(t *testing.T, s *Session, ids []string) error {
		for _, att := range attachmentsOf(t, s, ids) {
			for _, ip := range att.IPs {
				held, err := s.LookupAddress(ctx(t), ip.Address.Addr())
				if err != nil {
					return err
				}
				if _, err := s.ReleaseAddress(ctx(t), *held); err != nil {
					return err
				}
			}
		}
		return nil
	}},
}

func attachmentsOf(t *testing.T, s *Session, ids []string) []store.StoredAttachment {
	t.Helper()
	var out []store.StoredAttachment
	for _, id := range ids {
		atts, err := s.ContainerAttachments(ctx(t), id, "eth0")
		if err != nil || len(atts) != 1 {
			t.Fatalf("attachment of %s: %v (%v)", id, atts, err)
		}
		out = append(out, atts[0])
	}
	return out
}

// TestEveryReleaseSucceedsUnderNoSpace: with etcd's NOSPACE alarm raised,
// every release path (DEL, GC, reclaim, the operator's release of a
// container or an address) frees a reserved, a sticky and a plain
// attachment with deletes only: it succeeds, makes no sticky hold, leaves
// alone what others have (another node's container, another pod's
// sticky hold, a reservation for nobody), and the reservation survives:
// the pod gets its address back once the alarm is cleared, and ls finds
// the reservation meanwhile.
func TestEveryReleaseSucceedsUnderNoSpace(t *testing.T) {
	for i, path := range releasePaths {
		t.Run(path.name, func(t *testing.T) {
			srv := etcdtest.Start(t)
			cli := srv.Client(t)
			conf := testNetwork(srv, "full", []core.RangeSpec{{Subnet: fmt.Sprintf("10.%d.0.0/24", 60+i)}})
			conf.Sticky = time.Hour
			s := openSession(t, conf, "node-a")
			other := openSession(t, conf, "node-b")
			static := netip.MustParseAddr(fmt.Sprintf("10.%d.0.50", 60+i))
			nobody := netip.MustParseAddr(fmt.Sprintf("10.%d.0.51", 60+i))
			router := &store.Identity{Namespace: "db", Name: "router-0", IfName: "eth0"}
			if _, err := s.Reserve(ctx(t), []netip.Addr{static}, router, "static"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Reserve(ctx(t), []netip.Addr{nobody}, nil, "broken NIC"); err != nil {
				t.Fatal(err)
			}
			// Another pod's sticky hold and another node's container.
			if _, err := other.AddPod(ctx(t), "web-1-a", "eth0", nil, &store.PodRef{Namespace: "shop", Name: "web-1"}); err != nil {
				t.Fatal(err)
			}
			if err := other.Del(ctx(t), "web-1-a", "eth0"); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Add(ctx(t), "bystander", "eth0", nil); err != nil {
				t.Fatal(err)
			}
			ips, err := s.AddPod(ctx(t), "router", "eth0", nil, &store.PodRef{Namespace: "db", Name: "router-0"})
			if err != nil || addrsOf(ips)[0] != static {
				t.Fatalf("router got %v (%v), want its reservation %s", ips, err, static)
			}
			if _, err := s.AddPod(ctx(t), "web", "eth0", nil, &store.PodRef{Namespace: "shop", Name: "web-0"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Add(ctx(t), "plain", "eth0", nil); err != nil {
				t.Fatal(err)
			}
			before := allocationsByAddr(t, s)

			etcdtest.RaiseNoSpace(t, cli)
			ids := []string{"router", "web", "plain"}
			released := attachmentsOf(t, s, ids)
			if err := path.release(t, s, ids); err != nil {
				t.Fatalf("%s under the NOSPACE alarm: %v", path.name, err)
			}
			after := allocationsByAddr(t, s)
			for _, att := range released {
				a := att.IPs[0].Address.Addr()
				if got, ok := after[a]; ok {
					t.Errorf("%s of %s left %s as %+v, want it freed (no hold under the alarm)", path.name, att.ContainerID, a, got)
				}
				delete(before, a)
			}
			for a, was := range before {
				if now, ok := after[a]; !ok || now.ModRevision != was.ModRevision {
					t.Errorf("%s changed %s, which was not its to release: %+v, now %+v", path.name, a, was, now)
				}
			}
			if left, err := s.Attachments(ctx(t)); err != nil || len(left) != 1 || left[0].ContainerID != "bystander" {
				t.Errorf("attachments left: %v (%v), want the bystander's only", left, err)
			}
			set, err := s.net.HeldSet(ctx(t), *router)
			if err != nil || set == nil || len(set.Addrs) != 1 || set.Addrs[0].Addr != static || set.Addrs[0].Hold.Kind != store.HoldReserved {
				t.Fatalf("router-0's reservation after %s: %+v (%v), want %s still reserved", path.name, set, err, static)
			}
			if holds, err := s.Holds(ctx(t)); err != nil || !slices.ContainsFunc(holds, func(h store.StoredHeldSet) bool { return h.For == *router }) {
				t.Errorf("Holds (ls) after %s: %+v (%v), want router-0's reservation", path.name, holds, err)
			}

			etcdtest.ClearNoSpace(t, cli)
			ips, err = s.AddPod(ctx(t), "router-2", "eth0", nil, &store.PodRef{Namespace: "db", Name: "router-0"})
			if err != nil || addrsOf(ips)[0] != static {
				t.Fatalf("router-0 after the alarm got %v (%v), want its reservation %s", ips, err, static)
			}
			// And DEL gives it back to the reservation, as ever.
			if err := s.Del(ctx(t), "router-2", "eth0"); err != nil {
				t.Fatal(err)
			}
			if h, err := s.LookupAddress(ctx(t), static); err != nil || h == nil || h.Hold == nil || h.Hold.Kind != store.HoldReserved || *h.Hold.For != *router {
				t.Fatalf("after DEL %s is %+v (%v), want reserved for router-0", static, h, err)
			}
		})
	}
}

func allocationsByAddr(t *testing.T, s *Session) map[netip.Addr]store.StoredAllocation {
	t.Helper()
	all, err := s.Allocations(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Addr]store.StoredAllocation{}
	for _, a := range all {
		out[a.Addr] = a
	}
	return out
}

// Records as the plugin before the reservation's NOSPACE fix wrote them,
// byte for byte: db/router-0/eth0 reserved 203.0.113.4 and 2001:db8:9::4
// (etcd-ipam reserve), then its container c-router took them (ADD).
var todaysReservation = [][2]string{
	{"held/2001:0db8:0009:0000:0000:0000:0000:0004", `reserved`},
	{"held/203.000.113.004", `reserved`},
	{"holds/db/router-0/eth0", `{"ips":[{"ip":"203.0.113.4","rangeSet":0,"hold":{"for":{"namespace":"db","name":"router-0","ifName":"eth0"},"kind":"reserved","since":"2025-01-02T03:04:05Z","note":"static"}},{"ip":"2001:db8:9::4","rangeSet":1,"hold":{"for":{"namespace":"db","name":"router-0","ifName":"eth0"},"kind":"reserved","since":"2025-01-02T03:04:05Z","note":"static"}}]}`},
	{"ips/2001:0db8:0009:0000:0000:0000:0000:0004", `{"rangeSet":1,"hold":{"for":{"namespace":"db","name":"router-0","ifName":"eth0"},"kind":"reserved","since":"2025-01-02T03:04:05Z","note":"static"}}`},
	{"ips/203.000.113.004", `{"rangeSet":0,"hold":{"for":{"namespace":"db","name":"router-0","ifName":"eth0"},"kind":"reserved","since":"2025-01-02T03:04:05Z","note":"static"}}`},
}

var todaysAttachment = [][2]string{
	{"containers/c-router/eth0", `{"containerID":"c-router","ifName":"eth0","node":"node-a","created":"2025-01-02T03:04:05Z","ips":[{"address":"203.0.113.4/29","gateway":"203.0.113.1","rangeSet":0,"reserved":{"for":{"namespace":"db","name":"router-0","ifName":"eth0"},"kind":"reserved","since":"2025-01-02T03:04:05Z","note":"static"}},{"address":"2001:db8:9::4/125","gateway":"2001:db8:9::1","rangeSet":1,"reserved":{"for":{"namespace":"db","name":"router-0","ifName":"eth0"},"kind":"reserved","since":"2025-01-02T03:04:05Z","note":"static"}}],"pod":{"namespace":"db","name":"router-0","uid":"u1"}}`},
	{"ips/2001:0db8:0009:0000:0000:0000:0000:0004", `{"containerID":"c-router","ifName":"eth0","node":"node-a","rangeSet":1,"created":"2025-01-02T03:04:05Z","pod":{"namespace":"db","name":"router-0","uid":"u1"}}`},
	{"ips/203.000.113.004", `{"containerID":"c-router","ifName":"eth0","node":"node-a","rangeSet":0,"created":"2025-01-02T03:04:05Z","pod":{"namespace":"db","name":"router-0","uid":"u1"}}`},
	{"nodes/node-a/2001:0db8:0009:0000:0000:0000:0000:0004", `c-router/eth0`},
	{"nodes/node-a/203.000.113.004", `c-router/eth0`},
}

// writeToday writes records in one transaction, as the plugin's did;
// drop names keys that transaction deleted.
func writeToday(t *testing.T, cli *clientv3.Client, prefix string, records [][2]string, drop ...string) {
	t.Helper()
	var ops []clientv3.Op
	for _, r := range records {
		ops = append(ops, clientv3.OpPut(prefix+r[0], r[1]))
	}
	for _, k := range drop {
		ops = append(ops, clientv3.OpDelete(prefix+k))
	}
	if _, err := cli.Txn(ctx(t)).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestTodaysReservationRecordsUnderNoSpace: a reservation and the
// attachment that took it, exactly as the plugin wrote them before, are
// released under the alarm (DEL, deletes only), and the pod's next ADD
// takes both addresses back; a normal DEL of them still turns them back
// into the reservation's holds.
func TestTodaysReservationRecordsUnderNoSpace(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	conf := testNetwork(srv, "legacy", []core.RangeSpec{{Subnet: "203.0.113.0/29"}}, []core.RangeSpec{{Subnet: "2001:db8:9::/125"}})
	s := openSession(t, conf, "node-a")
	prefix := store.Root + "legacy/"
	writeToday(t, cli, prefix, todaysReservation)
	writeToday(t, cli, prefix, todaysAttachment, "held/203.000.113.004", "held/2001:0db8:0009:0000:0000:0000:0000:0004")
	want := []netip.Addr{netip.MustParseAddr("203.0.113.4"), netip.MustParseAddr("2001:db8:9::4")}
	router := &store.PodRef{Namespace: "db", Name: "router-0"}

	etcdtest.RaiseNoSpace(t, cli)
	if err := s.Del(ctx(t), "c-router", "eth0"); err != nil {
		t.Fatalf("DEL of today's reserved attachment under the NOSPACE alarm: %v", err)
	}
	etcdtest.ClearNoSpace(t, cli)
	ips, err := s.AddPod(ctx(t), "c-router-2", "eth0", nil, router)
	if err != nil || !slices.Equal(addrsOf(ips), want) {
		t.Fatalf("router-0 after the alarm got %v (%v), want %v", ips, err, want)
	}
	if err := s.Del(ctx(t), "c-router-2", "eth0"); err != nil {
		t.Fatal(err)
	}
	for _, a := range want {
		if h, err := s.LookupAddress(ctx(t), a); err != nil || h == nil || h.Hold == nil || h.Hold.Kind != store.HoldReserved || h.Hold.Note != "static" {
			t.Fatalf("after a normal DEL %s is %+v (%v), want reserved again", a, h, err)
		}
	}
	// Today's unattached reservation, taken by the new ADD.
	if ips, err := s.AddPod(ctx(t), "c-router-3", "eth0", nil, router); err != nil || !slices.Equal(addrsOf(ips), want) {
		t.Fatalf("router-0 from its held reservation got %v (%v), want %v", ips, err, want)
	}
}
