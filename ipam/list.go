package ipam

import (
	"context"
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Reads for the operator's tools: whole-network listings, and one
// container's attachments. They run under the session's deadline and
// retry policy like every operation.

// Allocations lists every allocated address of the network.
func (s *Session) Allocations(ctx context.Context) ([]store.StoredAllocation, error) {
	return retried(ctx, s, s.net.Allocations)
}

// Attachments lists every attachment of the network.
func (s *Session) Attachments(ctx context.Context) ([]store.StoredAttachment, error) {
	return retried(ctx, s, s.net.Attachments)
}

// ContainerAttachments lists the attachments of one container, reading
// only its keys; with ifName, only that interface's.
func (s *Session) ContainerAttachments(ctx context.Context, containerID, ifName string) ([]store.StoredAttachment, error) {
	atts, err := retried(ctx, s, func(ctx context.Context) ([]store.StoredAttachment, error) {
		return s.net.ContainerAttachments(ctx, containerID)
	})
	if err != nil || ifName == "" {
		return atts, err
	}
	var out []store.StoredAttachment
	for _, att := range atts {
		if att.IfName == ifName {
			out = append(out, att)
		}
	}
	return out, nil
}

// LookupAddress reads who holds addr, nil when nobody does.
func (s *Session) LookupAddress(ctx context.Context, addr netip.Addr) (*store.StoredAllocation, error) {
	return retried(ctx, s, func(ctx context.Context) (*store.StoredAllocation, error) {
		return s.net.LookupAddress(ctx, addr)
	})
}
