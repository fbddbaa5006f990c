// Package native runs the allocation core as ordinary Go code in the
// plugin's own process: the default host, with no start-up cost.
package native

import (
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
)

// Host calls package core directly. Its zero value is ready to use.
type Host struct{}

var _ hosts.Core = Host{}

// New returns the native host.
func New() Host { return Host{} }

// CanonicalizeRangeSets implements hosts.Core.
func (Host) CanonicalizeRangeSets(specs [][]core.RangeSpec) ([]core.RangeSet, error) {
	return core.CanonicalizeRangeSets(specs)
}

// ValidateRangeSets implements hosts.Core.
func (Host) ValidateRangeSets(specs [][]core.RangeSpec) []*core.ConfigError {
	return core.ValidateRangeSets(specs)
}

// SearchOrder implements hosts.Core.
func (Host) SearchOrder(set core.RangeSet, last netip.Addr) []core.Segment {
	return set.SearchOrder(last)
}

// Choose implements hosts.Core.
func (Host) Choose(set core.RangeSet, observed []core.Observation, pick int) core.Choice {
	return set.Choose(observed, pick)
}

// AssignRequested implements hosts.Core.
func (Host) AssignRequested(sets []core.RangeSet, requested []netip.Addr) (perSet, unmatched []netip.Addr) {
	return core.AssignRequested(sets, requested)
}

// CheckRequested implements hosts.Core.
func (Host) CheckRequested(set core.RangeSet, addr netip.Addr) (int, error) {
	return set.CheckRequested(addr)
}

// RangeCapacities implements hosts.Core.
func (Host) RangeCapacities(set core.RangeSet) []uint64 { return set.Capacities() }

// SegmentCapacity implements hosts.Core.
func (Host) SegmentCapacity(set core.RangeSet, seg core.Segment) uint64 {
	return set.SegmentCapacity(seg)
}

// Split implements hosts.Core.
func (Host) Split(seg core.Segment, parts int) []core.Segment { return core.Split(seg, parts) }

// Spot implements hosts.Core.
func (Host) Spot(set core.RangeSet, seed uint64) netip.Addr { return set.Spot(seed) }

// RangeExclusions implements hosts.Core.
func (Host) RangeExclusions(set core.RangeSet) []uint64 { return set.Exclusions() }

// WithoutExcluded implements hosts.Core.
func (Host) WithoutExcluded(set core.RangeSet, segs []core.Segment) []core.Segment {
	return set.WithoutExcluded(segs)
}
