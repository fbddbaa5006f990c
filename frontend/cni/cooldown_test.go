package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// TestCooldownThroughThePlugin runs ipam "cooldown" as a runtime drives
// the plugin: after a DEL, the pool's only address cools, so the next
// ADD fails with code 11 naming the count and when it is free, and a
// request for it says it cools; then, with no plugin process running,
// etcd ends the cooling (a lease) and an ADD gets the address.
func TestCooldownThroughThePlugin(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	// A /30: 203.0.113.2 is its one address.
	conf := `{"cniVersion": "1.1.0", "name": "cool", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() +
		`"}, "nodeName": "node-a", "cooldown": "1s", "ranges": [[{"subnet": "203.0.113.0/30"}]]}}`
	first := parseResult(t, mustSucceed(t, invocation{Command: "ADD", ContainerID: "c1", Config: conf})).summary()
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "c1", Config: conf})
	delAt := time.Now()
	// A repeated DEL (its first reply lost, say) succeeds and changes nothing.
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "c1", Config: conf})

	e := mustFail(t, invocation{Command: "ADD", ContainerID: "c2", Config: conf}, 11)
	if !strings.Contains(e.Msg, "1 released address is cooling down") || !strings.Contains(e.Msg, "the first free again at 20") ||
		!strings.Contains(e.Details, `lower ipam "cooldown"`) {
		t.Fatalf("ADD while the only address cools: %+v", e)
	}
	e = mustFail(t, invocation{Command: "ADD", ContainerID: "c3", Args: "IP=203.0.113.2", Config: conf}, 101)
	if !strings.Contains(e.Msg, "203.0.113.2") || !strings.Contains(e.Msg, "cooling down after its release until") {
		t.Fatalf("ADD requesting the cooling address: %+v", e)
	}

	// No plugin process runs now: only etcd can free the address.
	key := store.Root + "cool/ips/" + store.AddrKey(netip.MustParseAddr("203.0.113.2"))
	deadline := delAt.Add(1*time.Second + 1*time.Second + 5*time.Second) // cooldown, the lease's slack, etcd's expiry checks
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.Get(ctx, key, clientv3.WithCountOnly())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still taken %v after the DEL", key, time.Since(delAt))
		}
		time.Sleep(100 * time.Millisecond)
	}
	freed := time.Since(delAt)
	t.Logf("etcd freed the cooling address %v after the DEL (cooldown 1s)", freed.Round(100*time.Millisecond))
	if freed < time.Second {
		t.Fatalf("freed %v after the DEL, before the cooldown of 1s", freed)
	}
	if again := parseResult(t, mustSucceed(t, invocation{Command: "ADD", ContainerID: "c2", Config: conf})).summary(); again != first {
		t.Fatalf("ADD after the cooldown got %s, want %s", again, first)
	}
}
