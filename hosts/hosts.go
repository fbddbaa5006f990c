// Package hosts defines the one interface through which the plugin uses its
// allocation core, so that the core can run natively (hosts/native) or as a
// WebAssembly module (hosts/wasm) with identical results.
//
// Every method takes and returns plain values, never pointers into shared
// state or callbacks, because each call may cross a WebAssembly boundary.
// The calls are coarse, one per thing a frontend needs, so that a new rule
// in the core changes the core and its tests, not this interface.
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
	// Step returns an ADD's next action given its request and the answers
	// to every action before (core.Step): the whole allocator, one call
	// per round of I/O.
	Step(req core.Request, answers []core.Answer) core.Action
	// Capacities returns what usage reports need of every range: its
	// capacity, its exclusions and the pieces whose taken addresses count.
	Capacities(sets []core.RangeSet) []core.RangeCapacity
	// CheckRequested checks that an address may be reserved from the set
	// (an operator's reservation takes it as an ADD would take it
	// requested), returning the index of its range.
	CheckRequested(set core.RangeSet, addr netip.Addr) (rangeIndex int, err error)
}
