package core

import (
	"net/netip"
	"slices"
	"testing"
)

// TestFreshNetworkRaceSpreadsTheNextGuess: on a fresh network every node
// guesses the same first addresses. A loser whose write read a position
// another node moved meanwhile guesses again at once from a spot of its
// own, in one write and without a read, instead of taking the next free
// address in order that every other loser would take too.
func TestFreshNetworkRaceSpreadsTheNextGuess(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}})
	req := Request{Sets: sets, Node: "node-a", ContainerID: "c", Positions: make([]Position, 1), Now: 1e18}
	m := newMemStore()
	m.takeRange("203.0.113.1", "203.0.113.9") // the first guesses, won by others
	m.positions = []Position{{Addr: netip.MustParseAddr("203.0.113.9"), Node: "node-b", At: req.Now - 1e6}}
	acts := m.drive(t, req)
	if got := kinds(acts); !slices.Equal(got, []string{"offer", "offer", "done"}) {
		t.Fatalf("actions %v, want two offers and nothing between", got)
	}
	spot := sets[0].Spot(fnv64a("c\x00node-a\x001\x000"))
	if first := acts[1].Offer.Candidates[0][0].Address.Addr(); first != spot.Next() {
		t.Errorf("second offer starts at %s, want after the spot %s", first, spot)
	}
	if len(acts[1].Offer.Candidates) != GuessedCandidates {
		t.Errorf("second offer has %d candidates, want %d guesses", len(acts[1].Offer.Candidates), GuessedCandidates)
	}
	// Two nodes losing the same guesses spread to different spots.
	other := req
	other.Node, other.ContainerID = "node-c", "d"
	m2 := newMemStore()
	m2.takeRange("203.0.113.1", "203.0.113.9")
	m2.positions = m.positions
	acts2 := m2.drive(t, other)
	if a, b := acts[1].Offer.Candidates[0][0], acts2[1].Offer.Candidates[0][0]; a == b {
		t.Errorf("both losers' second offers start at %s", a.Address)
	}
}

// TestLoneAllocatorInABusyPoolKeepsOrder: a lost guess whose write reads
// no other node's move (this node's own position, an old one, or none) is
// a busy pool, not a race: the next offer is the first free addresses in
// order, as host-local's.
func TestLoneAllocatorInABusyPoolKeepsOrder(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}})
	req := Request{Sets: sets, Node: "node-a", ContainerID: "c", Positions: make([]Position, 1), Now: 1e18}
	for name, read := range map[string][]Position{
		"none":        nil,
		"no position": make([]Position, 1),
		"own":         {{Addr: netip.MustParseAddr("203.0.113.20"), Node: "node-a", At: req.Now - 1e6}},
		"old":         {{Addr: netip.MustParseAddr("203.0.113.20"), Node: "node-b", At: req.Now - 3*BurstWindow}},
	} {
		m := newMemStore()
		m.takeRange("203.0.113.1", "203.0.113.20")
		m.positions = read
		acts := m.drive(t, req)
		if got := kinds(acts); !slices.Equal(got, []string{"offer", "offer", "done"}) {
			t.Fatalf("%s: actions %v, want two offers", name, got)
		}
		if got := doneAddrs(t, acts); !slices.Equal(got, []string{"203.0.113.21/24"}) {
			t.Errorf("%s: got %v, want the first free 203.0.113.21/24", name, got)
		}
	}
}

// TestBackoffGrowsJitteredAndBounded: the wait after the k-th lost race
// lies within [bound/2, bound] of a bound that doubles from BackoffBase
// to BackoffCap, is the same for the same inputs, and differs between
// allocators (so the losers of one race come back apart).
func TestBackoffGrowsJitteredAndBounded(t *testing.T) {
	r := &run{req: Request{ContainerID: "c", Node: "node-a"}}
	bound := BackoffBase
	var total int64
	for k := 1; k <= MaxAttempts; k++ {
		w := r.backoff(k)
		if w < bound/2 || w > bound {
			t.Errorf("wait %d: %d ns, want within [%d, %d]", k, w, bound/2, bound)
		}
		if w != r.backoff(k) {
			t.Errorf("wait %d differs between calls", k)
		}
		total += w
		bound = min(2*bound, BackoffCap)
	}
	if total > 3e9 {
		t.Errorf("%d attempts wait %d ns in all, more than 3 s of an ADD's deadline", MaxAttempts, total)
	}
	distinct := map[int64]bool{}
	for i := range 20 {
		o := &run{req: Request{ContainerID: string(rune('a' + i)), Node: "node-a"}}
		distinct[o.backoff(3)] = true
	}
	if len(distinct) < 15 {
		t.Errorf("20 allocators drew %d distinct waits, want them spread", len(distinct))
	}
}

// TestRepeatedRacesWaitLongerAndStayBounded: an allocator that loses every
// attempt waits before each retry, longer as losses pile up, and gives up
// with Contention after MaxAttempts writes.
func TestRepeatedRacesWaitLongerAndStayBounded(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}})
	req := Request{Sets: sets, Node: "node-a", ContainerID: "c", Positions: make([]Position, 1), Now: 1e18}
	m := newMemStore()
	m.lose = func(*Offer) bool { return true }
	acts := m.drive(t, req)
	if f := acts[len(acts)-1].Fail; f == nil || f.Kind != Contention {
		t.Fatalf("ended with %v, want Contention", kinds(acts)[len(acts)-1])
	}
	offers, waits := 0, []int64{}
	for _, a := range acts {
		if a.Offer != nil {
			offers++
		}
		if a.Wait != nil {
			waits = append(waits, a.Wait.Nanos)
		}
	}
	if offers != MaxAttempts {
		t.Errorf("%d offers, want %d", offers, MaxAttempts)
	}
	if len(waits) == 0 || waits[len(waits)-1] < BackoffCap/2 || waits[0] > BackoffBase {
		t.Errorf("waits %v, want from at most %d growing to at least %d", waits, BackoffBase, BackoffCap/2)
	}
	if kinds(acts)[len(acts)-2] == "wait" {
		t.Error("waited before giving up")
	}
}
