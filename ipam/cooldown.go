package ipam

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/store"
)

// Cooldown (ipam "cooldown", NOTES 28): every release of an address that
// goes back to nobody leaves it cooling, a hold for nobody under an etcd
// lease (store/cooling.go), so an ADD sees it taken like any other and
// the allocation path needs no change. What changes is the answer when
// the only addresses not allocated are cooling: not "exhausted" (100),
// which tells an operator to add ranges, but "try again later" (11), with
// how many are cooling and when the first is free again.

// coolingPolicy is the release policy of an operator's release: the
// cooldown only (no liveness record, no sticky holds).
func (s *Session) coolingPolicy() *store.ReleasePolicy {
	if s.cooldown <= 0 {
		return nil
	}
	return &store.ReleasePolicy{Cooldown: s.cooldown, Now: s.now(), Node: s.node}
}

// CoolingError: a range set has no free address, but some of its
// addresses are cooling down after their release and will be free again.
type CoolingError struct {
	Network  string
	RangeSet int
	Set      core.RangeSet
	Cooling  int64
	// FirstFree is when the first cooling address is free again; zero
	// when unknown.
	FirstFree time.Time
	Cooldown  time.Duration
}

func (e *CoolingError) Error() string {
	when := "soon"
	if !e.FirstFree.IsZero() {
		when = "at " + e.FirstFree.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("no IP addresses available in range set %d (%s) of network %q now: %d released %s cooling down (ipam \"cooldown\" is %s), the first free again %s",
		e.RangeSet, e.Set, e.Network, e.Cooling, plural(int(e.Cooling), "address is", "addresses are"), e.Cooldown, when)
}

// Hint says what to do about it.
func (e *CoolingError) Hint() string {
	return "wait until then (the runtime retries), lower ipam \"cooldown\", release unused addresses, " +
		"or free a cooling address at once with etcd-ipam release ADDRESS"
}

// explainCooling is the ADD's failure as a user should read it when
// cooling addresses are the reason: an exhausted range set with cooling
// addresses becomes a *CoolingError (code 11), and a requested address
// that is taken because it is cooling a *RequestedError that says so and
// until when. Any other failure, or a network without a cooldown, is
// returned as it is; so is the failure when the look costs a read that
// fails (the failure stays true, only less precise). f is the core's
// failure and failure the error it maps to.
func (s *Session) explainCooling(ctx context.Context, f *core.Failure, failure error) error {
	if s.cooldown <= 0 || f == nil {
		return failure
	}
	switch f.Kind {
	case core.Exhausted:
		var exhausted *ExhaustedError
		if !errors.As(failure, &exhausted) {
			return failure
		}
		c, err := s.net.CountCooling(ctx, s.countedPieces(f.RangeSet))
		if err != nil || c.Count == 0 {
			return failure
		}
		return &CoolingError{Network: s.name, RangeSet: exhausted.RangeSet, Set: exhausted.Set,
			Cooling: c.Count, FirstFree: c.FirstFree, Cooldown: s.cooldown}
	case core.RequestedTaken:
		owner, err := s.net.LookupAddress(ctx, f.Addr)
		if err != nil || owner == nil || owner.ContainerID != "" || owner.Hold == nil || owner.Hold.Kind != store.HoldCooling {
			return failure
		}
		return &RequestedError{
			Msg: fmt.Sprintf("requested IP address %s is not available in range set %d (%s) of network %q: it is cooling down after its release until %s (ipam \"cooldown\" is %s)",
				f.Addr, f.RangeSet, s.sets[f.RangeSet], s.name, owner.Hold.Until.UTC().Format(time.RFC3339), s.cooldown),
			Hint: "request it again after then, request another address, or free it at once with etcd-ipam release " + f.Addr.String(),
		}
	}
	return failure
}

// countedPieces are range set i's ranges without their excluded
// addresses: the pieces whose keys count (an address allocated before its
// exclusion stays a key, and must not count).
func (s *Session) countedPieces(i int) []core.Segment {
	var out []core.Segment
	for _, c := range s.core.Capacities(s.sets) {
		if c.RangeSet == i {
			out = append(out, c.Count...)
		}
	}
	return out
}
