package core

import (
	"hash/fnv"
	"net/netip"
	"slices"
	"testing"
)

// The allocator's decisions, with no store at all: memStore answers each
// action from a set of taken addresses, as etcd would, and tests bend its
// answers to make races, full pools and changed holds.

// memStore is a network's taken addresses; lose, when set, turns an
// offer's answer into a loss whatever is free (another allocator won);
// positions, when set, are what a lost offer reads of the round-robin
// positions (another node's, moved meanwhile).
type memStore struct {
	taken     map[netip.Addr]bool
	lose      func(o *Offer) bool
	positions []Position
}

func newMemStore(taken ...string) *memStore {
	m := &memStore{taken: map[netip.Addr]bool{}}
	for _, a := range taken {
		m.taken[netip.MustParseAddr(a)] = true
	}
	return m
}

// takeRange marks from..to taken.
func (m *memStore) takeRange(from, to string) {
	for a := netip.MustParseAddr(from); a.Compare(netip.MustParseAddr(to)) <= 0; a = a.Next() {
		m.taken[a] = true
	}
}

func (m *memStore) within(seg Segment) []netip.Addr {
	var out []netip.Addr
	for a := range m.taken {
		if !a.Less(seg.From) && !seg.To.Less(a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func (m *memStore) observe(searches [][]Segment) [][]Observation {
	out := make([][]Observation, len(searches))
	for i, segs := range searches {
		out[i] = make([]Observation, len(segs))
		for j, seg := range segs {
			all := m.within(seg)
			limit := ReadLimit(j)
			out[i][j] = Observation{Segment: seg, Taken: all[:min(len(all), limit)], Complete: len(all) < limit}
		}
	}
	return out
}

func (m *memStore) answer(act Action) Answer {
	switch {
	case act.Read != nil:
		taken := make([]bool, len(act.Read.Requested))
		for i, a := range act.Read.Requested {
			taken[i] = m.taken[a]
		}
		return Answer{Observed: m.observe(act.Read.Searches), Taken: taken}
	case act.Count != nil:
		counts := make([]int64, len(act.Count.Segments))
		for i, seg := range act.Count.Segments {
			counts[i] = int64(len(m.within(seg)))
		}
		return Answer{Counts: counts}
	case act.Offer != nil:
		o := act.Offer
		if m.lose == nil || !m.lose(o) {
			for i, c := range o.Candidates {
				free := true
				for _, a := range c {
					free = free && (isHeld(o.Held, a.Address.Addr()) || !m.taken[a.Address.Addr()])
				}
				if free {
					for _, a := range c {
						m.taken[a.Address.Addr()] = true
					}
					return Answer{Committed: true, Won: i}
				}
			}
		}
		var lost []netip.Addr
		for _, a := range o.Candidates[0] {
			if m.taken[a.Address.Addr()] || isHeld(o.Held, a.Address.Addr()) || m.lose != nil {
				lost = append(lost, a.Address.Addr())
			}
		}
		return Answer{Lost: lost, Observed: m.observe(o.Searches), Positions: m.positions}
	}
	return Answer{}
}

// drive runs req to its end and returns every action, the last one Done or
// Fail.
func (m *memStore) drive(t *testing.T, req Request) []Action {
	t.Helper()
	var acts []Action
	var answers []Answer
	for len(acts) < 1000 {
		act := Step(req, answers)
		acts = append(acts, act)
		if act.Done != nil || act.Fail != nil {
			return acts
		}
		answers = append(answers, m.answer(act))
	}
	t.Fatalf("no end after %d steps", len(acts))
	return nil
}

func doneAddrs(t *testing.T, acts []Action) []string {
	t.Helper()
	last := acts[len(acts)-1]
	if last.Done == nil {
		t.Fatalf("ended with %+v, want done", *last.Fail)
	}
	var out []string
	for _, a := range last.Done.Addrs {
		out = append(out, a.Address.String())
	}
	return out
}

func kinds(acts []Action) []string {
	var out []string
	for _, a := range acts {
		switch {
		case a.Read != nil:
			out = append(out, "read")
		case a.Count != nil:
			out = append(out, "count")
		case a.Offer != nil:
			out = append(out, "offer")
		case a.Advance != nil:
			out = append(out, "advance")
		case a.Wait != nil:
			out = append(out, "wait")
		case a.Done != nil:
			out = append(out, "done")
		case a.Fail != nil:
			out = append(out, "fail")
		}
	}
	return out
}

func TestLoneAllocatorFollowsHostLocal(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}})
	m := newMemStore("203.0.113.2", "203.0.113.3", "203.0.113.5")
	req := Request{Sets: sets, Node: "node-a", ContainerID: "c", Positions: make([]Position, 1), Now: 1e18}
	// host-local: the first free address after the position, each ADD
	// moving the position to what it took.
	for _, want := range []string{"203.0.113.4/24", "203.0.113.6/24", "203.0.113.7/24"} {
		acts := m.drive(t, req)
		if got := doneAddrs(t, acts); !slices.Equal(got, []string{want}) {
			t.Fatalf("got %v, want %s", got, want)
		}
		// One write: the guesses, the first free one of which commits.
		if got := kinds(acts); !slices.Equal(got, []string{"offer", "done"}) {
			t.Errorf("actions %v, want one offer", got)
		}
		req.Positions[0] = Position{Addr: netip.MustParsePrefix(want).Addr(), Node: "node-a", At: req.Now}
	}
}

func TestLostCandidateLeadsToTheNext(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}})
	req := Request{Sets: sets, Node: "node-a", ContainerID: "c", Positions: make([]Position, 1), Now: 1e18}
	// The first guess is taken: the chain's next candidate commits in the
	// same write.
	m := newMemStore("203.0.113.2")
	if got := doneAddrs(t, m.drive(t, req)); !slices.Equal(got, []string{"203.0.113.3/24"}) {
		t.Errorf("got %v, want the next candidate 203.0.113.3/24", got)
	}
	// Every guess taken: the write read the searches, and the next offer
	// is the free addresses they show.
	m = newMemStore()
	m.takeRange("203.0.113.1", "203.0.113.20")
	acts := m.drive(t, req)
	if got := doneAddrs(t, acts); !slices.Equal(got, []string{"203.0.113.21/24"}) {
		t.Errorf("got %v, want 203.0.113.21/24", got)
	}
	if got := kinds(acts); !slices.Equal(got, []string{"offer", "offer", "done"}) {
		t.Errorf("actions %v, want two offers and no separate read", got)
	}
	if first := acts[1].Offer.Candidates[0][0].Address.String(); first != "203.0.113.21/24" {
		t.Errorf("second offer starts with %s", first)
	}
	// A chain chosen from a read and lost to a race: back off, then read
	// again, starting at a spread-out spot.
	lost := 0
	m = newMemStore()
	m.takeRange("203.0.113.1", "203.0.113.20")
	m.lose = func(*Offer) bool { lost++; return lost <= 2 }
	acts = m.drive(t, req)
	if got := kinds(acts); !slices.Equal(got, []string{"offer", "offer", "wait", "read", "offer", "done"}) {
		t.Fatalf("actions %v, want guesses, observed offer, a wait, a fresh read and an offer", got)
	}
	spot := sets[0].Spot(fnv64a("c\x00node-a\x001\x000"))
	if from := acts[3].Read.Searches[0][0].From; from != spot.Next() && from != sets[0][0].RangeStart {
		t.Errorf("the read after a lost race starts at %s, want after the spot %s", from, spot)
	}
}

func TestExhaustedAfterCounts(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "198.51.96.0/20"}})
	m := newMemStore()
	m.takeRange("198.51.96.1", "198.51.111.254")
	acts := m.drive(t, Request{Sets: sets, Positions: make([]Position, 1)})
	// Guesses, then one count says the whole set is full.
	if got := kinds(acts); !slices.Equal(got, []string{"offer", "count", "fail"}) {
		t.Fatalf("actions %v, want offer, count, fail", got)
	}
	if f := acts[2].Fail; f.Kind != Exhausted || f.RangeSet != 0 {
		t.Errorf("failure %+v, want range set 0 exhausted", *f)
	}
	// A far hole: two counts and a read find it.
	delete(m.taken, netip.MustParseAddr("198.51.111.200"))
	acts = m.drive(t, Request{Sets: sets, Positions: make([]Position, 1)})
	if got := doneAddrs(t, acts); !slices.Equal(got, []string{"198.51.111.200/20"}) {
		t.Fatalf("got %v, want the far hole", got)
	}
	if got := kinds(acts); !slices.Equal(got, []string{"offer", "count", "count", "read", "offer", "done"}) {
		t.Errorf("actions %v, want two counts and a read", got)
	}
	// Two range sets, the second full: the first keeps its advanced
	// position, as host-local's.
	dual := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}}, []RangeSpec{{Subnet: "2001:db8::/126"}})
	m = newMemStore("2001:db8::1", "2001:db8::2", "2001:db8::3")
	acts = m.drive(t, Request{Sets: dual, Positions: make([]Position, 2)})
	// The guesses' write read both searches: no read of its own.
	if got := kinds(acts); !slices.Equal(got, []string{"offer", "advance", "fail"}) {
		t.Fatalf("actions %v, want offer, advance, fail", got)
	}
	if p := acts[1].Advance.Positions; len(p) != 1 || p[0].Address.String() != "203.0.113.2/24" {
		t.Errorf("advanced %+v, want range set 0 to 203.0.113.2", p)
	}
	if f := acts[2].Fail; f.Kind != Exhausted || f.RangeSet != 1 {
		t.Errorf("failure %+v, want range set 1 exhausted", *f)
	}
}

func TestRequestedAddress(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}})
	req := Request{Sets: sets, Requested: []netip.Addr{netip.MustParseAddr("203.0.113.77")}, Positions: make([]Position, 1)}
	acts := newMemStore().drive(t, req)
	if got := doneAddrs(t, acts); !slices.Equal(got, []string{"203.0.113.77/24"}) {
		t.Errorf("got %v, want the requested address", got)
	}
	// Taken when read.
	acts = newMemStore("203.0.113.77").drive(t, req)
	if f := acts[len(acts)-1].Fail; f == nil || f.Kind != RequestedTaken || f.Addr != req.Requested[0] {
		t.Errorf("ended %v, want requested 203.0.113.77 taken", kinds(acts))
	}
	// Taken between the read and the write.
	m := newMemStore()
	m.lose = func(*Offer) bool { m.taken[req.Requested[0]] = true; return true }
	acts = m.drive(t, req)
	if f := acts[len(acts)-1].Fail; f == nil || f.Kind != RequestedTaken {
		t.Errorf("ended %v, want requested taken", kinds(acts))
	}
	// The gateway, and an address of no range set.
	req.Requested = []netip.Addr{netip.MustParseAddr("203.0.113.1")}
	acts = newMemStore().drive(t, req)
	if f := acts[len(acts)-1].Fail; f == nil || f.Kind != RequestedInvalid || f.Err == nil || !f.Err.Gateway {
		t.Errorf("ended %v, want the gateway refused", kinds(acts))
	}
	req.Requested = []netip.Addr{netip.MustParseAddr("192.0.2.9")}
	acts = newMemStore().drive(t, req)
	if f := acts[len(acts)-1].Fail; f == nil || f.Kind != RequestedUnmatched || len(f.Addrs) != 1 {
		t.Errorf("ended %v, want 192.0.2.9 unmatched", kinds(acts))
	}
	// Unmatched after the other sets picked: their positions advance.
	if got := kinds(acts); !slices.Equal(got, []string{"read", "advance", "fail"}) {
		t.Errorf("actions %v, want read, advance, fail", got)
	}
}

func TestHeldAddressTakesItsSetsPlace(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}}, []RangeSpec{{Subnet: "2001:db8::/64"}})
	held := Held{Addr: netip.MustParseAddr("2001:db8::99"), RangeSet: 1}
	req := Request{Sets: sets, Held: []Held{held, {Addr: netip.MustParseAddr("2001:db8::5"), RangeSet: 1}}, Positions: make([]Position, 2)}
	m := newMemStore("2001:db8::99") // held: its key exists, holding the hold
	acts := m.drive(t, req)
	if got := doneAddrs(t, acts); !slices.Equal(got, []string{"203.0.113.2/24", "2001:db8::99/64"}) {
		t.Errorf("got %v, want the held address in range set 1", got)
	}
	// The held address is not read, only taken by the write.
	if r := acts[0].Read; r == nil || r.Searches[1] != nil || len(r.Requested) != 0 {
		t.Errorf("first action %+v, want a read of range set 0 only", acts[0])
	}
	if o := acts[1].Offer; o == nil || !slices.Equal(o.Held, []Held{held}) {
		t.Errorf("offer %+v, want it to take the first held address", acts[1])
	}
	// A requested address of the set comes first.
	req.Requested = []netip.Addr{netip.MustParseAddr("2001:db8::7")}
	if got := doneAddrs(t, newMemStore().drive(t, req)); got[1] != "2001:db8::7/64" {
		t.Errorf("got %v, want the requested address over the held one", got)
	}
	req.Requested = nil
	// The hold changed before the write: the ADD reads again.
	m = newMemStore()
	m.lose = func(*Offer) bool { return true }
	acts = m.drive(t, req)
	if f := acts[len(acts)-1].Fail; f == nil || f.Kind != HoldChanged {
		t.Errorf("ended %v, want the hold changed", kinds(acts))
	}
	// A reservation found vacant: the same offer again.
	answers := []Answer{newMemStore().answer(Step(req, nil)), {Lost: []netip.Addr{held.Addr}, Retake: true}}
	first, again := Step(req, answers[:1]), Step(req, answers)
	if again.Offer == nil || first.Offer == nil || !slices.EqualFunc(first.Offer.Candidates, again.Offer.Candidates, slices.Equal) {
		t.Errorf("after a retake: %+v, want the same offer %+v", again, first)
	}
}

// TestRetakeBesideARequestedAddress: a reservation found vacant is offered
// again with the requested address of another set, as read before (the
// write checks that it is still free).
func TestRetakeBesideARequestedAddress(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}}, []RangeSpec{{Subnet: "2001:db8::/64"}})
	held := Held{Addr: netip.MustParseAddr("2001:db8::99"), RangeSet: 1}
	req := Request{Sets: sets, Requested: []netip.Addr{netip.MustParseAddr("203.0.113.77")}, Held: []Held{held}, Positions: make([]Position, 2)}
	read := Step(req, nil)
	if read.Read == nil || !slices.Equal(read.Read.Requested, req.Requested) {
		t.Fatalf("first action %+v, want a read of the requested address only", read)
	}
	answers := []Answer{{Observed: [][]Observation{nil, nil}, Taken: []bool{false}}}
	first := Step(req, answers)
	again := Step(req, append(answers, Answer{Lost: []netip.Addr{held.Addr}, Retake: true}))
	if first.Offer == nil || again.Offer == nil || !slices.EqualFunc(first.Offer.Candidates, again.Offer.Candidates, slices.Equal) {
		t.Errorf("after a retake: %+v, want the same offer %+v", again, first)
	}
}

func TestRacingSpreads(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}})
	now := int64(1e18)
	at := netip.MustParseAddr("203.0.113.40")
	firstGuess := func(p Position, container string) netip.Addr {
		req := Request{Sets: sets, Node: "node-a", ContainerID: container, Positions: []Position{p}, Now: now}
		return Step(req, nil).Offer.Candidates[0][0].Address.Addr()
	}
	// This node's own position, or another's long ago: host-local's order.
	for _, p := range []Position{{Addr: at, Node: "node-a", At: now}, {Addr: at, Node: "node-b", At: now - BurstWindow}} {
		if got := firstGuess(p, "c1"); got != at.Next() {
			t.Errorf("position %+v: first guess %s, want %s", p, got, at.Next())
		}
	}
	// Another node just now: each container starts at its own spot.
	racing := Position{Addr: at, Node: "node-b", At: now - BurstWindow + 1}
	seen := map[netip.Addr]bool{}
	for _, c := range []string{"c1", "c2", "c3", "c4"} {
		got := firstGuess(racing, c)
		if got == at.Next() {
			t.Errorf("container %s racing follows the shared position", c)
		}
		seen[got] = true
	}
	if len(seen) < 3 {
		t.Errorf("four racing containers start at %d spots", len(seen))
	}
	// The spot is the one the plugin always drew: FNV-1a over the
	// container, node, attempt and set.
	h := fnv.New64a()
	h.Write([]byte("c1\x00node-a\x000\x000"))
	if got, want := fnv64a("c1\x00node-a\x000\x000"), h.Sum64(); got != want {
		t.Errorf("fnv64a = %x, hash/fnv = %x", got, want)
	}
}

func TestAttemptBoundGivesContention(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}})
	m := newMemStore()
	m.lose = func(*Offer) bool { return true }
	acts := m.drive(t, Request{Sets: sets, Node: "node-a", ContainerID: "c", Positions: make([]Position, 1)})
	offers := 0
	for _, a := range acts {
		if a.Offer != nil {
			offers++
		}
	}
	if f := acts[len(acts)-1].Fail; f == nil || f.Kind != Contention || offers != MaxAttempts {
		t.Errorf("ended %v after %d offers, want contention after %d", kinds(acts), offers, MaxAttempts)
	}
}

func TestAnswerOutOfTurnIsABadAnswer(t *testing.T) {
	sets := mustSets(t, []RangeSpec{{Subnet: "203.0.113.0/24"}})
	req := Request{Sets: sets, Positions: make([]Position, 1)}
	for name, answers := range map[string][]Answer{
		"won beyond the chain":   {{Committed: true, Won: 8}},
		"observed the wrong set": {{Observed: [][]Observation{nil, nil}}},
	} {
		if act := Step(req, answers); act.Fail == nil || act.Fail.Kind != BadAnswer {
			t.Errorf("%s: %+v, want a bad answer", name, act)
		}
	}
	// A request without range sets ends at once (it used to search
	// forever for a candidate width).
	if act := Step(Request{}, nil); act.Fail == nil || act.Fail.Kind != BadAnswer {
		t.Errorf("no range sets: %+v, want a bad request refused", act)
	}
}
