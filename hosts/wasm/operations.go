package wasm

// The hosts.Core operations, each one call into the guest: encode the
// arguments, decode the result, in the order the guest reads and writes them.

import (
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/wasm/internal/abi"
)

// CanonicalizeRangeSets implements hosts.Core; its error is a
// *core.ConfigError, as natively.
func (h *Host) CanonicalizeRangeSets(specs [][]core.RangeSpec) (sets []core.RangeSet, err error) {
	h.call(abi.CanonicalizeRangeSets, func(w *abi.Writer) { w.RangeSpecs(specs) }, func(r *abi.Reader) {
		sets = r.RangeSets()
		if ce := r.ConfigError(); ce != nil {
			err = ce
		}
	})
	return sets, err
}

// ValidateRangeSets implements hosts.Core.
func (h *Host) ValidateRangeSets(specs [][]core.RangeSpec) (problems []*core.ConfigError) {
	h.call(abi.ValidateRangeSets, func(w *abi.Writer) { w.RangeSpecs(specs) }, func(r *abi.Reader) {
		problems = r.ConfigErrors()
	})
	return problems
}

// SearchOrder implements hosts.Core.
func (h *Host) SearchOrder(set core.RangeSet, last netip.Addr) (order []core.Segment) {
	h.call(abi.SearchOrder, func(w *abi.Writer) { w.RangeSet(set); w.Addr(last) }, func(r *abi.Reader) {
		order = r.Segments()
	})
	return order
}

// Choose implements hosts.Core.
func (h *Host) Choose(set core.RangeSet, observed []core.Observation, pick int) (c core.Choice) {
	h.call(abi.Choose, func(w *abi.Writer) { w.RangeSet(set); w.Observations(observed); w.Int(pick) }, func(r *abi.Reader) {
		c = r.Choice()
	})
	return c
}

// AssignRequested implements hosts.Core.
func (h *Host) AssignRequested(sets []core.RangeSet, requested []netip.Addr) (perSet, unmatched []netip.Addr) {
	h.call(abi.AssignRequested, func(w *abi.Writer) { w.RangeSets(sets); w.Addrs(requested) }, func(r *abi.Reader) {
		perSet, unmatched = r.Addrs(), r.Addrs()
	})
	return perSet, unmatched
}

// CheckRequested implements hosts.Core; its error is a
// *core.RequestedError with the fields of the native one.
func (h *Host) CheckRequested(set core.RangeSet, addr netip.Addr) (idx int, err error) {
	h.call(abi.CheckRequested, func(w *abi.Writer) { w.RangeSet(set); w.Addr(addr) }, func(r *abi.Reader) {
		idx = r.Int()
		if re := r.RequestedError(); re != nil {
			err = re
		}
	})
	return idx, err
}

// RangeCapacities implements hosts.Core.
func (h *Host) RangeCapacities(set core.RangeSet) (caps []uint64) {
	h.call(abi.RangeCapacities, func(w *abi.Writer) { w.RangeSet(set) }, func(r *abi.Reader) {
		caps = r.Uints()
	})
	return caps
}

// SegmentCapacity implements hosts.Core.
func (h *Host) SegmentCapacity(set core.RangeSet, seg core.Segment) (n uint64) {
	h.call(abi.SegmentCapacity, func(w *abi.Writer) { w.RangeSet(set); w.Segment(seg) }, func(r *abi.Reader) {
		n = r.Uint()
	})
	return n
}

// Split implements hosts.Core.
func (h *Host) Split(seg core.Segment, parts int) (segs []core.Segment) {
	h.call(abi.Split, func(w *abi.Writer) { w.Segment(seg); w.Int(parts) }, func(r *abi.Reader) {
		segs = r.Segments()
	})
	return segs
}

// Spot implements hosts.Core.
func (h *Host) Spot(set core.RangeSet, seed uint64) (a netip.Addr) {
	h.call(abi.Spot, func(w *abi.Writer) { w.RangeSet(set); w.Uint(seed) }, func(r *abi.Reader) {
		a = r.Addr()
	})
	return a
}

// RangeExclusions implements hosts.Core.
func (h *Host) RangeExclusions(set core.RangeSet) (counts []uint64) {
	h.call(abi.RangeExclusions, func(w *abi.Writer) { w.RangeSet(set) }, func(r *abi.Reader) {
		counts = r.Uints()
	})
	return counts
}

// WithoutExcluded implements hosts.Core.
func (h *Host) WithoutExcluded(set core.RangeSet, segs []core.Segment) (out []core.Segment) {
	h.call(abi.WithoutExcluded, func(w *abi.Writer) { w.RangeSet(set); w.Segments(segs) }, func(r *abi.Reader) {
		out = r.Segments()
	})
	return out
}
