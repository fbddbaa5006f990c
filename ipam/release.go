package ipam

import (
	"context"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Releasing addresses: CNI DEL and GC, and the operator's release and gc.
// Each runs under the session's deadline and retry policy (bound, settle),
// so that a leader election is ridden out the same way whichever frontend
// asked. Every write is conditional on what was read, so a retry after an
// attempt that committed unseen frees nothing twice.

// Del releases every address of (containerID, ifName). Releasing an
// attachment that does not exist succeeds, as CNI requires.
func (s *Session) Del(ctx context.Context, containerID, ifName string) error {
	if err := store.CheckAttachment(containerID, ifName); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return settle(ctx, func(ctx context.Context) error {
		seen := s.sighting(byDEL)
		_, err := s.net.Release(ctx, containerID, ifName, &store.ReleasePolicy{Sighting: &seen, Sticky: s.sticky, Cooldown: s.cooldown, Now: seen.At, Node: s.node})
		return err
	})
}

// GC releases the attachments this node made that are not in keep. Other
// nodes' attachments are never touched: a runtime knows only its own node's
// containers. It returns the attachments released.
func (s *Session) GC(ctx context.Context, keep []types.GCAttachment) ([]store.StoredAttachment, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	stale, err := s.StaleAttachments(ctx, s.node, keep)
	if err != nil {
		return nil, err
	}
	if _, err := s.ReleaseAttachments(ctx, stale); err != nil {
		return nil, err
	}
	s.sight(ctx, byGC)
	return stale, nil
}

// StaleAttachments lists node's attachments that are not in keep, reading
// only that node's keys.
func (s *Session) StaleAttachments(ctx context.Context, node string, keep []types.GCAttachment) ([]store.StoredAttachment, error) {
	all, err := s.NodeAttachments(ctx, node)
	if err != nil {
		return nil, err
	}
	valid := make(map[types.GCAttachment]bool, len(keep))
	for _, k := range keep {
		valid[k] = true
	}
	var stale []store.StoredAttachment
	for _, att := range all {
		if att.Node == node && !valid[types.GCAttachment{ContainerID: att.ContainerID, IfName: att.IfName}] {
			stale = append(stale, att)
		}
	}
	return stale, nil
}

// ReleaseAttachments frees the given attachments, each only if unchanged
// since it was read, and returns how many it freed, as GC does: on a
// sticky network a pod's addresses become holds for it, and with a
// cooldown the others cool. Nothing is freed
// twice; an attachment freed by an attempt whose answer was lost counts as
// released.
func (s *Session) ReleaseAttachments(ctx context.Context, atts []store.StoredAttachment) (int, error) {
	return s.releaseAttachments(ctx, atts, &store.ReleasePolicy{Sticky: s.sticky, Cooldown: s.cooldown, Now: s.now(), Node: s.node})
}

// FreeAttachments is ReleaseAttachments without sticky holds: an
// operator's release of a container frees its addresses (those of an
// operator's reservation still go back to it), and with a cooldown they
// cool, as every release's do (NOTES 28).
func (s *Session) FreeAttachments(ctx context.Context, atts []store.StoredAttachment) (int, error) {
	return s.releaseAttachments(ctx, atts, s.coolingPolicy())
}

func (s *Session) releaseAttachments(ctx context.Context, atts []store.StoredAttachment, p *store.ReleasePolicy) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	released := 0
	for start := 0; start < len(atts); start += store.ReleaseBatch {
		batch := atts[start:min(start+store.ReleaseBatch, len(atts))]
		// After an attempt that failed transiently, its write may have
		// committed: the attachments a later attempt finds gone were
		// released by it (or by someone else meanwhile), and count.
		uncertain := false
		err := settle(ctx, func(ctx context.Context) error {
			n, gone, err := s.net.ReleaseAttachments(ctx, batch, p)
			released += n
			if uncertain {
				released += gone
			}
			uncertain = uncertain || isTransient(err)
			return err
		})
		if err != nil {
			return released, err
		}
	}
	return released, nil
}

// ReleaseAddress frees one address, provided it is still held exactly as
// held was read (store.ErrOwnerChanged otherwise), and returns the
// attachment it belonged to as it was before, or nil (also when an attempt
// whose reply was lost released it). With a cooldown the address cools
// (one taken from a reservation goes back to it); a cooling address is a
// hold, which ReleaseHold frees at once.
func (s *Session) ReleaseAddress(ctx context.Context, held store.StoredAllocation) (*store.StoredAttachment, error) {
	p := s.coolingPolicy()
	return releasing(ctx, s, func(ctx context.Context) (*store.StoredAttachment, error) {
		return s.net.ReleaseAddressWith(ctx, held, p)
	})
}
