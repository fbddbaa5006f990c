package core

import "net/netip"

// pick chooses one address per range set, in order, from observed (and
// taken, whether each requested address that is not held is taken; held
// ones are not in it and count as free). It stops at the first range set
// that cannot give one and returns that failure together with the
// addresses chosen before it; stop ends the step (a count or read the
// narrowing needs, or a failure of the narrowing itself).
func (r *run) pick(observed [][]Observation, taken []bool, perSet []netip.Addr, held []Held) (picked []Assigned, failure *Failure, stop *Action) {
	picked = make([]Assigned, 0, len(r.req.Sets))
	for i, set := range r.req.Sets {
		var addr netip.Addr
		var rangeIdx int
		if a := perSet[i]; a.IsValid() {
			addr = a
			idx, err := set.CheckRequested(addr)
			if err != nil {
				re, _ := err.(*RequestedError)
				return picked, &Failure{Kind: RequestedInvalid, RangeSet: i, Addr: addr, Err: re}, nil
			}
			if !isHeld(held, addr) {
				if len(taken) == 0 {
					act := badAnswer("read: fewer answers than requested addresses")
					return nil, nil, &act
				}
				if taken[0] {
					return picked, &Failure{Kind: RequestedTaken, RangeSet: i, Addr: addr}, nil
				}
				taken = taken[1:]
			}
			rangeIdx = idx
		} else {
			choice, stop := r.choose(i, observed[i])
			if stop != nil {
				return nil, nil, stop
			}
			if !choice.Found {
				return picked, &Failure{Kind: Exhausted, RangeSet: i}, nil
			}
			addr, rangeIdx = choice.Addr, choice.Range
		}
		picked = append(picked, set.assigned(i, rangeIdx, addr))
	}
	return picked, nil, nil
}
