package ipam

import (
	"bufio"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// loadRecords writes the keys of file (a key line, then its value line,
// keys relative to the network's prefix) into network name, in one
// transaction per attachment's worth of keys as an ADD would have.
func loadRecords(t *testing.T, cli *clientv3.Client, name, file string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var ops []clientv3.Op
	for sc.Scan() {
		key := sc.Text()
		if !sc.Scan() {
			t.Fatalf("%s: key %q has no value line", file, key)
		}
		ops = append(ops, clientv3.OpPut(store.Root+name+"/"+key, sc.Text()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Txn(ctx(t)).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestRecordsOfTheFirstReleaseStillWork loads the keys exactly as the
// release before the lean write left them (testdata/records-v1.txt, written
// by that code's ADDs: a plain dual-stack attachment, pods on a sticky
// network on two nodes) and runs every operation that reads attachments
// on them: a repeated ADD, CHECK, listing, DEL with a sticky hold taken
// back, GC and reclaim. There is no flag day: a cluster upgrades node by
// node, and what the old plugin wrote stays readable.
func TestRecordsOfTheFirstReleaseStillWork(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	loadRecords(t, cli, "legacy", "testdata/records-v1.txt")
	conf := testNetwork(srv, "legacy",
		[]core.RangeSpec{{Subnet: "192.0.2.0/24"}},
		[]core.RangeSpec{{Subnet: "2001:db8:7::/64"}})
	conf.Sticky = time.Hour
	s := openSession(t, conf, "node-a")

	if got, want := mustAdd(t, s, "plain"), []string{"192.0.2.2/24", "2001:db8:7::2/64"}; !slices.Equal(got, want) {
		t.Errorf("repeated ADD of an old attachment: %v, want its addresses %v", got, want)
	}
	if err := s.Check(ctx(t), "plain", "eth0"); err != nil {
		t.Errorf("CHECK of an old attachment: %v", err)
	}
	atts, err := s.Attachments(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, a := range atts {
		if a.Damaged {
			t.Errorf("old attachment %s/%s read as damaged", a.ContainerID, a.IfName)
		}
		listed[a.ContainerID+"/"+a.IfName] = a.Node + " " + addrs(a.IPs)[0]
	}
	wantListed := map[string]string{
		"plain/eth0": "node-a 192.0.2.2/24", "pod-web-0/eth0": "node-a 192.0.2.3/24",
		"pod-web-1/eth0": "node-a 192.0.2.4/24", "pod-db-0/net1": "node-b 192.0.2.221/24",
	}
	if !mapsEqual(listed, wantListed) {
		t.Errorf("listed %v, want %v", listed, wantListed)
	}
	if a, err := s.LookupAddress(ctx(t), netip.MustParseAddr("192.0.2.3")); err != nil || a == nil || a.ContainerID != "pod-web-0" || a.Pod == nil || a.Pod.Name != "web-0" {
		t.Errorf("lookup of an old address: %+v, %v", a, err)
	}

	// DEL on a sticky network holds the pod's addresses; its next pod
	// takes them back.
	if err := s.Del(ctx(t), "pod-web-0", "eth0"); err != nil {
		t.Fatalf("DEL of an old attachment: %v", err)
	}
	web0 := &store.PodRef{Namespace: "shop", Name: "web-0", UID: "new-uid"}
	ips, err := s.AddPod(ctx(t), "pod-web-0-again", "eth0", nil, web0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := addrs(ips), []string{"192.0.2.3/24", "2001:db8:7::3/64"}; !slices.Equal(got, want) {
		t.Errorf("sticky pod after DEL of its old attachment got %v, want %v", got, want)
	}

	// GC on node-a keeps the listed attachments and releases pod-web-1.
	released, err := s.GC(ctx(t), []types.GCAttachment{{ContainerID: "plain", IfName: "eth0"}, {ContainerID: "pod-web-0-again", IfName: "eth0"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(released) != 1 || released[0].ContainerID != "pod-web-1" {
		t.Errorf("GC released %+v, want pod-web-1 alone", released)
	}

	// node-b was last seen when the records were written: reclaim it.
	silent, err := s.SilentNodes(ctx(t), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var reclaimed int
	for _, node := range silent {
		if node.Node == "node-b" {
			if reclaimed, _, err = s.Reclaim(ctx(t), node); err != nil {
				t.Fatal(err)
			}
		}
	}
	if reclaimed != 1 {
		t.Errorf("reclaim of node-b released %d attachments, want its one", reclaimed)
	}
	left, err := s.Attachments(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range left {
		names = append(names, a.ContainerID)
	}
	slices.Sort(names)
	if want := []string{"plain", "pod-web-0-again"}; !slices.Equal(names, want) {
		t.Errorf("attachments left %v, want %v", names, want)
	}
	if err := s.Del(ctx(t), "plain", "eth0"); err != nil {
		t.Fatal(err)
	}
	if a, err := s.LookupAddress(ctx(t), netip.MustParseAddr("192.0.2.2")); err != nil || a != nil {
		t.Errorf("after DEL of the old plain attachment its address is %+v, %v; want free", a, err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
