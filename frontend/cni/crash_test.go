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
		return requestCount(t, inv, crashing(inv, "0:count"))
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
// address key is an attachment's that lists it (created by its transaction,
// or taken by it from a hold) or a hold its pod's held set lists or a lease
// will end; every attachment's addresses all have their keys; no address is
// held twice.
func requireWholeState(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	requireWhole(t, cli, "crashnet")
}

func requireWhole(t *testing.T, cli *clientv3.Client, network string) {
	t.Helper()
	prefix := "/etcd-cni/networks/" + network + "/"
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	type held struct {
		created, modified, lease int64
		owner                    string
		hold                     *store.Hold
		value                    string
	}
	ips := map[netip.Addr]held{}
	attachments := map[string]store.Attachment{}
	revisions := map[string]int64{}
	heldSets := map[netip.Addr]store.HeldAddr{}
	marked := map[netip.Addr]bool{}
	for _, kv := range resp.Kvs {
		key := strings.TrimPrefix(string(kv.Key), prefix)
		switch {
		case strings.HasPrefix(key, "held/"):
			addr, err := store.ParseAddrKey(strings.TrimPrefix(key, "held/"))
			if err != nil {
				t.Fatalf("held marker %s: %v", kv.Key, err)
			}
			marked[addr] = true
		case strings.HasPrefix(key, "ips/"):
			addr, err := store.ParseAddrKey(strings.TrimPrefix(key, "ips/"))
			if err != nil {
				t.Fatalf("address key %s: %v", kv.Key, err)
			}
			var a store.Allocation
			if err := json.Unmarshal(kv.Value, &a); err != nil {
				t.Fatalf("allocation %s: %v", kv.Key, err)
			}
			ips[addr] = held{kv.CreateRevision, kv.ModRevision, kv.Lease, a.ContainerID + "/" + a.IfName, a.Hold, string(kv.Value)}
		case strings.HasPrefix(key, "containers/"):
			var a store.Attachment
			if err := json.Unmarshal(kv.Value, &a); err != nil {
				t.Fatalf("attachment %s: %v", kv.Key, err)
			}
			id := a.ContainerID + "/" + a.IfName
			attachments[id] = a
			revisions[id] = kv.CreateRevision
		case strings.HasPrefix(key, "holds/"):
			var set store.HeldSet
			if err := json.Unmarshal(kv.Value, &set); err != nil {
				t.Fatalf("held set %s: %v", kv.Key, err)
			}
			for _, h := range set.Addrs {
				heldSets[h.Addr] = h
			}
		}
	}
	listed := 0
	for id, a := range attachments {
		for _, ip := range a.IPs {
			listed++
			h, ok := ips[ip.Address.Addr()]
			if !ok || h.owner != id || (h.created != revisions[id] && h.modified != revisions[id]) || h.lease != 0 {
				t.Errorf("attachment %s lists %s, but its key is %+v (present %v)", id, ip.Address, h, ok)
			}
		}
	}
	holds := 0
	for addr, h := range ips {
		if h.hold == nil {
			continue
		}
		holds++
		if !marked[addr] {
			t.Errorf("%s is held but has no held/ marker: usage would not count it", addr)
		}
		if h.owner != "/" {
			t.Errorf("%s is both held and attached: %s", addr, h.value)
		}
		// A hold no set lists is one no ADD takes: only its lease may
		// end it, so it must have one.
		if _, ok := heldSets[addr]; !ok && h.lease == 0 {
			t.Errorf("%s is held (%s) by no held set and without a lease: nothing would ever free it", addr, h.value)
		}
	}
	for addr := range marked {
		if h, ok := ips[addr]; !ok || h.hold == nil {
			t.Errorf("held/ marks %s, which is not held", addr)
		}
	}
	if listed+holds != len(ips) {
		t.Errorf("%d address keys but attachments list %d addresses and %d are held: some address is orphaned", len(ips), listed, holds)
	}
}

// requestCount reads the etcd requests a crash-mode run without a crash
// ("0:count") reports, failing the test if the run failed.
func requestCount(t *testing.T, inv invocation, out outcome) int {
	t.Helper()
	if out.ExitCode != 0 {
		t.Fatalf("%s %s without a crash failed: %s %s", inv.Command, inv.ContainerID, out.Stdout, out.Stderr)
	}
	var n int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out.Stderr[strings.LastIndex(string(out.Stderr), "requests="):])), "requests=%d", &n); err != nil {
		t.Fatalf("no request count in %q", out.Stderr)
	}
	return n
}

// TestKilledMidStickyOperation kills the plugin at every etcd request of a
// DEL that turns a pod's addresses into holds and of the ADD that takes
// them back on another node, before each request and after etcd applied
// it. After each kill the state must be whole (see requireWhole), the
// runtime's retry must succeed, and the pod must end up with its own
// addresses: never attached twice, never lost.
func TestKilledMidStickyOperation(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	conf := func(node string) string {
		return `{"cniVersion": "1.1.0", "name": "stickycrash", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() +
			`"}, "nodeName": "` + node + `", "sticky": "1h", "ranges": [[{"subnet": "192.0.2.0/25"}], [{"subnet": "2001:db8:d::/120"}]]}}`
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	crashing := func(inv invocation, at string) outcome {
		inv.Env = []string{crashEnv + "=" + at}
		return runBinary(t, self, inv)
	}
	// A pod's life: ADD on node A, DEL there (making holds), ADD on
	// node B (taking them), DEL on node B.
	type life struct{ addA, delA, addB, delB invocation }
	podLife := func(name string) life {
		args := "K8S_POD_NAMESPACE=shop;K8S_POD_NAME=" + name
		on := func(cmd, node string) invocation {
			return invocation{Command: cmd, ContainerID: name + "-" + node, Args: args, Config: conf("node-" + node)}
		}
		return life{on("ADD", "a"), on("DEL", "a"), on("ADD", "b"), on("DEL", "b")}
	}
	mustSucceed(t, invocation{Command: "ADD", ContainerID: "neighbour", Config: conf("node-a")})

	// Count the requests of the DEL and of the ADD that follows.
	counted := podLife("counted")
	want := parseResult(t, mustSucceed(t, counted.addA)).summary()
	delRequests := requestCount(t, counted.delA, crashing(counted.delA, "0:count"))
	out := crashing(counted.addB, "0:count")
	addRequests := requestCount(t, counted.addB, out)
	if got := parseResult(t, out.Stdout).summary(); got != want {
		t.Fatalf("the counted pod on node B got %s, had %s", got, want)
	}
	mustSucceed(t, counted.delB)
	t.Logf("a DEL making holds makes %d etcd requests, the ADD taking them back %d", delRequests, addRequests)

	points := 0
	for k := 1; k <= max(delRequests, addRequests); k++ {
		for _, phase := range []string{"before", "after"} {
			for _, op := range []string{"DEL", "ADD"} {
				if (op == "DEL" && k > delRequests) || (op == "ADD" && k > addRequests) {
					continue
				}
				p := podLife(fmt.Sprintf("pod-%s-%d-%s", strings.ToLower(op), k, phase)) // a name Kubernetes can have
				want := parseResult(t, mustSucceed(t, p.addA)).summary()
				at := fmt.Sprintf("%d:%s", k, phase)
				killed := p.delA
				if op == "ADD" {
					mustSucceed(t, p.delA)
					killed = p.addB
				}
				if out := crashing(killed, at); out.ExitCode != -1 {
					t.Fatalf("%s killed at %s exited %d: %s", op, at, out.ExitCode, out.Stdout)
				}
				points++
				requireWhole(t, cli, "stickycrash")
				if op == "DEL" {
					mustSucceed(t, p.delA) // the runtime retries
					requireWhole(t, cli, "stickycrash")
				}
				// The pod comes back on node B (the runtime's retry, for a
				// killed ADD) with exactly its addresses.
				if got := parseResult(t, mustSucceed(t, p.addB)).summary(); got != want {
					t.Fatalf("%s killed at %s: the pod came back with %s, had %s", op, at, got, want)
				}
				requireWhole(t, cli, "stickycrash")
				mustSucceed(t, p.delB)
				requireWhole(t, cli, "stickycrash")
			}
		}
	}
	if want := 2 * (delRequests + addRequests); points != want {
		t.Fatalf("%d kill points tested, want %d", points, want)
	}
	t.Logf("%d kill points tested", points)
}
