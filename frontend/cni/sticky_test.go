package main

import (
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestStickyPodThroughThePlugin runs the address policy as a runtime
// drives it: CNI_ARGS carry the pod, the network is sticky, and the pod's
// second instance, on another node, gets the first one's dual-stack
// addresses after its DEL, and code 11 before it.
func TestStickyPodThroughThePlugin(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := func(node string) string {
		return `{"cniVersion": "1.1.0", "name": "sticky", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() +
			`"}, "nodeName": "` + node + `", "sticky": "1h", "ranges": [[{"subnet": "203.0.113.0/28"}], [{"subnet": "2001:db8:60::/124"}]]}}`
	}
	const web0 = "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_UID=u1;K8S_POD_INFRA_CONTAINER_ID=ca"
	first := parseResult(t, mustSucceed(t, invocation{Command: "ADD", ContainerID: "ca", Args: web0, Config: conf("node-a")})).summary()

	// web-0's next instance on node B, before the old DEL: code 11.
	e := mustFail(t, invocation{Command: "ADD", ContainerID: "cb", Args: web0, Config: conf("node-b")}, 11)
	if !strings.Contains(e.Msg, "container ca") || !strings.Contains(e.Msg, "node-a") {
		t.Fatalf("ADD of web-0's second instance: %+v; want the first one named", e)
	}
	// Another pod meanwhile gets other addresses.
	other := parseResult(t, mustSucceed(t, invocation{Command: "ADD", ContainerID: "cx", Args: "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1", Config: conf("node-b")})).summary()
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "ca", Args: web0, Config: conf("node-a")})
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "cx", Config: conf("node-b")})
	// web-1's addresses are held for it too; a pod without identity gets
	// neither web-0's nor web-1's.
	anon := parseResult(t, mustSucceed(t, invocation{Command: "ADD", ContainerID: "cy", Config: conf("node-b")})).summary()
	if anon == first || anon == other {
		t.Fatalf("a container without pod identity got %s (web-0 had %s, web-1 %s)", anon, first, other)
	}
	again := parseResult(t, mustSucceed(t, invocation{Command: "ADD", ContainerID: "cb", Args: web0, Config: conf("node-b")})).summary()
	if again != first {
		t.Fatalf("web-0 on node B got %s, had %s on node A", again, first)
	}
	// CHECK agrees that the new instance holds them.
	mustSucceed(t, invocation{Command: "CHECK", ContainerID: "cb", Args: web0, Config: conf("node-b")})
}

// TestStickyMistakes: a sticky duration that is not one is a clear CNI
// error and stores nothing.
func TestStickyMistakes(t *testing.T) {
	srv := etcdtest.Start(t)
	base := `{"cniVersion": "1.1.0", "name": "mistakes", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() + `"}, %s"ranges": [[{"subnet": "203.0.113.0/28"}]]}}`
	for _, sticky := range []string{`"sticky": "soon", `, `"sticky": "0s", `, `"sticky": "-1h", `} {
		e := mustFail(t, invocation{Command: "ADD", ContainerID: "c1", Config: strings.Replace(base, "%s", sticky, 1)}, 7)
		if !strings.Contains(e.Msg, `"sticky"`) {
			t.Fatalf("%s: %+v", sticky, e)
		}
	}
	resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/networks/mistakes/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("the refused ADDs stored %d keys (%v)", len(resp.Kvs), err)
	}
}
