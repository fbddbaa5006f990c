package ipam

import (
	"context"
	"net/netip"
	"time"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// BurstWindow is how recently another node must have moved a range set's
// round-robin position for an ADD to assume that nodes are allocating on
// the network at the same moment (core.BurstWindow).
const BurstWindow = time.Duration(core.BurstWindow)

// Add reserves one address from every range set for (containerID, ifName),
// or returns the addresses it already holds.
func (s *Session) Add(ctx context.Context, containerID, ifName string, requested []netip.Addr) ([]store.AttachedAddr, error) {
	return s.AddPod(ctx, containerID, ifName, requested, nil)
}

// AddPod is Add for a container of a Kubernetes pod (nil: none), which is
// recorded with the attachment. When the pod is an identity
// (store.IdentityOf), the pod interface takes the addresses held for it (a
// reservation, or a sticky network's hold from its previous instance), and
// on a sticky network it has one attachment at a time; otherwise (podman's
// lone container name) the pod is shown by listings and nothing more.
func (s *Session) AddPod(ctx context.Context, containerID, ifName string, requested []netip.Addr, pod *store.PodRef) ([]store.AttachedAddr, error) {
	if err := store.CheckAttachment(containerID, ifName); err != nil {
		return nil, err
	}
	if pod != nil && !pod.Storable() {
		// Recorded for display only, and never a reason to refuse a
		// container (NOTES 25): a name the records cannot hold is left out.
		pod = nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var ips []store.AttachedAddr
	err := settleSpread(ctx, containerID+"\x00"+s.node, func(ctx context.Context) (err error) {
		ips, err = s.add(ctx, containerID, ifName, requested, pod)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ips, nil
}

// add is one read (the attachment, the round-robin positions and what the
// pod interface holds) and then the allocation's conversation with the
// core (core.Step): the core decides every action, this loop performs it
// on etcd (addIO) and feeds the answer back. Uncontended, that is one
// write: two round trips in all.
func (s *Session) add(ctx context.Context, containerID, ifName string, requested []netip.Addr, pod *store.PodRef) ([]store.AttachedAddr, error) {
	// Only a pod that Kubernetes could have is an identity that takes
	// holds and, on a sticky network, has one attachment at a time.
	id := store.IdentityOf(store.Attachment{IfName: ifName, Pod: pod})
	snap, err := s.net.Snapshot(ctx, containerID, ifName, len(s.sets), s.node, id)
	if err != nil {
		return nil, err
	}
	if snap.Attachment != nil {
		return snap.Attachment.IPs, nil
	}
	if s.sticky > 0 && snap.PodAttached != nil {
		return nil, s.podAttachedError(*id, *snap.PodAttached)
	}
	io := s.newAddIO(containerID, ifName, pod, id, snap)
	req := core.Request{
		Sets: s.sets, Requested: requested, Held: heldOf(snap.Held), Node: s.node,
		ContainerID: containerID, Positions: positionsOf(snap.LastReserved), Now: unixNanos(io.now),
	}
	var answers []core.Answer
	for {
		act := s.core.Step(req, answers)
		ans, done, err := io.perform(ctx, act)
		if done || err != nil {
			return io.reserved, err
		}
		answers = append(answers, ans)
	}
}
