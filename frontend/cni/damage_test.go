package main

import (
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestDamagedStateNeverFreesAnAddress writes junk into every kind of key
// of a network by hand, as a mistaken operator or another program might,
// and checks that no damaged value makes a taken address look free, that
// ADD and CHECK refuse to build on a damaged record, and that DEL and GC
// still release exactly the addresses the damaged records held.
func TestDamagedStateNeverFreesAnAddress(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	// 192.0.2.2 to .6 can be handed out (.1 is the gateway): five.
	conf := `{"cniVersion": "1.1.0", "name": "damaged", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() +
		`"}, "ranges": [[{"subnet": "192.0.2.0/29"}]]}}`
	add := func(id string) string {
		t.Helper()
		return parseResult(t, mustSucceed(t, invocation{Command: "ADD", ContainerID: id, Config: conf})).summary()
	}
	put := func(key, value string) {
		t.Helper()
		if _, err := cli.Put(t.Context(), "/etcd-cni/networks/damaged/"+key, value); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []string{"c1", "c2", "c3"} {
		if got, want := add(id), "192.0.2."+string(rune('2'+i))+"/29 gw 192.0.2.1"; got != want {
			t.Fatalf("ADD %s = %s, want %s", id, got, want)
		}
	}
	put("containers/c1/eth0", "{not json")        // c1's record, holding .2
	put("ips/192.000.002.003", "\x00\xffgarbage") // c2's address .3
	put("last-reserved/0", "[[[")                 // the round-robin position
	put("containers/stray", "x")                  // a key no ADD writes

	// The two free addresses go out, never .2 or .3; then the pool is full.
	got := map[string]bool{add("c4"): true, add("c5"): true}
	for _, want := range []string{"192.0.2.5/29 gw 192.0.2.1", "192.0.2.6/29 gw 192.0.2.1"} {
		if !got[want] {
			t.Fatalf("ADDs after the damage got %v, want .5 and .6", got)
		}
	}
	mustFail(t, invocation{Command: "ADD", ContainerID: "c6", Config: conf}, 100)

	// A damaged record is reported, not overwritten or doubled.
	for _, cmd := range []string{"ADD", "CHECK"} {
		out := run(t, invocation{Command: cmd, ContainerID: "c1", Config: conf})
		e := oneCNIError(t, out.Stdout)
		if !strings.Contains(e.Msg, "damaged") || !strings.Contains(e.Msg, "containers/c1/eth0") || !strings.Contains(e.Msg, "DEL") {
			t.Errorf("%s of the damaged c1: %+v; want it named as damaged with the way out", cmd, e)
		}
	}

	// DEL of the damaged c1 frees exactly its .2; DEL of c2 frees .3.
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "c1", Config: conf})
	if got := add("c6"); got != "192.0.2.2/29 gw 192.0.2.1" {
		t.Fatalf("ADD after DEL of the damaged c1 = %s, want its 192.0.2.2", got)
	}
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "c2", Config: conf})
	if got := add("c7"); got != "192.0.2.3/29 gw 192.0.2.1" {
		t.Fatalf("ADD after DEL of c2 = %s, want its 192.0.2.3", got)
	}

	// GC keeps the listed attachments and collects this node's others,
	// damaged or not: c7's record is damaged now, but its address record
	// names its node. The stray key names no node and no address: GC
	// cannot tell it is this node's, so it stays for an operator.
	put("containers/c7/eth0", "null")
	gc := strings.Replace(conf, `"name": "damaged",`, `"name": "damaged", "cni.dev/valid-attachments": [`+
		`{"containerID": "c3", "ifname": "eth0"}, {"containerID": "c4", "ifname": "eth0"}, {"containerID": "c5", "ifname": "eth0"}, {"containerID": "c6", "ifname": "eth0"}],`, 1)
	mustSucceed(t, invocation{Command: "GC", Config: gc})
	resp, err := cli.Get(t.Context(), "/etcd-cni/networks/damaged/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, strings.TrimPrefix(string(kv.Key), "/etcd-cni/networks/damaged/"))
	}
	want := "containers/c3/eth0 containers/c4/eth0 containers/c5/eth0 containers/c6/eth0 containers/stray " +
		"ips/192.000.002.002 ips/192.000.002.004 ips/192.000.002.005 ips/192.000.002.006 last-reserved/0 " +
		"nodes/test-node/192.000.002.002 nodes/test-node/192.000.002.004 nodes/test-node/192.000.002.005 nodes/test-node/192.000.002.006 " +
		"seen/test-node"
	if strings.Join(keys, " ") != want {
		t.Errorf("after GC the network holds\n%s\nwant\n%s", strings.Join(keys, " "), want)
	}
}
