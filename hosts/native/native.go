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

// Step implements hosts.Core.
func (Host) Step(req core.Request, answers []core.Answer) core.Action {
	return core.Step(req, answers)
}

// Capacities implements hosts.Core.
func (Host) Capacities(sets []core.RangeSet) []core.RangeCapacity { return core.Capacities(sets) }

// CheckRequested implements hosts.Core.
func (Host) CheckRequested(set core.RangeSet, addr netip.Addr) (int, error) {
	return set.CheckRequested(addr)
}
