// Package hosts defines the one interface through which the plugin uses its
// allocation core, so that the core can run natively (hosts/native) or as a
// WebAssembly module (hosts/wasm) with identical results.
//
// Every method takes and returns plain values, never pointers into shared
// state or callbacks, because each call may cross a WebAssembly boundary.
package hosts

import (
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
)

// Core is the allocation logic of package core behind a narrow, data-only
// surface. Errors returned by CanonicalizeRangeSets are *core.ConfigError,
// those of CheckRequested *core.RequestedError, on every host alike.
type Core interface {
	// CanonicalizeRangeSets validates range sets and fills in defaults.
	CanonicalizeRangeSets(specs [][]core.RangeSpec) ([]core.RangeSet, error)
	// ValidateRangeSets reports every problem of a configuration.
	ValidateRangeSets(specs [][]core.RangeSpec) []*core.ConfigError
	// SearchOrder returns the segments to observe, in round-robin order
	// after last (the set's last reserved address, or the zero Addr).
	SearchOrder(set core.RangeSet, last netip.Addr) []core.Segment
	// Choose picks a free address from what was observed.
	Choose(set core.RangeSet, observed []core.Observation, pick int) core.Choice
	// AssignRequested matches requested addresses to range sets.
	AssignRequested(sets []core.RangeSet, requested []netip.Addr) (perSet, unmatched []netip.Addr)
	// CheckRequested checks that a requested address may be reserved.
	CheckRequested(set core.RangeSet, addr netip.Addr) (rangeIndex int, err error)
	// RangeCapacities returns how many addresses each range of the set can
	// hand out, excluded addresses left out (saturating at the largest
	// uint64).
	RangeCapacities(set core.RangeSet) []uint64
	// SegmentCapacity counts the addresses of a segment that could be
	// handed out (all but the gateway and excluded addresses).
	SegmentCapacity(set core.RangeSet, seg core.Segment) uint64
	// Split cuts a segment into at most parts consecutive segments.
	Split(seg core.Segment, parts int) []core.Segment
	// Spot returns the set's address at position seed (modulo its size),
	// never an excluded one.
	Spot(set core.RangeSet, seed uint64) netip.Addr
	// RangeExclusions returns how many addresses each range of the set
	// excludes besides its gateway (saturating at the largest uint64).
	RangeExclusions(set core.RangeSet) []uint64
	// WithoutExcluded cuts the excluded addresses out of segments, so
	// that counts of taken addresses over them compare exactly with
	// SegmentCapacity; without exclusions it returns them unchanged.
	WithoutExcluded(set core.RangeSet, segs []core.Segment) []core.Segment
}
