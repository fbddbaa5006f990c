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

// TestKilledMidOperation kills the plugin at every etcd request of an ADD
// and of a DEL, before the request and after etcd applied it. After each
// kill, the state must be whole (each address key belongs to an
// attachment created in the same transaction, and each attachment has all
// its address keys), the runtime's retry must succeed without a duplicate
// address, and a DEL must leave nothing of the container behind.
func TestKilledMidOperation(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	conf := `{"cniVersion": "1.1.0", "name": "crashnet", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() +
		`"}, "ranges": [[{"subnet": "192.0.2.0/26"}], [{"subnet": "2001:db8:c::/120"}]]}}`
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	crashing := func(command, id, at string) outcome {
		return runBinary(t, self, invocation{Command: command, ContainerID: id, Config: conf, Env: []string{crashEnv + "=" + at}})
	}
	requests := func(command, id string) int {
		out := crashing(command, id, "0:count")
		if out.ExitCode != 0 {
			t.Fatalf("%s %s without a crash failed: %s %s", command, id, out.Stdout, out.Stderr)
		}
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out.Stderr[strings.LastIndex(string(out.Stderr), "requests="):])), "requests=%d", &n); err != nil {
			t.Fatalf("no request count in %q", out.Stderr)
		}
		return n
	}
	// A neighbour holds addresses throughout, so duplicates would show.
	mustSucceed(t, invocation{Command: "ADD", ContainerID: "neighbour", Config: conf})
	addRequests := requests("ADD", "counted")
	delRequests := requests("DEL", "counted")
	t.Logf("an ADD makes %d etcd requests, a DEL %d", addRequests, delRequests)

	points := 0
	for k := 1; k <= addRequests; k++ {
		for _, phase := range []string{"before", "after"} {
			id := fmt.Sprintf("add-%d-%s", k, phase)
			if out := crashing("ADD", id, fmt.Sprintf("%d:%s", k, phase)); out.ExitCode != -1 {
				t.Fatalf("ADD killed at %d:%s exited %d, not by the signal: %s", k, phase, out.ExitCode, out.Stdout)
			}
			points++
			requireWholeState(t, cli)
			// The runtime retries the ADD: it must succeed, whatever
			// the killed one left.
			mustSucceed(t, invocation{Command: "ADD", ContainerID: id, Config: conf})
			requireWholeState(t, cli)
		}
	}
	for k := 1; k <= delRequests; k++ {
		for _, phase := range []string{"before", "after"} {
			id := fmt.Sprintf("add-%d-%s", (k-1)%addRequests+1, phase)
			if out := crashing("DEL", id, fmt.Sprintf("%d:%s", k, phase)); out.ExitCode != -1 {
				t.Fatalf("DEL killed at %d:%s exited %d: %s", k, phase, out.ExitCode, out.Stdout)
			}
			points++
			requireWholeState(t, cli)
		}
	}
	// Every container the test made, killed or not, is released by DEL.
	for k := 1; k <= addRequests; k++ {
		for _, phase := range []string{"before", "after"} {
			mustSucceed(t, invocation{Command: "DEL", ContainerID: fmt.Sprintf("add-%d-%s", k, phase), Config: conf})
		}
	}
	requireWholeState(t, cli)
	resp, err := cli.Get(t.Context(), "/etcd-cni/networks/crashnet/containers/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || !strings.HasSuffix(string(resp.Kvs[0].Key), "/neighbour/eth0") {
		t.Errorf("after DEL of every killed container, attachments left: %d (want only the neighbour's)", len(resp.Kvs))
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
