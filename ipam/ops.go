package ipam

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// Del releases every address of (containerID, ifName). Releasing an
// attachment that does not exist succeeds, as CNI requires.
func (s *Session) Del(ctx context.Context, containerID, ifName string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := settle(ctx, func(ctx context.Context) error {
		_, err := s.net.Release(ctx, containerID, ifName)
		return err
	})
	if err != nil {
		return AsCNIError(err)
	}
	return nil
}

// Check verifies that (containerID, ifName) holds addresses and still owns
// every one of them.
func (s *Session) Check(ctx context.Context, containerID, ifName string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	att, err := s.net.Attachment(ctx, containerID, ifName)
	if err != nil {
		return AsCNIError(err)
	}
	if att == nil {
		return types.NewError(types.ErrUnknownContainer,
			fmt.Sprintf("container %q interface %q holds no address in network %q", containerID, ifName, s.name),
			"run ADD for this container first")
	}
	missing, err := s.net.Missing(ctx, *att)
	if err != nil {
		return AsCNIError(err)
	}
	if len(missing) > 0 {
		return types.NewError(types.ErrUnknownContainer,
			fmt.Sprintf("container %q interface %q no longer holds %s in network %q", containerID, ifName, joinAddrs(missing), s.name),
			"run DEL and ADD again for this container")
	}
	return nil
}

// GC releases the attachments this node made that are not in keep. Other
// nodes' attachments are never touched: a runtime knows only its own node's
// containers. It returns the attachments released.
func (s *Session) GC(ctx context.Context, keep []types.GCAttachment) ([]store.StoredAttachment, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	all, err := s.net.Attachments(ctx)
	if err != nil {
		return nil, AsCNIError(err)
	}
	valid := make(map[types.GCAttachment]bool, len(keep))
	for _, k := range keep {
		valid[k] = true
	}
	var stale []store.StoredAttachment
	for _, att := range all {
		if att.Node == s.node && !valid[types.GCAttachment{ContainerID: att.ContainerID, IfName: att.IfName}] {
			stale = append(stale, att)
		}
	}
	if _, err := s.net.ReleaseAttachments(ctx, stale); err != nil {
		return nil, AsCNIError(err)
	}
	return stale, nil
}

// Usage is how full one range is.
type Usage struct {
	RangeSet, Range int
	Capacity        uint64
	Used            uint64
}

// Usage counts the allocated addresses of every range in one round trip.
func (s *Session) Usage(ctx context.Context) ([]Usage, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var segs []core.Segment
	var usage []Usage
	for i, set := range s.sets {
		caps := s.core.RangeCapacities(set)
		for j, r := range set {
			segs = append(segs, core.Segment{Range: j, From: r.RangeStart, To: r.RangeEnd})
			usage = append(usage, Usage{RangeSet: i, Range: j, Capacity: caps[j]})
		}
	}
	counts, err := s.net.CountTaken(ctx, segs)
	if err != nil {
		return nil, AsCNIError(err)
	}
	for i := range usage {
		usage[i].Used = uint64(counts[i])
	}
	return usage, nil
}

// Status reports whether the network can serve an ADD: etcd answers and
// every range set has a free address (an ADD needs one from each).
func (s *Session) Status(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.net.Ping(ctx); err != nil {
		return types.NewError(CodeStatusUnavailable, fmt.Sprintf("network %q is unavailable: %v", s.name, err),
			"check that etcd is running and reachable at etcdURL")
	}
	usage, err := s.Usage(ctx)
	if err != nil {
		return types.NewError(CodeStatusUnavailable, fmt.Sprintf("network %q is unavailable: %v", s.name, err), "")
	}
	hasFree := make([]bool, len(s.sets))
	for _, u := range usage {
		if u.Used < u.Capacity {
			hasFree[u.RangeSet] = true
		}
	}
	for i := range s.sets {
		if !hasFree[i] {
			return types.NewError(CodeStatusUnavailable,
				fmt.Sprintf("network %q cannot serve ADD: range set %d (%s) has no free address", s.name, i, s.sets[i]),
				"release unused addresses or add a range to the range set")
		}
	}
	return nil
}
