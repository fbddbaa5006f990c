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

// Step implements hosts.Core: one call per step, the request and every
// answer so far in, the next action out.
func (h *Host) Step(req core.Request, answers []core.Answer) (act core.Action) {
	h.call(abi.Step, func(w *abi.Writer) { w.Request(req); w.Answers(answers) }, func(r *abi.Reader) {
		act = r.Action()
	})
	return act
}

// Capacities implements hosts.Core.
func (h *Host) Capacities(sets []core.RangeSet) (caps []core.RangeCapacity) {
	h.call(abi.Capacities, func(w *abi.Writer) { w.RangeSets(sets) }, func(r *abi.Reader) {
		caps = r.RangeCapacities()
	})
	return caps
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
