package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/internal/testbin"
)

// podmanImage is the ifaddrs program as an image, loaded into the test's
// own podman from an archive.
const podmanImage = "localhost/etcd-ipam-e2e/ifaddrs:latest"

// TestPodmanRunsContainersOnTheNetwork is the plugin under a real runtime
// that is not Kubernetes: podman 4's CNI backend runs a bridge network
// whose IPAM is ours. It sends CNI_ARGS "IgnoreUnknown=1;K8S_POD_NAME=<the
// container's name>", a pod name without a namespace, which once failed
// ADD (so podman run) and DEL (so podman rm) with "K8S_POD_NAME=a without
// K8S_POD_NAMESPACE". Two containers run at once with distinct addresses
// that they see on eth0 and that etcd records, with the name for display;
// when they exit podman's DEL frees their addresses (the name is no pod
// identity, so the network's sticky holds nothing for it), and nothing of
// the test is left.
func TestPodmanRunsContainersOnTheNetwork(t *testing.T) {
	s := requireSuite(t)
	requireRoot(t)
	podmanPath := requirePodman(t)
	start := time.Now()

	network := uniqueName(namePrefix, "podman")
	// Registered first, so it runs last: after every cleanup, nothing
	// the test made on the host is left.
	var bridge string
	t.Cleanup(func() {
		if exec.Command("ip", "link", "show", bridge).Run() == nil {
			t.Errorf("bridge %s is still there after the test", bridge)
		}
		if left, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", network+"-*")); len(left) > 0 {
			t.Errorf("libcni's cache still has %v after the test", left)
		}
	})
	bridge = newBridgeName(t, "p")
	node := startEtcd(t, s, etcdSpec{Name: "etcd-podman"})
	pm := newPodman(t, s, podmanPath)
	pm.loadImage(t, podmanImage, testbin.Path(t, "ifaddrs", "github.com/etcd-cni/etcd-ipam/e2e/ifaddrs"))

	// Sticky, so that a name taken for a pod identity would show: DEL
	// would leave the address held for it.
	subnet := netip.MustParsePrefix("203.0.113.0/24")
	pluginLog := pm.file("plugin.log")
	conflist := pm.addNetwork(t, network, fmt.Sprintf(`{
		"cniVersion": "1.0.0",
		"name": %q,
		"plugins": [{
			"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
			"ipam": {
				"type": "etcd", "nodeName": "e2e-podman-node", "logFile": %q, "sticky": "1h",
				"etcdConfig": {"etcdURL": %q, "etcdTimeout": "10s"},
				"ranges": [[{"subnet": %q}]]
			}
		}]
	}`, network, bridge, pluginLog, node.Endpoint, subnet))
	// What the plugin logged says why when podman only says "failed".
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(pluginLog)
			t.Logf("the plugin's log:\n%s", log)
		}
	})
	waitServing(t, nil, time.Minute, node.Endpoint)
	cli := newClient(t, nil, node.Endpoint)
	t.Logf("etcd, podman and the image ready in %v", time.Since(start).Round(time.Millisecond))

	a := pm.startContainer(t, network, "a", podmanImage)
	b := pm.startContainer(t, network, "b", podmanImage)
	t.Logf("two containers up %v after the start", time.Since(start).Round(time.Millisecond))
	addrA, addrB := subnetAddr(t, a, subnet), subnetAddr(t, b, subnet)
	if addrA == addrB {
		t.Fatalf("containers a and b both have %s", addrA)
	}

	// etcd holds what the containers see, for podman's container IDs.
	got := readAllocations(t, cli, network)
	want := map[string]string{addrA.Addr().String(): a.ID, addrB.Addr().String(): b.ID}
	if len(got.Holders) != len(want) {
		t.Errorf("etcd holds %v, want %v", got.Holders, want)
	}
	for addr, id := range want {
		if got.Holders[addr] != id {
			t.Errorf("etcd gives %s to %q, want container %s's %q", addr, got.Holders[addr], map[string]string{a.ID: "a", b.ID: "b"}[id], id)
		}
	}
	// The operator's view: each attachment shows the container's name,
	// which podman sent as K8S_POD_NAME, alone: a name for display, not
	// a pod identity.
	rows := lsNetwork(t, s, conflist)
	if len(rows) != 2 {
		t.Fatalf("etcd-ipam ls lists %d rows, want 2: %+v", len(rows), rows)
	}
	for _, r := range rows {
		c := map[string]*podmanContainer{a.ID: a, b.ID: b}[r.ContainerID]
		if c == nil {
			t.Errorf("etcd-ipam ls lists container %q, which podman did not run: %+v", r.ContainerID, r)
			continue
		}
		if r.Pod != c.Name || r.Node != "e2e-podman-node" || r.IfName != "eth0" {
			t.Errorf("etcd-ipam ls shows container %s as %+v, want pod %q (its name alone), node e2e-podman-node, eth0", c.Name, r, c.Name)
		}
	}
	for _, c := range []*podmanContainer{a, b} {
		if _, err := os.Stat(cniCacheEntry(network, c)); err != nil {
			t.Errorf("container %s: libcni's cache entry: %v", c.Name, err)
		}
	}
	if ports := bridgePorts(t, bridge); len(ports) != 2 {
		t.Errorf("bridge %s has ports %v, want the two containers' veths", bridge, ports)
	}

	// b exits first: podman's DEL frees its address and leaves a's.
	if err := b.stop(); err != nil {
		t.Fatalf("teardown of b: %v", err)
	}
	got = readAllocations(t, cli, network)
	if len(got.Holders) != 1 || got.Holders[addrA.Addr().String()] != a.ID {
		t.Errorf("after b exited etcd holds %v, want only %s for a", got.Holders, addrA.Addr())
	}
	if err := a.stop(); err != nil {
		t.Fatalf("teardown of a: %v", err)
	}
	t.Logf("both containers gone %v after the start", time.Since(start).Round(time.Millisecond))

	if got := readAllocations(t, cli, network); len(got.Holders) != 0 || len(got.Containers) != 0 {
		t.Errorf("after both containers exited etcd holds %v", got)
	}
	if rows := lsNetwork(t, s, conflist); len(rows) != 0 {
		t.Errorf("after both containers exited etcd-ipam ls lists %+v", rows)
	}
	if left := strings.TrimSpace(pm.mustRun(t, "ps", "--all", "--quiet")); left != "" {
		t.Errorf("podman still has containers %q", left)
	}
	for _, c := range []*podmanContainer{a, b} {
		if _, err := os.Stat(c.NetNS); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("container %s: its network namespace %s is still there (%v)", c.Name, c.NetNS, err)
		}
		if _, err := os.Stat(cniCacheEntry(network, c)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("container %s: libcni's cache entry is still there (%v)", c.Name, err)
		}
	}
	if ports := bridgePorts(t, bridge); len(ports) != 0 {
		t.Errorf("bridge %s still has ports %v", bridge, ports)
	}
}

// subnetAddr is the one address in subnet that a container saw on eth0.
func subnetAddr(t *testing.T, c *podmanContainer, subnet netip.Prefix) netip.Prefix {
	t.Helper()
	var in []netip.Prefix
	for _, a := range c.Addrs {
		if subnet.Contains(a.Addr()) {
			in = append(in, a)
		}
	}
	if len(in) != 1 || in[0].Bits() != subnet.Bits() || in[0].Addr() == subnet.Addr().Next() {
		t.Fatalf("container %s has %v on eth0, want one address of %s that is not the gateway's", c.Name, c.Addrs, subnet)
	}
	return in[0]
}

// lsNetwork is what `etcd-ipam ls` lists for a network's configuration
// file.
func lsNetwork(t *testing.T, s *suite, conflist string) []lsRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pluginTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, "etcd-ipam"), "ls", "--config", conflist, "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if exitErr := (*exec.ExitError)(nil); errors.As(err, &exitErr) {
			stderr = exitErr.Stderr
		}
		t.Fatalf("etcd-ipam ls --config %s: %v: %s", conflist, err, stderr)
	}
	var rows []lsRow
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("etcd-ipam ls --json: %v: %s", err, out)
	}
	return rows
}

// cniCacheEntry is where libcni, inside podman, keeps a container's
// attachment to network until DEL.
func cniCacheEntry(network string, c *podmanContainer) string {
	return filepath.Join("/var/lib/cni/results", network+"-"+c.ID+"-eth0")
}

// bridgePorts are the interfaces attached to a bridge.
func bridgePorts(t *testing.T, bridge string) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show master %s: %v: %s", bridge, err, out)
	}
	var ports []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 {
			ports = append(ports, strings.TrimSuffix(strings.Split(fields[1], "@")[0], ":"))
		}
	}
	return ports
}
