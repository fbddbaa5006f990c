package ipam

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"time"

	"github.com/etcd-cni/etcd-ipam/store"
)

// BurstWindow is how recently another node must have moved a range set's
// round-robin position for this ADD to assume that nodes are allocating on
// the network at the same moment.
const BurstWindow = 2 * time.Second

// searchStarts returns where each range set's search starts. Normally that
// is the set's round-robin position, exactly as host-local. When another
// node moved the position within BurstWindow, or after this ADD lost a race
// for an address, the search starts instead at a spot drawn from the
// container ID, node and attempt, so that allocators racing on one network
// spread over the pool instead of all trying the same next address. A
// single node therefore always follows host-local's order.
func (s *Session) searchStarts(positions []store.Position, containerID string, attempt int, now time.Time) []netip.Addr {
	starts := make([]netip.Addr, len(positions))
	for i, p := range positions {
		if attempt == 0 && !s.racing(p, now) {
			starts[i] = p.Addr
			continue
		}
		h := fnv.New64a()
		fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d", containerID, s.node, attempt, i)
		starts[i] = s.core.Spot(s.sets[i], h.Sum64())
	}
	return starts
}

// racing reports whether another node moved position p within
// BurstWindow of now: nodes are allocating on the network at this moment.
func (s *Session) racing(p store.Position, now time.Time) bool {
	return p.Node != "" && p.Node != s.node && now.Sub(p.At).Abs() < BurstWindow
}
