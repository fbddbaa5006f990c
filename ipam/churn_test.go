package ipam

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
	"github.com/etcd-cni/etcd-ipam/store"
)

// TestConcurrentChurnKeepsStateConsistent runs ADD and DEL from several
// nodes at once on a small two-set network, then checks etcd's state from
// scratch: every address key belongs to exactly one live attachment created
// in the same transaction, every attachment holds one address per range
// set, and no address is held twice.
func TestConcurrentChurnKeepsStateConsistent(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := testNetwork(srv, "churn",
		[]core.RangeSpec{{Subnet: "198.51.100.0/27"}},  // 29 addresses
		[]core.RangeSpec{{Subnet: "2001:db8:7::/124"}}) // 14 addresses
	const nodes, opsPerNode = 6, 60
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[uint]int{}
	for n := 0; n < nodes; n++ {
		s := openSession(t, conf, fmt.Sprintf("node-%d", n))
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < opsPerNode; i++ {
				id := fmt.Sprintf("n%d-c%d", n, rng.IntN(8))
				var err error
				if rng.IntN(3) == 0 {
					err = s.Del(context.Background(), id, "eth0")
				} else {
					_, err = s.Add(context.Background(), id, "eth0", nil)
				}
				mu.Lock()
				codes[cniCode(err)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for code := range codes {
		if code != 0 && code != CodeExhausted {
			t.Errorf("unexpected outcome code %d (%d times)", code, codes[code])
		}
	}
	t.Logf("outcomes by CNI code (0 = success): %v", codes)

	checker := openSession(t, conf, "checker")
	atts, err := checker.net.Attachments(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]store.StoredAttachment{}
	for _, att := range atts {
		if len(att.IPs) != 2 {
			t.Errorf("attachment %s holds %d addresses, want one per range set", att.ContainerID, len(att.IPs))
		}
		for _, ip := range att.IPs {
			key := checker.net.Prefix() + "ips/" + store.AddrKey(ip.Address.Addr())
			if prev, dup := owner[key]; dup {
				t.Errorf("%s held by %s and %s", ip.Address, prev.ContainerID, att.ContainerID)
			}
			owner[key] = att
		}
	}
	resp, err := srv.Client(t).Get(ctx(t), checker.net.Prefix()+"ips/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != len(owner) {
		t.Errorf("%d address keys in etcd, %d addresses held by attachments", len(resp.Kvs), len(owner))
	}
	for _, kv := range resp.Kvs {
		att, ok := owner[string(kv.Key)]
		if !ok {
			t.Errorf("address key %s has no attachment: lost to every DEL and GC", kv.Key)
			continue
		}
		if kv.CreateRevision != att.CreateRevision || !strings.Contains(string(kv.Value), `"containerID":"`+att.ContainerID+`"`) {
			t.Errorf("address key %s (rev %d, %s) does not match attachment %s (rev %d)", kv.Key, kv.CreateRevision, kv.Value, att.ContainerID, att.CreateRevision)
		}
	}
}
