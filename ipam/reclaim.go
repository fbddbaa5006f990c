package ipam

import (
	"context"
	"fmt"
	"time"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Reclaiming a dead node's addresses is an operator's decision, never
// automatic: a node that is only cut off from etcd still runs containers
// with those addresses. These operations list what a silent node holds and
// release it, each attachment only if unchanged since it was listed.

// MinSilence is the shortest silence reclaim accepts. A live node writes
// its liveness record at most once a store.SightingInterval, and only when
// its runtime calls the plugin; anything shorter than a few of those
// intervals would take a quiet but live node for a dead one.
const MinSilence = 10 * time.Minute

// SilenceError is a reclaim asked for with too short a silence.
type SilenceError struct{ SilentFor time.Duration }

func (e *SilenceError) Error() string {
	return fmt.Sprintf("--silent-for %s is shorter than %s: a live node whose runtime calls the plugin rarely could look dead", e.SilentFor, MinSilence)
}

// CheckSilence rejects a silence shorter than MinSilence.
func CheckSilence(silentFor time.Duration) error {
	if silentFor < MinSilence {
		return &SilenceError{SilentFor: silentFor}
	}
	return nil
}

// SilentNode is a node not seen for the asked silence, with what it holds.
type SilentNode struct {
	NodeReport
	Attachments []store.StoredAttachment
}

// SilentNodes lists the nodes not seen for silentFor, the longest silent
// first, each with its attachments, read from its own keys.
func (s *Session) SilentNodes(ctx context.Context, silentFor time.Duration) ([]SilentNode, error) {
	if err := CheckSilence(silentFor); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	nodes, err := s.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	cutoff := s.now().Add(-silentFor)
	var out []SilentNode
	for _, n := range nodes {
		if !n.At.Before(cutoff) {
			break // sorted by last seen: the rest are newer
		}
		atts, err := s.NodeAttachments(ctx, n.Node)
		if err != nil {
			return nil, err
		}
		out = append(out, SilentNode{NodeReport: n, Attachments: atts})
	}
	return out, nil
}

// Reclaim releases a silent node's attachments as listed, each only if
// unchanged since (a DEL that raced it, or a node that came back, wins),
// and then forgets the node if it holds nothing and was not seen again. It
// returns how many attachments it released and whether the node was
// forgotten.
func (s *Session) Reclaim(ctx context.Context, node SilentNode) (released int, forgotten bool, err error) {
	released, err = s.ReleaseAttachments(ctx, node.Attachments)
	if err != nil {
		return released, false, err
	}
	forgotten, err = s.ForgetNode(ctx, node.Sighting)
	return released, forgotten, err
}
