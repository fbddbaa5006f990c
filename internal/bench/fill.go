package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/store"
)

// allocatable lists the addresses both plugins hand out from an IPv4
// subnet with default settings: from the network address + 2 (+1 is the
// gateway) to the broadcast address - 1.
func allocatable(subnet netip.Prefix) []netip.Addr {
	subnet = subnet.Masked()
	var out []netip.Addr
	a := subnet.Addr().Next().Next()
	for subnet.Contains(a) && subnet.Contains(a.Next()) {
		out = append(out, a)
		a = a.Next()
	}
	return out
}

// fillEtcd records taken as allocated to node, as if node's ADDs had made
// them, and sets the round-robin position to position when it is valid. It
// is a shortcut to a state that thousands of ADDs would reach.
func fillEtcd(ctx context.Context, cli *clientv3.Client, network, node string, taken []netip.Addr, position netip.Addr) error {
	n, err := store.Open(cli, network)
	if err != nil {
		return err
	}
	created := time.Now().UTC().Truncate(time.Millisecond)
	// Each chunk gets its own deadline, so that a stuck etcd fails the
	// run however large the pool.
	const perChunk = 1024
	for start := 0; start < len(taken); start += perChunk {
		var atts []store.Attachment
		for _, a := range taken[start:min(start+perChunk, len(taken))] {
			atts = append(atts, store.Attachment{ContainerID: "fill-" + a.String(), IfName: "eth0", Node: node, Created: created,
				IPs: []store.AttachedAddr{{Address: netip.PrefixFrom(a, 0), RangeSet: 0}}})
		}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := n.Record(tctx, atts)
		cancel()
		if err != nil {
			return fmt.Errorf("filling network %q: %w", network, err)
		}
	}
	if position.IsValid() {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := n.AdvanceLastReserved(tctx, map[int]store.Position{0: {Addr: position, Node: node, At: created}}); err != nil {
			return fmt.Errorf("setting the position of network %q: %w", network, err)
		}
	}
	return nil
}

// fillHostLocal writes the same state in host-local's disk layout: one file
// per address holding "containerID\r\nifname", and last_reserved_ip.0.
func fillHostLocal(dataDir, network string, taken []netip.Addr, position netip.Addr) error {
	dir := filepath.Join(dataDir, network)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, a := range taken {
		if err := os.WriteFile(filepath.Join(dir, a.String()), []byte("fill-"+a.String()+"\r\neth0"), 0o644); err != nil {
			return fmt.Errorf("filling host-local's %s: %w", dir, err)
		}
	}
	if position.IsValid() {
		if err := os.WriteFile(filepath.Join(dir, "last_reserved_ip.0"), []byte(position.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
