package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// crashEnv makes the test binary act as the plugin and kill itself with
// SIGKILL around its N-th etcd request: "N:before" dies before sending it,
// "N:after" dies once etcd has answered (so etcd applied it but the plugin
// never learnt). "0:count" runs normally and reports the request count on
// stderr.
const crashEnv = "ETCD_IPAM_TEST_CRASH_AT"

// runCrashingPlugin is main for the test binary in crash mode.
func runCrashingPlugin(at string) int {
	nText, phase, _ := strings.Cut(at, ":")
	n, err := strconv.ParseInt(nText, 10, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad %s=%q\n", crashEnv, at)
		return 2
	}
	var calls atomic.Int64
	kill := func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns: the signal ends the process
	}
	p := newPlugin(os.Getenv, os.Stderr)
	p.dialOptions = []grpc.DialOption{grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			k := calls.Add(1)
			if k == n && phase == "before" {
				kill()
			}
			err := invoker(ctx, method, req, reply, cc, opts...)
			if k == n && phase == "after" {
				kill()
			}
			return err
		})}
	cniErr := skel.PluginMainFuncsWithError(skel.CNIFuncs{
		Add: p.cmdAdd, Del: p.cmdDel, Check: p.cmdCheck, GC: p.cmdGC, Status: p.cmdStatus,
	}, supportedVersions, "crash-test plugin")
	fmt.Fprintf(os.Stderr, "requests=%d\n", calls.Load())
	if cniErr != nil {
		_ = cniErr.Print()
		return 1
	}
	return 0
}

// TestKilledMidOperation kills the plugin at every etcd request of three
// kinds of ADD (the plain one, one with a requested address, and one whose
// guessed addresses are all taken, so that it reads before it writes) and
// of a DEL, before the request and after etcd applied it. After each kill,
// the state must be whole (each address key belongs to an attachment
// created in the same transaction, and each attachment has all its address
// keys), the runtime's retry must succeed without a duplicate address, and
// a DEL must leave nothing of the container behind.
func TestKilledMidOperation(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	conf := `{"cniVersion": "1.1.0", "name": "crashnet", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() +
		`"}, "ranges": [[{"subnet": "192.0.2.0/25"}], [{"subnet": "2001:db8:c::/120"}]]}}`
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	crashing := func(inv invocation, at string) outcome {
		inv.Config = conf
		inv.Env = []string{crashEnv + "=" + at}
		return runBinary(t, self, inv)
	}
	requests := func(inv invocation) int {
		out := crashing(inv, "0:count")
		if out.ExitCode != 0 {
			t.Fatalf("%s %s without a crash failed: %s %s", inv.Command, inv.ContainerID, out.Stdout, out.Stderr)
		}
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out.Stderr[strings.LastIndex(string(out.Stderr), "requests="):])), "requests=%d", &n); err != nil {
			t.Fatalf("no request count in %q", out.Stderr)
		}
		return n
	}
	put := func(key, value string) {
		t.Helper()
		if _, err := cli.Put(t.Context(), "/etcd-cni/networks/crashnet/"+key, value); err != nil {
			t.Fatal(err)
		}
	}
	// A neighbour holds addresses throughout, so duplicates would show;
	// fillers take the ten addresses after it.
	mustSucceed(t, invocation{Command: "ADD", ContainerID: "neighbour", Config: conf})
	for i := range 10 {
		mustSucceed(t, invocation{Command: "ADD", ContainerID: fmt.Sprintf("filler-%d", i), Config: conf})
	}
	requested := 100
	kinds := []struct {
		name    string
		args    func() string
		prepare func()
	}{
		{"plain", func() string { return "" }, func() {}},
		{"requested", func() string { requested++; return fmt.Sprintf("IP=192.0.2.%d", requested) }, func() {}},
		// Positions moved back to the neighbour's addresses: every guess
		// after them is a filler's.
		{"guesses-taken", func() string { return "" }, func() {
			put("last-reserved/0", "192.0.2.2")
			put("last-reserved/1", "2001:db8:c::2")
		}},
	}
	points := 0
	var added []string
	for _, kind := range kinds {
		kind.prepare()
		counted := "count-" + kind.name
		n := requests(invocation{Command: "ADD", ContainerID: counted, Args: kind.args()})
		added = append(added, counted)
		t.Logf("a %s ADD makes %d etcd requests", kind.name, n)
		for k := 1; k <= n; k++ {
			for _, phase := range []string{"before", "after"} {
				kind.prepare()
				id := fmt.Sprintf("%s-%d-%s", kind.name, k, phase)
				inv := invocation{Command: "ADD", ContainerID: id, Args: kind.args()}
				if out := crashing(inv, fmt.Sprintf("%d:%s", k, phase)); out.ExitCode != -1 {
					t.Fatalf("%s ADD killed at %d:%s exited %d, not by the signal: %s", kind.name, k, phase, out.ExitCode, out.Stdout)
				}
				points++
				requireWholeState(t, cli)
				// The runtime retries the ADD: it must succeed,
				// whatever the killed one left.
				inv.Config = conf
				mustSucceed(t, inv)
				requireWholeState(t, cli)
				added = append(added, id)
			}
		}
	}
	delRequests := requests(invocation{Command: "DEL", ContainerID: added[0]})
	t.Logf("a DEL makes %d etcd requests", delRequests)
	for k := 1; k <= delRequests; k++ {
		for _, phase := range []string{"before", "after"} {
			id := added[len(added)-1]
			if out := crashing(invocation{Command: "DEL", ContainerID: id}, fmt.Sprintf("%d:%s", k, phase)); out.ExitCode != -1 {
				t.Fatalf("DEL killed at %d:%s exited %d: %s", k, phase, out.ExitCode, out.Stdout)
			}
			points++
			requireWholeState(t, cli)
		}
	}
	// Every container the test made, killed or not, is released by DEL.
	for _, id := range added {
		mustSucceed(t, invocation{Command: "DEL", ContainerID: id, Config: conf})
	}
	for i := range 10 {
		mustSucceed(t, invocation{Command: "DEL", ContainerID: fmt.Sprintf("filler-%d", i), Config: conf})
	}
	requireWholeState(t, cli)
	resp, err := cli.Get(t.Context(), "/etcd-cni/networks/crashnet/containers/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || !strings.HasSuffix(string(resp.Kvs[0].Key), "/neighbour/eth0") {
		var left []string
		for _, kv := range resp.Kvs {
			left = append(left, string(kv.Key))
		}
		t.Errorf("after DEL of every killed container, attachments left: %q (want only the neighbour's)", left)
	}
	t.Logf("%d kill points tested", points)
}

// requireWholeState checks the network's keys against each other: every
// address key has the create revision of an attachment that lists it, and
// every attachment's addresses all have keys from that same transaction;
// no address is held twice.
func requireWholeState(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	prefix := "/etcd-cni/networks/crashnet/"
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	type held struct {
		rev   int64
		owner string
	}
	ips := map[netip.Addr]held{}
	attachments := map[string]store.Attachment{}
	revisions := map[string]int64{}
	for _, kv := range resp.Kvs {
		key := strings.TrimPrefix(string(kv.Key), prefix)
		switch {
		case strings.HasPrefix(key, "ips/"):
			addr, err := store.ParseAddrKey(strings.TrimPrefix(key, "ips/"))
			if err != nil {
				t.Fatalf("address key %s: %v", kv.Key, err)
			}
			var a store.Allocation
			if err := json.Unmarshal(kv.Value, &a); err != nil {
				t.Fatalf("allocation %s: %v", kv.Key, err)
			}
			ips[addr] = held{kv.CreateRevision, a.ContainerID + "/" + a.IfName}
		case strings.HasPrefix(key, "containers/"):
			var a store.Attachment
			if err := json.Unmarshal(kv.Value, &a); err != nil {
				t.Fatalf("attachment %s: %v", kv.Key, err)
			}
			id := a.ContainerID + "/" + a.IfName
			attachments[id] = a
			revisions[id] = kv.CreateRevision
		}
	}
	listed := 0
	for id, a := range attachments {
		for _, ip := range a.IPs {
			listed++
			h, ok := ips[ip.Address.Addr()]
			if !ok || h.owner != id || h.rev != revisions[id] {
				t.Errorf("attachment %s lists %s, but its key is %+v (present %v)", id, ip.Address, h, ok)
			}
		}
	}
	if listed != len(ips) {
		t.Errorf("%d address keys but attachments list %d addresses: some address is orphaned", len(ips), listed)
	}
}
