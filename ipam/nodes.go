package ipam

import (
	"context"
	"sort"
	"time"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Nodes: liveness and the per-node index, for `etcd-ipam nodes`, `reclaim`
// and the exporter. Liveness is recorded by the CNI commands themselves:
// ADD and DEL inside their own transactions, CHECK, GC and STATUS with one
// small write at most once a store.SightingInterval.

// Commands as liveness records name them.
const (
	byADD    = "ADD"
	byDEL    = "DEL"
	byCHECK  = "CHECK"
	byGC     = "GC"
	bySTATUS = "STATUS"
)

// sighting is this node seen now by command by.
func (s *Session) sighting(by string) store.Sighting {
	return store.Sighting{Node: s.node, At: s.now().UTC().Truncate(time.Millisecond), By: by}
}

// sight records this node's liveness for a command that writes nothing
// else. It is advisory: a failure to record it (etcd's NOSPACE alarm, say)
// must not fail a CHECK, GC or STATUS that otherwise succeeded, so its
// error is dropped; the next command records it again.
func (s *Session) sight(ctx context.Context, by string) {
	_ = s.net.Sight(ctx, s.sighting(by))
}

// sightIfDue is sight for a command that read the node's record with its
// own read (recorded): at most a write, advisory as sight is.
func (s *Session) sightIfDue(ctx context.Context, recorded *store.Sighting, seen store.Sighting) {
	_ = s.net.SightIfDue(ctx, recorded, seen)
}

// NodeReport is one node as `etcd-ipam nodes` shows it.
type NodeReport struct {
	store.Sighting
	// Addresses is how many addresses the node holds now.
	Addresses int64
}

// Nodes lists every node that has a liveness record, with the number of
// addresses it holds, the longest silent first. It reads the liveness
// records and one count per node, never the allocations themselves.
func (s *Session) Nodes(ctx context.Context) ([]NodeReport, error) {
	return retried(ctx, s, func(ctx context.Context) ([]NodeReport, error) {
		seen, err := s.net.Sightings(ctx)
		if err != nil {
			return nil, err
		}
		names := make([]string, len(seen))
		for i, n := range seen {
			names[i] = n.Node
		}
		counts, err := s.net.CountNodeAddresses(ctx, names)
		if err != nil {
			return nil, err
		}
		out := make([]NodeReport, len(seen))
		for i := range seen {
			out[i] = NodeReport{Sighting: seen[i], Addresses: counts[i]}
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
		return out, nil
	})
}

// NodeAttachments lists the attachments node made, reading only its keys.
func (s *Session) NodeAttachments(ctx context.Context, node string) ([]store.StoredAttachment, error) {
	return retried(ctx, s, func(ctx context.Context) ([]store.StoredAttachment, error) {
		return s.net.NodeAttachments(ctx, node)
	})
}

// ForgetNode deletes a reclaimed node's liveness record, provided the node
// was not seen again since it was listed and holds no address.
func (s *Session) ForgetNode(ctx context.Context, seen store.Sighting) (bool, error) {
	return retried(ctx, s, func(ctx context.Context) (bool, error) {
		return s.net.ForgetNode(ctx, seen)
	})
}
