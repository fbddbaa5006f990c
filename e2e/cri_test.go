package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The CRI tests run the plugin as Kubernetes does: kubelet's calls, made
// with crictl, to containerd 2.4's CRI plugin, which runs CNI's bridge
// with our IPAM for every pod sandbox, in a containerd of the test's own
// (see criNode) whose pods are real runc containers.

// TestCRIPods starts pods at once and checks that each gets its own
// address, the one the runtime reports, recorded with the pod's identity,
// and that a container in a pod has that address and reaches its gateway.
func TestCRIPods(t *testing.T) {
	s := requireSuite(t)
	tools := requireCRITools(t)
	etcd := startEtcd(t, s, etcdSpec{Name: "etcd-cri-pods"})
	waitServing(t, nil, time.Minute, etcd.Endpoint)
	cli := newClient(t, nil, etcd.Endpoint)
	net := criNetwork{Name: "e2e-cri-pods", Subnet: "203.0.113.0/26", EtcdTimeout: 10 * time.Second}
	node := startCRINode(t, s, tools, "cri-node-p", etcd.Endpoint, net)
	expectNothingLeft(t, node, cli, net)

	// As kubelet starts a node's pods: all at once.
	const pods = 5
	specs := make([]podSpec, pods)
	ids := make([]string, pods)
	errs := make([]error, pods)
	var wg sync.WaitGroup
	for i := range specs {
		specs[i] = podSpec{Namespace: "e2e", Name: fmt.Sprintf("web-%d", i), UID: fmt.Sprintf("uid-web-%d", i)}
		wg.Go(func() { ids[i], errs[i] = node.runPod(specs[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("pod %s: %v", specs[i].Name, err)
		}
	}

	got := readAllocations(t, cli, net.Name)
	if len(got.Holders) != pods || len(got.Containers) != pods {
		t.Fatalf("after %d pods etcd holds %d addresses for %d attachments, want %d each: %v", pods, len(got.Holders), len(got.Containers), pods, got)
	}
	subnet := netip.MustParsePrefix(net.Subnet)
	gateway := subnet.Addr().Next()
	// One node's ADDs take turns (the plugin's node lock), so the pods
	// started at once get the first addresses after the gateway, as
	// host-local would give them, in whatever order they came.
	var want []string
	for a, i := gateway.Next(), 0; i < pods; a, i = a.Next(), i+1 {
		want = append(want, a.String())
	}
	var held []string
	for addr := range got.Holders {
		held = append(held, addr)
	}
	slices.SortFunc(held, func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) })
	if !slices.Equal(held, want) {
		t.Errorf("the pods got %v, want host-local's first %d addresses %v", held, pods, want)
	}
	seen := map[string]string{}
	for i, id := range ids {
		ip := node.podIP(id)
		if addr, err := netip.ParseAddr(ip); err != nil || !subnet.Contains(addr) || addr == gateway {
			t.Errorf("pod %s: the runtime reports address %q, want one of %s other than the gateway %s", specs[i].Name, ip, subnet, gateway)
		}
		if other, taken := seen[ip]; taken {
			t.Errorf("pods %s and %s both have %s", other, specs[i].Name, ip)
		}
		seen[ip] = specs[i].Name
		if holder := got.Holders[ip]; holder != id {
			t.Errorf("pod %s (sandbox %s) has %s, which etcd gives to %q", specs[i].Name, id, ip, holder)
		}
		// The identity the CRI sent in CNI_ARGS, as the CLI finds it.
		rows := lsPod(t, s, node, specs[i])
		if len(rows) != 1 || rows[0].Address != ip || rows[0].ContainerID != id || rows[0].Node != node.Name {
			t.Errorf("etcd-ipam ls --pod %s/%s: %+v, want one row: %s held by %s on %s", specs[i].Namespace, specs[i].Name, rows, ip, id, node.Name)
		}
		if uid := attachmentPodUID(t, cli, net.Name, id); uid != specs[i].UID {
			t.Errorf("pod %s: the attachment records UID %q, want %q (K8S_POD_UID)", specs[i].Name, uid, specs[i].UID)
		}
	}

	// A container in the first pod: the address on its eth0, and the
	// gateway (the bridge) answers it.
	box := node.startBusybox(ids[0], specs[0])
	ifaddr := node.mustCrictl("exec", "--sync", "--timeout", "10", box, "/bin/busybox", "ip", "-o", "-4", "addr", "show", "dev", "eth0")
	if want := fmt.Sprintf("inet %s/%d ", node.podIP(ids[0]), subnet.Bits()); !strings.Contains(ifaddr, want) {
		t.Errorf("eth0 in pod %s: %q, want %q", specs[0].Name, ifaddr, want)
	}
	ping := node.mustCrictl("exec", "--sync", "--timeout", "10", box, "/bin/busybox", "ping", "-c", "1", "-W", "5", gateway.String())
	if !strings.Contains(ping, "1 packets received") {
		t.Errorf("ping from pod %s to the gateway %s: %s", specs[0].Name, gateway, ping)
	}
	t.Logf("pod %s (%s) reaches its gateway %s", specs[0].Name, node.podIP(ids[0]), gateway)

	for i, id := range ids {
		node.mustCrictl("stopp", id)
		node.mustCrictl("rmp", id)
		if got := readAllocations(t, cli, net.Name); len(got.Containers) != pods-1-i {
			t.Errorf("after removing %d of %d pods etcd holds %d attachments", i+1, pods, len(got.Containers))
		}
	}
	logDELs(t, node)
}

// TestCRISticky is a StatefulSet's pod on a sticky network: its next
// instance, started while the first still runs, is refused with code 11
// (naming the first) and leaves nothing; once the first is stopped and
// removed, the next instance gets the same address back.
func TestCRISticky(t *testing.T) {
	s := requireSuite(t)
	tools := requireCRITools(t)
	etcd := startEtcd(t, s, etcdSpec{Name: "etcd-cri-sticky"})
	waitServing(t, nil, time.Minute, etcd.Endpoint)
	cli := newClient(t, nil, etcd.Endpoint)
	net := criNetwork{Name: "e2e-cri-sticky", Subnet: "203.0.113.64/26", Sticky: "1m", EtcdTimeout: 10 * time.Second}
	node := startCRINode(t, s, tools, "cri-node-s", etcd.Endpoint, net)
	expectNothingLeft(t, node, cli, net)

	first := podSpec{Namespace: "e2e", Name: "db-0", UID: "uid-db-0-first"}
	second := podSpec{Namespace: "e2e", Name: "db-0", UID: "uid-db-0-second"}
	firstID, err := node.runPod(first)
	if err != nil {
		t.Fatal(err)
	}
	ip := node.podIP(firstID)
	before := networkKeys(t, cli, net.Name)

	// The pod's next instance while the first runs.
	_, err = node.runPod(second)
	if err == nil {
		t.Fatalf("a second instance of %s/%s started while the first (%s) runs; want the plugin's refusal", second.Namespace, second.Name, firstID)
	}
	if !strings.Contains(err.Error(), "is still attached") || !strings.Contains(err.Error(), firstID) {
		t.Errorf("the second instance failed with %v; want the plugin's message naming the first, %s", err, firstID)
	}
	if !pluginLogged(t, node, "msg=failed", "command=ADD", "code=11") {
		t.Errorf("the plugin's log has no ADD failed with code 11:\n%s", strings.Join(node.pluginLog(), "\n"))
	}
	// Nothing of the refused instance stays: no pod, no network
	// namespace, no veth, no key.
	if pods := node.pods(); len(pods) != 1 || pods[0] != firstID {
		t.Errorf("after the refusal the runtime has pods %v, want only %s", pods, firstID)
	}
	if n := node.netnsCount(); n != 1 {
		t.Errorf("after the refusal containerd holds %d network namespaces, want 1", n)
	}
	if n := node.bridgePorts(); n != 1 {
		t.Errorf("after the refusal bridge %s has %d ports, want 1", node.Bridge, n)
	}
	if after := networkKeys(t, cli, net.Name); !maps.Equal(before, after) {
		t.Errorf("the refused instance changed etcd:\nbefore %v\nafter  %v", before, after)
	}

	node.mustCrictl("stopp", firstID)
	node.mustCrictl("rmp", firstID)
	rows := lsPod(t, s, node, first)
	if len(rows) != 1 || rows[0].Address != ip || rows[0].Hold == nil {
		t.Errorf("after the first instance's removal ls --pod shows %+v, want %s held for the pod", rows, ip)
	}
	secondID, err := node.runPod(second)
	if err != nil {
		t.Fatalf("the second instance, after the first was removed: %v", err)
	}
	if got := node.podIP(secondID); got != ip {
		t.Errorf("the second instance got %s, want the first's %s back", got, ip)
	}
	t.Logf("pod %s/%s: first instance %s and second %s both had %s", first.Namespace, first.Name, firstID[:12], secondID[:12], ip)

	node.mustCrictl("stopp", secondID)
	node.mustCrictl("rmp", secondID)
	// The hold the last DEL made outlives the test's minute only as a
	// lease; an operator's release ends it now.
	if out, err := runCLI(s, "release", "--config", node.Conflist, "--pod", first.Namespace+"/"+first.Name, "--yes"); err != nil {
		t.Errorf("etcd-ipam release --pod: %v: %s", err, out)
	}
	logDELs(t, node)
}

// TestCRIEtcdOutage checks what the runtime sees of etcd: crictl info
// (kubelet's Status) makes containerd call STATUS, which the node's
// liveness record shows; while etcd is frozen NetworkReady is false with
// the plugin's message and stopping a pod fails (the runtime keeps it and
// retries); once etcd is back NetworkReady is true again and the retried
// stop releases the address.
func TestCRIEtcdOutage(t *testing.T) {
	s := requireSuite(t)
	tools := requireCRITools(t)
	etcd := startEtcd(t, s, etcdSpec{Name: "etcd-cri-outage"})
	waitServing(t, nil, time.Minute, etcd.Endpoint)
	cli := newClient(t, nil, etcd.Endpoint)
	net := criNetwork{Name: "e2e-cri-outage", Subnet: "203.0.113.128/26", EtcdTimeout: 3 * time.Second}
	node := startCRINode(t, s, tools, "cri-node-o", etcd.Endpoint, net)
	expectNothingLeft(t, node, cli, net)

	seenKey := "/etcd-cni/networks/" + net.Name + "/seen/" + node.Name
	if by := seenBy(t, cli, seenKey); by != "" {
		t.Fatalf("before any call the node was seen by %s; want no record yet", by)
	}
	ready, msg, err := node.networkReady()
	if err != nil || !ready {
		t.Fatalf("NetworkReady with etcd up: %v %q %v", ready, msg, err)
	}
	if by := seenBy(t, cli, seenKey); by != "STATUS" {
		t.Errorf("after crictl info the node's liveness record says %q, want STATUS", by)
	}
	var nodes []struct {
		Node string `json:"node"`
		By   string `json:"by"`
	}
	out, err := runCLI(s, "nodes", "--config", node.Conflist, "--json")
	if err != nil {
		t.Fatalf("etcd-ipam nodes: %v: %s", err, out)
	}
	if err := json.Unmarshal(out, &nodes); err != nil || len(nodes) != 1 || nodes[0].Node != node.Name || nodes[0].By != "STATUS" {
		t.Errorf("etcd-ipam nodes --json: %s (%v), want %s seen by STATUS", out, err, node.Name)
	}

	spec := podSpec{Namespace: "e2e", Name: "api-0", UID: "uid-api-0"}
	id, err := node.runPod(spec)
	if err != nil {
		t.Fatal(err)
	}
	ip := node.podIP(id)

	if err := s.pool.Client.PauseContainer(etcd.ContainerID); err != nil {
		t.Fatalf("pausing etcd: %v", err)
	}
	paused := true
	t.Cleanup(func() {
		if paused {
			_ = s.pool.Client.UnpauseContainer(etcd.ContainerID)
		}
	})
	ready, msg = waitNetworkReady(t, node, false)
	if want := fmt.Sprintf("network %q is unavailable: etcd does not answer", net.Name); !strings.Contains(msg, want) {
		t.Errorf("NetworkReady false with message %q, want the plugin's STATUS error (%s ...)", msg, want)
	}
	t.Logf("etcd frozen: NetworkReady %v: %s", ready, msg)

	if _, err := node.crictl("stopp", id); err == nil {
		t.Errorf("stopping pod %s succeeded while etcd is frozen; its address cannot have been released", id)
	} else if !strings.Contains(err.Error(), "etcd is unreachable or too slow") {
		t.Errorf("stopping pod %s with etcd frozen: %v; want the plugin's error", id, err)
	}
	if !pluginLogged(t, node, "msg=failed", "command=DEL", "code=11") {
		t.Errorf("the plugin's log has no DEL failed with code 11:\n%s", strings.Join(node.pluginLog(), "\n"))
	}
	if pods := node.pods(); !slices.Contains(pods, id) {
		t.Errorf("after the failed stop the runtime has pods %v; it must keep %s to retry", pods, id)
	}

	if err := s.pool.Client.UnpauseContainer(etcd.ContainerID); err != nil {
		t.Fatalf("unpausing etcd: %v", err)
	}
	paused = false
	waitServing(t, nil, time.Minute, etcd.Endpoint)
	if _, held := readAllocations(t, cli, net.Name).Holders[ip]; !held {
		t.Logf("the DEL that failed reached etcd before it froze: %s is free already", ip)
	}
	waitNetworkReady(t, node, true)

	node.mustCrictl("stopp", id)
	if got := readAllocations(t, cli, net.Name); len(got.Holders) != 0 {
		t.Errorf("after the retried stop etcd still holds %v", got.Holders)
	}
	node.mustCrictl("rmp", id)
	logDELs(t, node)
}

// waitNetworkReady polls crictl info until NetworkReady is want, for at
// most 30 s, and returns the last condition.
func waitNetworkReady(t *testing.T, node *criNode, want bool) (bool, string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		ready, msg, err := node.networkReady()
		if err != nil {
			t.Fatal(err)
		}
		if ready == want {
			t.Logf("NetworkReady %v after %v", ready, time.Since(start).Round(time.Millisecond))
			return ready, msg
		}
		if time.Now().After(deadline) {
			t.Fatalf("NetworkReady stayed %v for 30 s (want %v): %s", ready, want, msg)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// lsRow is one row of etcd-ipam ls --json.
type lsRow struct {
	Address     string          `json:"address"`
	ContainerID string          `json:"containerID"`
	IfName      string          `json:"ifName"`
	Node        string          `json:"node"`
	Pod         string          `json:"pod"`
	Hold        json.RawMessage `json:"hold"`
}

// lsPod is etcd-ipam ls --pod for p on node's network.
func lsPod(t *testing.T, s *suite, node *criNode, p podSpec) []lsRow {
	t.Helper()
	out, err := runCLI(s, "ls", "--config", node.Conflist, "--pod", p.Namespace+"/"+p.Name, "--json")
	if err != nil {
		t.Fatalf("etcd-ipam ls --pod: %v: %s", err, out)
	}
	var rows []lsRow
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("etcd-ipam ls --json: %v: %s", err, out)
	}
	return rows
}

// runCLI runs the etcd-ipam command and returns its stdout, or its
// combined output with the error.
func runCLI(s *suite, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "etcd-ipam"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.String()...), err
	}
	return out, nil
}

// attachmentPodUID is the pod UID the attachment of container id records.
func attachmentPodUID(t *testing.T, cli *clientv3.Client, network, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/etcd-cni/networks/"+network+"/containers/"+id+"/eth0")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("reading the attachment of %s: %v, %d keys", id, err, len(resp.Kvs))
	}
	var att struct {
		Pod struct {
			UID string `json:"uid"`
		} `json:"pod"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &att); err != nil {
		t.Fatalf("the attachment of %s: %v: %s", id, err, resp.Kvs[0].Value)
	}
	return att.Pod.UID
}

// seenBy is the command the liveness record at key names, "" if none.
func seenBy(t *testing.T, cli *clientv3.Client, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	var seen struct {
		By string `json:"by"`
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &seen); err != nil {
		t.Fatalf("%s: %v: %s", key, err, resp.Kvs[0].Value)
	}
	return seen.By
}

// networkKeys is every key of a network and its value, but the node
// liveness records (which any command may refresh).
func networkKeys(t *testing.T, cli *clientv3.Client, network string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prefix := "/etcd-cni/networks/" + network + "/"
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("reading %s: %v", prefix, err)
	}
	keys := map[string]string{}
	for _, kv := range resp.Kvs {
		if !strings.HasPrefix(string(kv.Key), prefix+"seen/") {
			keys[string(kv.Key)] = string(kv.Value)
		}
	}
	return keys
}

// pluginLogged reports whether one line of the plugin's log has every
// part.
func pluginLogged(t *testing.T, node *criNode, parts ...string) bool {
	t.Helper()
	for _, line := range node.pluginLog() {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}

// logDELs logs how many DELs the plugin served per container: the CRI
// sends one on stop and another on remove.
func logDELs(t *testing.T, node *criNode) {
	t.Helper()
	dels := map[string]int{}
	for _, line := range node.pluginLog() {
		if strings.Contains(line, "command=DEL") {
			for _, f := range strings.Fields(line) {
				if id, ok := strings.CutPrefix(f, "containerID="); ok {
					dels[id[:min(12, len(id))]]++
				}
			}
		}
	}
	t.Logf("DELs per sandbox: %v", dels)
}

// expectNothingLeft checks, when the test ends and before containerd
// stops, that the pods left nothing behind: no pod, no key of an address,
// attachment, hold or node index in etcd, no network namespace, no veth.
// (The node's own cleanup checks what is left after it, see checkGone.)
// Call it right after starting the node.
func expectNothingLeft(t *testing.T, node *criNode, cli *clientv3.Client, net criNetwork) {
	t.Helper()
	t.Cleanup(func() {
		if pods := node.pods(); len(pods) != 0 {
			t.Errorf("pods left at the end: %v", pods)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, what := range []string{"ips/", "containers/", "pods/", "holds/", "nodes/"} {
			resp, err := cli.Get(ctx, "/etcd-cni/networks/"+net.Name+"/"+what, clientv3.WithPrefix(), clientv3.WithKeysOnly())
			if err != nil {
				t.Errorf("reading %s: %v", what, err)
				continue
			}
			for _, kv := range resp.Kvs {
				t.Errorf("key left at the end: %s", kv.Key)
			}
		}
		if n := node.netnsCount(); n != 0 {
			t.Errorf("%d network namespaces left at the end", n)
		}
		if n := node.bridgePorts(); n != 0 {
			t.Errorf("%d veths left on bridge %s at the end", n, node.Bridge)
		}
	})
}
