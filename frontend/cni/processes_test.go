package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// specExample is the spec's command-line example with its JSON corrected
// and etcdURL replaced.
func specExample(endpoint string) string {
	return `{ "cniVersion": "0.3.1", "name": "examplenet", "ipam": { "name": "myetcd-ipam", "type": "etcd", "etcdConfig": { "etcdURL": "` + endpoint + `", "etcdCertFile": "/tmp/etcd.pem", "etcdKeyFile": "/tmp/etcd-key.pem", "etcdTrustedCAFileFile": "/tmp/ca.pem" }, "ranges": [ [{"subnet": "203.0.113.0/24"}], [{"subnet": "2001:db8:1::/64"}]] } }`
}

func TestSpecCommandLineExample(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := specExample(srv.Endpoint())
	add := invocation{Command: "ADD", ContainerID: "example", IfName: "dummy0", Config: conf}
	if got := parseResult(t, mustSucceed(t, add)).summary(); got != "203.0.113.2/24 gw 203.0.113.1; 2001:db8:1::2/64 gw 2001:db8:1::1" {
		t.Fatalf("ADD example = %s", got)
	}
	next := invocation{Command: "ADD", ContainerID: "example2", IfName: "dummy0", Config: conf}
	if got := parseResult(t, mustSucceed(t, next)).summary(); got != "203.0.113.3/24 gw 203.0.113.1; 2001:db8:1::3/64 gw 2001:db8:1::1" {
		t.Fatalf("ADD example2 = %s", got)
	}
	resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/networks/examplenet/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	for _, want := range []string{
		"/etcd-cni/networks/examplenet/ips/203.000.113.002",
		"/etcd-cni/networks/examplenet/ips/2001:0db8:0001:0000:0000:0000:0000:0002",
		"/etcd-cni/networks/examplenet/containers/example/dummy0",
		"/etcd-cni/networks/examplenet/last-reserved/0",
	} {
		if !strings.Contains(strings.Join(keys, "\n"), want) {
			t.Errorf("key %s missing; keys:\n%s", want, strings.Join(keys, "\n"))
		}
	}
	mustSucceed(t, invocation{Command: "DEL", ContainerID: "example", IfName: "dummy0", Config: conf})

	// The example exactly as the spec prints it is not JSON.
	broken := strings.Replace(conf, `"etcdCertFile": "/tmp/etcd.pem", "etcdKeyFile"`, `"etcdCertFile": "etcdKeyFile"`, 1)
	e := mustFail(t, invocation{Command: "ADD", ContainerID: "example", IfName: "dummy0", Config: broken}, 6)
	if !strings.Contains(e.Msg, "line 1, column") || e.CNIVersion != "0.3.1" {
		t.Errorf("broken JSON error does not say where, or lost the version: %+v", e)
	}
}

func TestUnreachableEtcdGivesCode11Quickly(t *testing.T) {
	// Nothing listens on port 9 of loopback (discard); connections are refused.
	conf := specExample("http://127.0.0.1:9")
	for _, cmd := range []string{"ADD", "DEL"} {
		start := time.Now()
		mustFail(t, invocation{Command: cmd, ContainerID: "x", Config: conf}, 11)
		if elapsed := time.Since(start); elapsed > 10*time.Second {
			t.Errorf("%s against an unreachable etcd took %v; the default promises an answer within 10 s", cmd, elapsed)
		}
	}
	status := strings.Replace(conf, `"0.3.1"`, `"1.1.0"`, 1)
	status = strings.Replace(status, `"etcdURL"`, `"etcdTimeout": "1s", "etcdURL"`, 1)
	mustFail(t, invocation{Command: "STATUS", Config: status}, 50)
}

// TestConcurrentPluginProcesses runs many plugin processes at once against
// a pool smaller than the number of ADDs.
func TestConcurrentPluginProcesses(t *testing.T) {
	srv := etcdtest.Start(t)
	conf := `{"cniVersion": "1.0.0", "name": "crowd", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "` + srv.Endpoint() + `"},
		"ranges": [[{"subnet": "198.51.100.0/26"}], [{"subnet": "2001:db8:3::/64"}]]}}` // .2-.62: 61 addresses
	const processes, each = 12, 6 // 72 ADDs
	var mu sync.Mutex
	owner := map[string]string{}
	codes := map[uint]int{}
	var wg sync.WaitGroup
	for p := 0; p < processes; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("p%d-%d", p, i)
				out := run(t, invocation{Command: "ADD", ContainerID: id, Config: conf, Env: []string{fmt.Sprintf("ETCD_IPAM_NODE_NAME=node-%d", p)}})
				mu.Lock()
				if out.ExitCode != 0 {
					codes[errorCode(t, out.Stdout)]++
				} else {
					for _, ip := range parseResult(t, out.Stdout).IPs {
						if prev, dup := owner[ip.Address]; dup {
							t.Errorf("duplicate: %s given to %s and %s", ip.Address, prev, id)
						}
						owner[ip.Address] = id
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(owner) != 2*61 {
		t.Errorf("%d addresses handed out, want 61 from each range set", len(owner))
	}
	if codes[100] != processes*each-61 || len(codes) != 1 {
		t.Errorf("failure codes %v, want %d × code 100 (exhausted)", codes, processes*each-61)
	}
	resp, err := srv.Client(t).Get(t.Context(), "/etcd-cni/networks/crowd/ips/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != int64(len(owner)) {
		t.Errorf("etcd holds %d address keys, ADDs returned %d", resp.Count, len(owner))
	}
}

func errorCode(t testing.TB, stdout []byte) uint {
	t.Helper()
	var e cniError
	if err := json.Unmarshal(stdout, &e); err != nil {
		t.Errorf("failure output is not CNI error JSON: %q", stdout)
	}
	return e.Code
}
