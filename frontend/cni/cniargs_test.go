package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/ipam"
	"github.com/etcd-cni/etcd-ipam/store"
)

// argsNetwork is a sticky network on srv, so that a pod taken for an
// identity by mistake would leave a hold behind its DEL.
func argsNetwork(srv *etcdtest.Server, name string) string {
	return `{"cniVersion": "1.1.0", "name": "` + name + `", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() +
		`"}, "sticky": "1h", "ranges": [[{"subnet": "203.0.113.0/28"}]]}}`
}

// networkKeys returns the keys under a network's prefix and their values.
func networkKeys(t *testing.T, cli *clientv3.Client, network string) map[string]string {
	t.Helper()
	resp, err := cli.Get(t.Context(), store.Root+network+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, kv := range resp.Kvs {
		keys[strings.TrimPrefix(string(kv.Key), store.Root+network+"/")] = string(kv.Value)
	}
	return keys
}

// onlyBookkeeping fails unless the network's keys hold no address, hold,
// attachment or pod record: what may stay after every DEL is the
// round-robin position and the node's liveness record.
func onlyBookkeeping(t *testing.T, what string, keys map[string]string) {
	t.Helper()
	for k := range keys {
		if !strings.HasPrefix(k, "last-reserved/") && !strings.HasPrefix(k, "seen/") {
			t.Errorf("%s: %s is left", what, k)
		}
	}
}

// TestCNIArgsAsRuntimesSendThem runs ADD and DEL with CNI_ARGS in the
// shapes real runtimes send (NOTES 25), on a sticky network. Each ADD
// succeeds and records the pod as sent; only a pod that Kubernetes could
// have becomes an identity, so only its DEL leaves a hold. podman's lone
// container name was refused on ADD and DEL before, which kept podman
// containers from starting.
func TestCNIArgsAsRuntimesSendThem(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	for i, tc := range []struct {
		runtime, args string
		pod           *store.PodRef
		identity      bool
	}{
		{"containerd", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=c0;K8S_POD_UID=u0",
			&store.PodRef{Namespace: "shop", Name: "web-0", UID: "u0"}, true},
		{"Multus (IgnoreUnknown=true, its own keys)", "IgnoreUnknown=true;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=u1;K8S_POD_NETWORK=x",
			&store.PodRef{Namespace: "shop", Name: "web-1", UID: "u1"}, true},
		{"podman", "IgnoreUnknown=1;K8S_POD_NAME=a", &store.PodRef{Name: "a"}, false},
		{"a namespace alone", "K8S_POD_NAMESPACE=shop", &store.PodRef{Namespace: "shop"}, false},
		{"a name no pod can have", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=a/b", &store.PodRef{Namespace: "ns", Name: "a/b"}, false},
		{"empty values", "IgnoreUnknown=1;K8S_POD_NAMESPACE=;K8S_POD_NAME=", nil, false},
	} {
		network := "args" + string(rune('a'+i))
		inv := invocation{ContainerID: "c", Args: tc.args, Config: argsNetwork(srv, network)}
		inv.Command = "ADD"
		mustSucceed(t, inv)
		var att store.Attachment
		if err := json.Unmarshal([]byte(networkKeys(t, cli, network)["containers/c/eth0"]), &att); err != nil {
			t.Fatalf("%s: the attachment record: %v", tc.runtime, err)
		}
		if !podEqual(att.Pod, tc.pod) {
			t.Errorf("%s: recorded pod %+v, want %+v", tc.runtime, att.Pod, tc.pod)
		}
		inv.Command = "CHECK"
		mustSucceed(t, inv)
		inv.Command = "DEL"
		mustSucceed(t, inv)
		keys := networkKeys(t, cli, network)
		if tc.identity {
			if _, ok := keys["holds/"+tc.pod.Namespace+"/"+tc.pod.Name+"/eth0"]; !ok {
				t.Errorf("%s: the DEL of a pod on a sticky network left no hold: %v", tc.runtime, keys)
			}
			continue
		}
		onlyBookkeeping(t, tc.runtime, keys)
	}
}

func podEqual(a, b *store.PodRef) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// oddCNIArgs are CNI_ARGS that an ADD may refuse but that DEL, CHECK, GC
// and STATUS must never fail on: a runtime retries a failing DEL forever
// and the address leaks.
var oddCNIArgs = []string{
	"K8S_POD_NAME=p", "K8S_POD_NAMESPACE=ns", "K8S_POD_NAME=", ";;;", "FOO=1", "=v", "novalue",
	"K8S_POD_NAME=p=q", "k8s_pod_name=p", "IP=198.51.100.300", "IP=203.0.113.9", "IgnoreUnknown=maybe",
	"K8S_POD_NAMESPACE=ns;K8S_POD_NAME=a/b", "\xff\xfe=\x01", strings.Repeat("K=V;", 2000),
}

// TestReleaseWhateverCNIArgs: with each of oddCNIArgs, DEL of an existing
// attachment succeeds and frees it, and CHECK, GC and STATUS succeed, as
// they do without CNI_ARGS.
func TestReleaseWhateverCNIArgs(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	conf := argsNetwork(srv, "odd")
	gcConf := strings.Replace(conf, `"name"`, `"cni.dev/valid-attachments": [], "name"`, 1)
	for _, args := range oddCNIArgs {
		mustSucceed(t, invocation{Command: "ADD", ContainerID: "c", Config: conf})
		mustSucceed(t, invocation{Command: "CHECK", ContainerID: "c", Args: args, Config: conf})
		mustSucceed(t, invocation{Command: "STATUS", Args: args, Config: conf})
		mustSucceed(t, invocation{Command: "DEL", ContainerID: "c", Args: args, Config: conf})
		onlyBookkeeping(t, "DEL with CNI_ARGS "+strings.ToValidUTF8(args[:min(len(args), 40)], "?"), networkKeys(t, cli, "odd"))

		mustSucceed(t, invocation{Command: "ADD", ContainerID: "g", Config: conf})
		mustSucceed(t, invocation{Command: "GC", Args: args, Config: gcConf})
		onlyBookkeeping(t, "GC with CNI_ARGS "+strings.ToValidUTF8(args[:min(len(args), 40)], "?"), networkKeys(t, cli, "odd"))
	}
}

// FuzzDelWhateverCNIArgs: for any CNI_ARGS string, the plugin's DEL of an
// existing attachment succeeds and frees its address. The ADD is made
// through ipam (it is not under test); the DEL is the plugin's own.
func FuzzDelWhateverCNIArgs(f *testing.F) {
	for _, args := range oddCNIArgs {
		f.Add(args)
	}
	f.Add("IgnoreUnknown=1;K8S_POD_NAME=\x00")
	srv := etcdtest.Start(f)
	cli := srv.Client(f)
	stdin := []byte(argsNetwork(srv, "fuzz"))
	conf, err := config.LoadNetwork(stdin)
	if err != nil {
		f.Fatal(err)
	}
	s, err := ipam.Open(conf, ipam.Options{Core: native.New(), Node: "fuzz-node"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	p := newPlugin(func(k string) string {
		if k == config.NodeNameEnv {
			return "fuzz-node"
		}
		return ""
	}, io.Discard)
	f.Fuzz(func(t *testing.T, args string) {
		ctx, cancel := context.WithTimeout(context.Background(), config.DefaultTimeout)
		defer cancel()
		ips, err := s.Add(ctx, "c", "eth0", nil)
		if err != nil {
			t.Fatalf("ADD: %v", err)
		}
		if err := p.cmdDel(&skel.CmdArgs{ContainerID: "c", IfName: "eth0", Netns: "/dev/null", Args: args, StdinData: stdin}); err != nil {
			t.Fatalf("DEL with CNI_ARGS %q: %v", args, err)
		}
		resp, err := cli.Get(ctx, store.Root+"fuzz/ips/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != 0 {
			t.Fatalf("DEL with CNI_ARGS %q left %d address keys (it had %v)", args, resp.Count, ips)
		}
	})
}
