package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
	"github.com/etcd-cni/etcd-ipam/ipam"
	"github.com/etcd-cni/etcd-ipam/store"
)

// The two kinds of simulated node of the scale scenario: ours, an ipam
// session as the plugin runs it, and the floor, the least an allocator
// must ask of etcd for the same keys.

// simNode is one simulated node: its own etcd client and node name.
type simNode interface {
	// warm opens the client's connections with one read, so that the
	// burst measures allocations rather than connection set-up.
	warm(ctx context.Context) error
	add(ctx context.Context, containerID string) (netip.Addr, error)
	del(ctx context.Context, containerID string) error
	close() error
}

const simIfName = "eth0"

// oursNode is an ipam session, as the plugin opens one per invocation.
type oursNode struct{ s *ipam.Session }

func openOurs(conf *config.Network, node string) (simNode, error) {
	s, err := ipam.Open(conf, ipam.Options{Core: native.New(), Node: node})
	if err != nil {
		return nil, fmt.Errorf("opening the session of %s: %w", node, err)
	}
	return oursNode{s}, nil
}

func (o oursNode) warm(ctx context.Context) error {
	_, err := o.s.ContainerAttachments(ctx, "warm-up", simIfName)
	return err
}

func (o oursNode) add(ctx context.Context, containerID string) (netip.Addr, error) {
	ips, err := o.s.Add(ctx, containerID, simIfName, nil)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) != 1 {
		return netip.Addr{}, fmt.Errorf("ADD of %s returned %d addresses, want 1", containerID, len(ips))
	}
	return ips[0].Address.Addr(), nil
}

func (o oursNode) del(ctx context.Context, containerID string) error {
	return o.s.Del(ctx, containerID, simIfName)
}

func (o oursNode) close() error { return o.s.Close() }

// floorNode does per ADD exactly the etcd work an uncontended ADD cannot
// avoid, and nothing else: one read of the keys an ADD reads (the
// attachment and the range set's position) and one create-if-absent
// transaction writing the keys an ADD writes, with values of the same
// encoding and size. It decides nothing: each floor node takes the next
// address of its own slice of the pool, so floor nodes never collide.
// Its DEL is likewise a read of the attachment and one conditional delete.
type floorNode struct {
	cli     *clientv3.Client
	net     *store.Network
	node    string
	subnet  netip.Prefix
	gateway netip.Addr
	addrs   []netip.Addr // this node's slice of the pool
	next    int
	timeout time.Duration
}

func openFloor(conf *config.Network, node string, subnet netip.Prefix, addrs []netip.Addr) (simNode, error) {
	// The same client configuration as a session's.
	cli, err := store.Dial(store.DialConfig{Endpoints: conf.Etcd.Endpoints, Timeout: conf.Etcd.Timeout})
	if err != nil {
		return nil, fmt.Errorf("dialing etcd for floor node %s: %w", node, err)
	}
	n, err := store.Open(cli, conf.Name)
	if err != nil {
		_ = cli.Close()
		return nil, err
	}
	return &floorNode{cli: cli, net: n, node: node, subnet: subnet, gateway: subnet.Masked().Addr().Next(),
		addrs: addrs, timeout: conf.Etcd.Timeout}, nil
}

// ctx bounds a floor operation as a session bounds its own: the same
// deadline and the require-leader flag.
func (f *floorNode) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(clientv3.WithRequireLeader(ctx), f.timeout)
}

func (f *floorNode) warm(ctx context.Context) error {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	if _, err := f.cli.Get(ctx, f.net.AttachmentKey("warm-up", simIfName)); err != nil {
		return fmt.Errorf("floor node %s: warming up: %w", f.node, err)
	}
	return nil
}

func (f *floorNode) add(ctx context.Context, containerID string) (netip.Addr, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	attKey, posKey := f.net.AttachmentKey(containerID, simIfName), f.net.PositionKey(0)
	resp, err := f.cli.Txn(ctx).Then(clientv3.OpGet(attKey), clientv3.OpGet(posKey)).Commit()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("floor ADD of %s: reading: %w", containerID, err)
	}
	if len(resp.Responses[0].GetResponseRange().Kvs) > 0 {
		return netip.Addr{}, fmt.Errorf("floor ADD of %s: the attachment exists", containerID)
	}
	if f.next >= len(f.addrs) {
		return netip.Addr{}, fmt.Errorf("floor ADD of %s: node %s used its %d addresses", containerID, f.node, len(f.addrs))
	}
	a := f.addrs[f.next]
	f.next++
	now := time.Now().UTC().Truncate(time.Millisecond)
	att, err := json.Marshal(store.Attachment{ContainerID: containerID, IfName: simIfName, Node: f.node, Created: now,
		IPs: []store.AttachedAddr{{Address: netip.PrefixFrom(a, f.subnet.Bits()), Gateway: f.gateway}}})
	if err != nil {
		return netip.Addr{}, err
	}
	alloc, err := json.Marshal(store.Allocation{ContainerID: containerID, IfName: simIfName, Node: f.node, Created: now})
	if err != nil {
		return netip.Addr{}, err
	}
	pos, err := json.Marshal(store.Position{Addr: a, Node: f.node, At: now})
	if err != nil {
		return netip.Addr{}, err
	}
	ipKey, indexKey := f.net.AddressKey(a), f.net.NodeIndexKey(f.node, a)
	w, err := f.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(attKey), "=", 0), clientv3.Compare(clientv3.CreateRevision(ipKey), "=", 0)).
		Then(clientv3.OpPut(attKey, string(att)), clientv3.OpPut(ipKey, string(alloc)),
			clientv3.OpPut(indexKey, store.NodeIndexValue(containerID, simIfName)), clientv3.OpPut(posKey, string(pos))).
		Commit()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("floor ADD of %s: writing: %w", containerID, err)
	}
	if !w.Succeeded {
		return netip.Addr{}, fmt.Errorf("floor ADD of %s: %s or its attachment was taken", containerID, a)
	}
	return a, nil
}

func (f *floorNode) del(ctx context.Context, containerID string) error {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	attKey := f.net.AttachmentKey(containerID, simIfName)
	resp, err := f.cli.Get(ctx, attKey)
	if err != nil {
		return fmt.Errorf("floor DEL of %s: reading: %w", containerID, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	kv := resp.Kvs[0]
	var att store.Attachment
	if err := json.Unmarshal(kv.Value, &att); err != nil || len(att.IPs) != 1 {
		return fmt.Errorf("floor DEL of %s: unexpected attachment %q: %v", containerID, kv.Value, err)
	}
	ipKey, indexKey := f.net.AddressKey(att.IPs[0].Address.Addr()), f.net.NodeIndexKey(f.node, att.IPs[0].Address.Addr())
	w, err := f.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(attKey), "=", kv.ModRevision), clientv3.Compare(clientv3.CreateRevision(ipKey), "=", kv.CreateRevision)).
		Then(clientv3.OpDelete(attKey), clientv3.OpDelete(ipKey), clientv3.OpDelete(indexKey)).
		Commit()
	if err != nil {
		return fmt.Errorf("floor DEL of %s: writing: %w", containerID, err)
	}
	if !w.Succeeded {
		return fmt.Errorf("floor DEL of %s: the attachment changed", containerID)
	}
	return nil
}

func (f *floorNode) close() error { return f.cli.Close() }
