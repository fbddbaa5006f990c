package core

import "net/netip"

// heldFor returns the held addresses an ADD takes: one per range set, in
// sets where no address is requested, and only addresses that still belong
// to that range set and may be handed out (the configuration may have
// changed since they were held).
func heldFor(sets []RangeSet, held []Held, perSet []netip.Addr) []Held {
	var out []Held
	used := make([]bool, len(sets))
	for _, h := range held {
		i := h.RangeSet
		if i < 0 || i >= len(sets) || perSet[i].IsValid() || used[i] {
			continue
		}
		if _, err := sets[i].CheckRequested(h.Addr); err != nil {
			continue
		}
		used[i] = true
		out = append(out, h)
	}
	return out
}

// isHeld reports whether a is one of held's addresses.
func isHeld(held []Held, a netip.Addr) bool {
	for _, h := range held {
		if h.Addr == a {
			return true
		}
	}
	return false
}
