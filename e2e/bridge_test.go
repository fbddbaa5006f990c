package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
)

// Names of network namespaces and bridges start with these and the test
// process's id (see uniqueName), so that sweep can remove a crashed run's.
// A bridge name has at most 15 bytes: "eib" + pid + "-" + one letter fits.
const (
	netnsPrefix  = "etcd-ipam-e2e-"
	bridgePrefix = "eib"
)

// TestBridgeThroughLibcni is the plugin as a runtime uses it: libcni runs a
// .conflist that chains CNI's bridge plugin with our IPAM into two network
// namespaces; they get addresses from 198.51.100.0/24 and talk TCP to each
// other over the bridge. CHECK, STATUS, GC and DEL run through libcni too.
func TestBridgeThroughLibcni(t *testing.T) {
	s := requireSuite(t)
	requireRoot(t)
	node := startEtcd(t, s, etcdSpec{Name: "etcd-bridge"})
	waitServing(t, nil, time.Minute, node.Endpoint)
	cli := newClient(t, nil, node.Endpoint)

	nsA, nsB := newNetns(t, "a"), newNetns(t, "b")
	bridge := newBridgeName(t, "a")
	if err := allowBridgeForwarding(bridge, true); err != nil {
		t.Fatal(err)
	}

	const network = "e2e-bridge"
	ipam := fmt.Sprintf(`{"type": "etcd", "nodeName": "e2e-node", "etcdConfig": {"etcdURL": %q, "etcdTimeout": "10s"}, "ranges": [[{"subnet": "198.51.100.0/24"}]]}`, node.Endpoint)
	bridgeList, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(`{
		"cniVersion": "1.1.0",
		"name": %q,
		"plugins": [ { "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "ipam": %s } ]
	}`, network, bridge, ipam)))
	if err != nil {
		t.Fatal(err)
	}
	// The same network with our plugin as its only plugin, for the GC
	// verb: bridge v1.10.0 does not pass GC on to its IPAM plugin.
	ipamList, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(`{
		"cniVersion": "1.1.0", "name": %q, "plugins": [ { "type": "etcd", "ipam": %s } ]
	}`, network, ipam)))
	if err != nil {
		t.Fatal(err)
	}
	runtime := libcni.NewCNIConfigWithCacheDir([]string{s.binDir}, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	attach := func(id, nsName string) *libcni.RuntimeConf {
		return &libcni.RuntimeConf{ContainerID: id, NetNS: "/var/run/netns/" + nsName, IfName: "eth0"}
	}
	rtA, rtB := attach("e2e-a", nsA), attach("e2e-b", nsB)
	var addrs []string
	for _, rt := range []*libcni.RuntimeConf{rtA, rtB} {
		res, err := runtime.AddNetworkList(ctx, bridgeList, rt)
		if err != nil {
			t.Fatalf("ADD %s: %v", rt.ContainerID, err)
		}
		// Delete even if the test fails half way: bridge removes the
		// veth, our plugin releases the address.
		t.Cleanup(func() { _ = runtime.DelNetworkList(context.Background(), bridgeList, rt) })
		r, err := current.NewResultFromResult(res)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.IPs) != 1 {
			t.Fatalf("ADD %s: result has %d addresses, want 1: %v", rt.ContainerID, len(r.IPs), r)
		}
		addrs = append(addrs, r.IPs[0].Address.IP.String())
	}
	if addrs[0] != "198.51.100.2" || addrs[1] != "198.51.100.3" {
		t.Errorf("addresses %v, want 198.51.100.2 and .3 (the gateway .1 is the bridge's)", addrs)
	}
	for i, nsName := range []string{nsA, nsB} {
		if got := nsAddrs(t, nsName); !strings.Contains(got, addrs[i]+"/24") {
			t.Errorf("netns %s: eth0 has %q, want %s/24", nsName, got, addrs[i])
		}
	}
	for _, rt := range []*libcni.RuntimeConf{rtA, rtB} {
		if err := runtime.CheckNetworkList(ctx, bridgeList, rt); err != nil {
			t.Errorf("CHECK %s: %v", rt.ContainerID, err)
		}
	}
	if err := runtime.GetStatusNetworkList(ctx, bridgeList); err != nil {
		t.Errorf("STATUS with etcd up: %v", err)
	}

	tcpAcross(t, nsA, addrs[0], nsB)

	// An allocation whose runtime forgot it (no libcni cache entry): the
	// plugin's own GC frees it, given the attachments that are alive.
	leak := s.mustSucceed(t, invocation{"ADD", "e2e-leaked", fmt.Sprintf(`{"cniVersion": "1.1.0", "name": %q, "ipam": %s}`, network, ipam)})
	forgetful := libcni.NewCNIConfigWithCacheDir([]string{s.binDir}, t.TempDir(), nil)
	if err := forgetful.GCNetworkList(ctx, ipamList, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{
		{ContainerID: rtA.ContainerID, IfName: "eth0"}, {ContainerID: rtB.ContainerID, IfName: "eth0"},
	}}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	got := readAllocations(t, cli, network)
	if _, ok := got.Holders[leak.Addrs[0]]; ok || len(got.Containers) != 2 {
		t.Errorf("after GC keeping e2e-a and e2e-b, etcd holds %v; the leaked %s should be free", got, leak.Addrs[0])
	}

	// GC that no longer lists e2e-b: libcni DELs it from its cache,
	// through bridge and our plugin.
	if err := runtime.GCNetworkList(ctx, bridgeList, &libcni.GCArgs{ValidAttachments: []types.GCAttachment{{ContainerID: rtA.ContainerID, IfName: "eth0"}}}); err != nil {
		t.Fatalf("GC keeping e2e-a: %v", err)
	}
	got = readAllocations(t, cli, network)
	if len(got.Holders) != 1 || got.Holders[addrs[0]] != "e2e-a" {
		t.Errorf("after GC keeping only e2e-a, etcd holds %v", got)
	}
	if nsHasEth0(t, nsB) {
		t.Errorf("netns %s still has eth0 after GC removed its attachment", nsB)
	}

	if err := runtime.DelNetworkList(ctx, bridgeList, rtA); err != nil {
		t.Fatalf("DEL e2e-a: %v", err)
	}
	if nsHasEth0(t, nsA) {
		t.Errorf("netns %s still has eth0 after DEL", nsA)
	}
	if got := readAllocations(t, cli, network); len(got.Holders) != 0 || len(got.Containers) != 0 {
		t.Errorf("after DEL of every container etcd holds %v", got)
	}
	// A second DEL, as runtimes repeat them, succeeds.
	if err := runtime.DelNetworkList(ctx, bridgeList, rtA); err != nil {
		t.Errorf("repeated DEL e2e-a: %v", err)
	}
}

// requireRoot fails the test unless it runs as root, which creating
// network namespaces and bridges needs.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test creates network namespaces and a bridge: run it as root (or use -short to skip the e2e tests)")
	}
}

// newNetns creates a network namespace removed when the test ends.
func newNetns(t *testing.T, what string) string {
	t.Helper()
	name := uniqueName(netnsPrefix, what)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	return name
}

// newBridgeName returns the name of the bridge the bridge plugin will
// create, and deletes that bridge (and the forwarding rule for it) when
// the test ends.
func newBridgeName(t *testing.T, what string) string {
	t.Helper()
	name := bridgePrefix + fmt.Sprintf("%d-%s", os.Getpid(), what)
	if len(name) > 15 {
		t.Fatalf("bridge name %q is longer than Linux allows", name)
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "delete", name).Run()
		if err := allowBridgeForwarding(name, false); err != nil {
			t.Error(err)
		}
	})
	return name
}

// allowBridgeForwarding adds (or removes) an iptables rule that lets
// traffic between two ports of the bridge through. Docker sets the FORWARD
// policy to DROP, and with br_netfilter loaded that policy applies to
// bridged traffic too; without br_netfilter nothing is needed.
func allowBridgeForwarding(bridge string, allow bool) error {
	if flag, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil || strings.TrimSpace(string(flag)) != "1" {
		return nil
	}
	rule := []string{"FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"}
	if allow {
		if out, err := exec.Command("iptables", append([]string{"-w", "5", "-I"}, rule...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("br_netfilter is on and Docker drops forwarded traffic; allowing bridge %s failed: %v: %s", bridge, err, out)
		}
		return nil
	}
	// Remove every copy; -D fails once none is left. Bounded, in case
	// iptables misbehaves.
	for range 10 {
		if err := exec.Command("iptables", append([]string{"-w", "5", "-D"}, rule...)...).Run(); err != nil {
			return nil
		}
	}
	return fmt.Errorf("could not remove the iptables rule for bridge %s", bridge)
}

// nsAddrs is what `ip` says eth0 in a namespace has.
func nsAddrs(t *testing.T, nsName string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", nsName, "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s addr: %v: %s", nsName, err, out)
	}
	return string(out)
}

// nsHasEth0 reports whether a namespace has an eth0.
func nsHasEth0(t *testing.T, nsName string) bool {
	t.Helper()
	return exec.Command("ip", "-n", nsName, "link", "show", "eth0").Run() == nil
}

// tcpAcross listens on addr:port in one namespace, connects from the other
// and exchanges a line each way over the bridge.
func tcpAcross(t *testing.T, serverNS, serverAddr, clientNS string) {
	t.Helper()
	var ln net.Listener
	err := ns.WithNetNSPath("/var/run/netns/"+serverNS, func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(serverAddr, "0"))
		return err
	})
	if err != nil {
		t.Fatalf("listening in %s: %v", serverNS, err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err == nil {
			_, err = fmt.Fprintf(conn, "pong %s", line)
		}
		served <- err
	}()

	var reply string
	err = ns.WithNetNSPath("/var/run/netns/"+clientNS, func(ns.NetNS) error {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(conn, "ping from %s\n", clientNS); err != nil {
			return err
		}
		reply, err = bufio.NewReader(conn).ReadString('\n')
		return err
	})
	if err != nil {
		ln.Close()
		t.Fatalf("TCP from netns %s to %s: %v", clientNS, ln.Addr(), err)
	}
	select {
	case err := <-served:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			t.Fatalf("serving in %s: %v", serverNS, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server side never finished")
	}
	if want := "pong ping from " + clientNS + "\n"; reply != want {
		t.Fatalf("reply %q, want %q", reply, want)
	}
	t.Logf("TCP %s (netns %s) -> %s (netns %s): %q", clientNS, clientNS, ln.Addr(), serverNS, strings.TrimSpace(reply))
}
