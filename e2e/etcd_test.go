package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdNode is one etcd server in a container, its client port published on
// 127.0.0.1 only.
type etcdNode struct {
	// Name is the member name and its alias on the cluster's network.
	Name        string
	ContainerID string
	// Endpoint is how the host reaches it: scheme://127.0.0.1:port. The
	// port is chosen before the container is created and kept across
	// restarts, so that a stopped member comes back where the plugin's
	// configuration expects it.
	Endpoint string
}

// etcdSpec describes a member to start.
type etcdSpec struct {
	Name string
	// Cluster is the initial cluster, "name=http://name:2380,...";
	// empty for a single member.
	Cluster string
	// Network is the docker network to join (its name), where the member
	// is known by Name; empty for the default bridge.
	Network string
	// ClientNetwork, when set, is a second network that carries only the
	// published client port, so that cutting the member off Network
	// isolates it from its peers while clients still reach it.
	ClientNetwork string
	// PKI, when set, makes the client port TLS with client-certificate
	// authentication; its directory is mounted at /certs.
	PKI *pki
}

// startEtcd creates and starts an etcd container and removes it when the
// test ends, whatever the outcome. It does not wait for etcd to serve.
func startEtcd(t *testing.T, s *suite, spec etcdSpec) *etcdNode {
	t.Helper()
	port := freePort(t)
	scheme := "http"
	if spec.PKI != nil {
		scheme = "https"
	}
	cluster := spec.Cluster
	if cluster == "" {
		cluster = spec.Name + "=http://" + spec.Name + ":2380"
	}
	cmd := []string{
		"--name", spec.Name,
		"--data-dir", "/data",
		"--listen-client-urls", scheme + "://0.0.0.0:2379",
		"--advertise-client-urls", scheme + "://" + spec.Name + ":2379",
		"--listen-peer-urls", "http://0.0.0.0:2380",
		"--initial-advertise-peer-urls", "http://" + spec.Name + ":2380",
		"--initial-cluster", cluster,
		"--initial-cluster-state", "new",
		"--initial-cluster-token", uniqueName("", "cluster"),
		"--log-level", "warn",
	}
	host := &dc.HostConfig{
		PortBindings: map[dc.Port][]dc.PortBinding{"2379/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}},
	}
	var networking *dc.NetworkingConfig
	peerNetworkLater := false
	switch {
	case spec.ClientNetwork != "":
		// Docker publishes ports through the network a container is
		// created on; the peer network is joined before it starts.
		host.NetworkMode = spec.ClientNetwork
		peerNetworkLater = true
	case spec.Network != "":
		host.NetworkMode = spec.Network
		networking = &dc.NetworkingConfig{EndpointsConfig: map[string]*dc.EndpointConfig{
			spec.Network: {Aliases: []string{spec.Name}},
		}}
	}
	if spec.PKI != nil {
		cmd = append(cmd,
			"--cert-file", "/certs/server.pem",
			"--key-file", "/certs/server-key.pem",
			"--trusted-ca-file", "/certs/ca.pem",
			"--client-cert-auth")
		host.Binds = []string{spec.PKI.Dir + ":/certs:ro"}
	}
	// Docker makes the host name an alias on every network the container
	// joins; a member reachable by its peer name on the client network
	// would not be cut off by leaving the peer network.
	hostname := spec.Name
	if peerNetworkLater {
		hostname = ""
	}
	c, err := s.pool.Client.CreateContainer(dc.CreateContainerOptions{
		Name: uniqueName(namePrefix, spec.Name),
		Config: &dc.Config{
			Image:        etcdImage,
			Hostname:     hostname,
			Cmd:          cmd,
			Labels:       labels(),
			ExposedPorts: map[dc.Port]struct{}{"2379/tcp": {}},
		},
		HostConfig:       host,
		NetworkingConfig: networking,
	})
	if err != nil {
		t.Fatalf("creating etcd container %s: %v", spec.Name, err)
	}
	t.Cleanup(func() {
		if err := s.pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: c.ID, Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("removing etcd container %s: %v", spec.Name, err)
		}
	})
	if peerNetworkLater {
		if err := s.pool.Client.ConnectNetwork(spec.Network, dc.NetworkConnectionOptions{
			Container: c.ID, EndpointConfig: &dc.EndpointConfig{Aliases: []string{spec.Name}},
		}); err != nil {
			t.Fatalf("connecting etcd container %s to %s: %v", spec.Name, spec.Network, err)
		}
	}
	if err := s.pool.Client.StartContainer(c.ID, nil); err != nil {
		t.Fatalf("starting etcd container %s: %v", spec.Name, err)
	}
	return &etcdNode{Name: spec.Name, ContainerID: c.ID, Endpoint: fmt.Sprintf("%s://127.0.0.1:%d", scheme, port)}
}

// createNetwork creates a private docker network removed when the test
// ends.
func createNetwork(t *testing.T, s *suite, what string) string {
	t.Helper()
	name := uniqueName(namePrefix, what)
	n, err := s.pool.Client.CreateNetwork(dc.CreateNetworkOptions{Name: name, Driver: "bridge", Labels: labels()})
	if err != nil {
		t.Fatalf("creating docker network %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := s.pool.Client.RemoveNetwork(n.ID); err != nil {
			t.Errorf("removing docker network %s: %v", name, err)
		}
	})
	return name
}

// freePort finds a loopback port nobody listens on. Docker binds it a
// moment later; a collision fails container start loudly rather than
// silently.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newClient is the test's own etcd client, for checking what the plugin
// wrote. It is closed when the test ends.
func newClient(t *testing.T, tlsConfig *tls.Config, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 2 * time.Second,
		TLS:         tlsConfig,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcd client for %v: %v", endpoints, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// waitServing waits until every endpoint answers a linearizable read.
// docker-proxy accepts connections before etcd listens, so only a real
// request proves etcd is up.
func waitServing(t *testing.T, tlsConfig *tls.Config, timeout time.Duration, endpoints ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, ep := range endpoints {
		cli := newClient(t, tlsConfig, ep)
		var lastErr error
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, lastErr = cli.Get(ctx, "/e2e-ready-probe")
			cancel()
			if lastErr == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcd at %s did not serve within %v: %v", ep, timeout, lastErr)
			}
			time.Sleep(200 * time.Millisecond)
		}
		_ = cli.Close()
	}
}

// allocations is what the plugin stored for one network, read back from
// etcd.
type allocations struct {
	// Holders maps each allocated address (as netip prints it) to the
	// container ID its ips/ key names.
	Holders map[string]string
	// Containers maps container ID to the addresses (without prefix
	// length) its containers/ key lists.
	Containers map[string][]string
}

// readAllocations reads a network's keys and checks that they agree: every
// address key names a container whose attachment lists that address, and
// every address an attachment lists has its key naming that container. A
// disagreement is a half-written allocation and fails the test.
func readAllocations(t *testing.T, cli *clientv3.Client, network string) allocations {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prefix := "/etcd-cni/networks/" + network + "/"
	resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("reading %s: %v", prefix, err)
	}
	a := allocations{Holders: map[string]string{}, Containers: map[string][]string{}}
	indexed := map[string]string{} // address -> container ID, from nodes/
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), prefix)
		switch {
		case strings.HasPrefix(rest, "nodes/"):
			// nodes/<node>/<address> -> "<container ID>/<ifname>"
			parts := strings.Split(rest, "/")
			addr, err := parseKeyAddr(parts[len(parts)-1])
			if err != nil {
				t.Fatalf("key %s: %v", kv.Key, err)
			}
			id, _, _ := strings.Cut(string(kv.Value), "/")
			indexed[addr] = id
		case strings.HasPrefix(rest, "ips/"):
			addr, err := parseKeyAddr(strings.TrimPrefix(rest, "ips/"))
			if err != nil {
				t.Fatalf("key %s: %v", kv.Key, err)
			}
			var holder struct {
				ContainerID string `json:"containerID"`
			}
			if err := json.Unmarshal(kv.Value, &holder); err != nil {
				t.Fatalf("key %s: %v: %s", kv.Key, err, kv.Value)
			}
			a.Holders[addr] = holder.ContainerID
		case strings.HasPrefix(rest, "containers/"):
			var att struct {
				ContainerID string `json:"containerID"`
				IPs         []struct {
					Address string `json:"address"`
				} `json:"ips"`
			}
			if err := json.Unmarshal(kv.Value, &att); err != nil {
				t.Fatalf("key %s: %v: %s", kv.Key, err, kv.Value)
			}
			for _, ip := range att.IPs {
				p, err := netip.ParsePrefix(ip.Address)
				if err != nil {
					t.Fatalf("key %s: address %q: %v", kv.Key, ip.Address, err)
				}
				a.Containers[att.ContainerID] = append(a.Containers[att.ContainerID], p.Addr().String())
			}
		}
	}
	for addr, id := range a.Holders {
		if !contains(a.Containers[id], addr) {
			t.Errorf("network %s: address %s is held by %q, whose attachment (%v) does not list it: half-written", network, addr, id, a.Containers[id])
		}
	}
	for id, addrs := range a.Containers {
		for _, addr := range addrs {
			if a.Holders[addr] != id {
				t.Errorf("network %s: attachment %q lists %s, whose key names %q: half-written", network, id, addr, a.Holders[addr])
			}
			if indexed[addr] != id {
				t.Errorf("network %s: attachment %q lists %s, which its node's index gives to %q: half-written", network, id, addr, indexed[addr])
			}
		}
	}
	for addr, id := range indexed {
		if a.Holders[addr] != id {
			t.Errorf("network %s: the node index gives %s to %q, whose key names %q: left behind", network, addr, id, a.Holders[addr])
		}
	}
	return a
}

// parseKeyAddr undoes the zero padding of an address in a key.
func parseKeyAddr(s string) (string, error) {
	if strings.Contains(s, ":") {
		a, err := netip.ParseAddr(s)
		return a.String(), err
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return "", fmt.Errorf("%q is not a padded IPv4 address", s)
	}
	var b [4]byte
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n > 255 {
			return "", fmt.Errorf("%q is not a padded IPv4 address", s)
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b).String(), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sortedKeys is for stable log lines.
func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
