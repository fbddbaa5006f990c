package wasm

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/hosts/hoststest"
	"github.com/etcd-cni/etcd-ipam/hosts/native"
)

// FuzzHostsAgree turns random bytes into range configurations (valid and
// not), requests (requested and held addresses, positions of this and other
// nodes, fresh and stale) and a store's state, and requires both hosts to
// agree on every call: the configuration calls, CheckRequested and
// Capacities, and every action of whole allocations (Step), driven to
// their end by answers drawn from the same bytes: reads of the store, true
// and synthetic counts (to narrow, and to find pools full), offers won and
// lost (a lost race, a held address gone vacant, positions another node
// moved meanwhile) and waits after lost races. Results must be
// identical, errors too (type, fields and message, and what errors.As
// finds), and panics must happen in the same places.
func FuzzHostsAgree(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 24, 0, 0, 0, 0, 0, 7, 3, 9})
	f.Add([]byte{1, 2, 64, 1, 5, 200, 3, 9, 9, 2, 1, 1, 0, 4})
	f.Add([]byte{2, 1, 30, 0xff, 0xff, 0xff, 0x10, 0x20, 0x30, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte("203.0.113.0/24 198.51.100.0/24 2001:db8::/64"))
	f.Add([]byte{1, 1, 1, 8, 4, 0, 0, 0, 3, 1, 5, 5, 5, 2, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 3, 3, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2})
	f.Add([]byte("\x01\x02\x03 lost races, narrowing counts and holds: 0123456789abcdef0123456789abcdef"))
	w := newHost(f, "")
	n := native.New()
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{b: data}
		specs := g.specs()
		agree(t, "CanonicalizeRangeSets", func(c hosts.Core) any {
			sets, err := c.CanonicalizeRangeSets(specs)
			return hoststest.Canonicalized{Sets: sets, Err: err}
		}, w, n)
		agree(t, "ValidateRangeSets", func(c hosts.Core) any { return c.ValidateRangeSets(specs) }, w, n)
		sets, err := core.CanonicalizeRangeSets(specs)
		if err != nil {
			return
		}
		agree(t, "Capacities", func(c hosts.Core) any { return c.Capacities(sets) }, w, n)
		for _, rc := range core.Capacities(sets) {
			for _, piece := range rc.Count {
				if excludedIn(sets[rc.RangeSet], piece.From) || excludedIn(sets[rc.RangeSet], piece.To) || piece.To.Less(piece.From) {
					t.Fatalf("Capacities counts %v, excluded or empty", piece)
				}
			}
		}
		for _, set := range sets {
			addr := g.addrNear(set)
			agree(t, "CheckRequested", func(c hosts.Core) any {
				i, err := c.CheckRequested(set, addr)
				return hoststest.Checked{Range: i, Err: err}
			}, w, n)
			agree(t, "CheckRequested errors.As", func(c hosts.Core) any {
				_, err := c.CheckRequested(set, addr)
				return hoststest.As(err)
			}, w, n)
			if seed := g.uint64(); excludedIn(set, set.Spot(seed)) {
				t.Fatalf("Spot(%d) = excluded address %s", seed, set.Spot(seed))
			}
		}
		for range 1 + g.intn(3) {
			allocate(t, g, sets, w, n)
		}
	})
}

// allocate drives one allocation on both hosts to its end (or maxSteps),
// comparing every action, and checks that every address offered or done
// is one the set may hand out.
func allocate(t *testing.T, g *gen, sets []core.RangeSet, w, n hosts.Core) {
	const maxSteps = 120
	req := g.request(sets)
	st := g.store(sets)
	var answers []core.Answer
	for step := 0; step < maxSteps; step++ {
		var act core.Action
		agree(t, "Step", func(c hosts.Core) any {
			act = c.Step(req, answers)
			return act
		}, w, n)
		if act.Done != nil || act.Fail != nil || (act == core.Action{}) {
			if act.Done != nil {
				checkAssignable(t, sets, "done", act.Done.Addrs)
			}
			return
		}
		if act.Offer != nil {
			for _, c := range act.Offer.Candidates {
				checkAssignable(t, sets, "offered", c)
			}
		}
		answers = append(answers, st.answer(g, act))
	}
}

// checkAssignable fails unless every address may be taken from its set:
// never a gateway, an excluded address or one outside the set.
func checkAssignable(t *testing.T, sets []core.RangeSet, what string, as []core.Assigned) {
	t.Helper()
	for _, a := range as {
		if _, err := sets[a.RangeSet].CheckRequested(a.Address.Addr()); err != nil {
			t.Fatalf("%s %s: %v", what, a.Address, err)
		}
	}
}

// excludedIn reports whether a is excluded by any range of set.
func excludedIn(set core.RangeSet, a netip.Addr) bool {
	for _, r := range set {
		if r.IsExcluded(a) {
			return true
		}
	}
	return false
}

// agree runs call on both hosts and fails unless both return the same
// result or both panic.
func agree(t *testing.T, op string, call func(hosts.Core) any, wasmHost, nativeHost hosts.Core) {
	t.Helper()
	var got, want any
	wasmPanic := panics(func() { got = call(wasmHost) })
	nativePanic := panics(func() { want = call(nativeHost) })
	if (wasmPanic == nil) != (nativePanic == nil) {
		t.Fatalf("%s: wasm panic %v, native panic %v", op, wasmPanic, nativePanic)
	}
	if wasmPanic == nil && !hoststest.Same(got, want) {
		t.Fatalf("%s:\nwasm   %s\nnative %s", op, hoststest.Describe(got), hoststest.Describe(want))
	}
}

// gen draws values from fuzz bytes; once they run out it draws zeros, so
// every input, however short, gives one deterministic case.
type gen struct{ b []byte }

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *gen) intn(n int) int { return int(g.byte()) % n }

func (g *gen) uint64() uint64 {
	var v uint64
	for i := 0; i < 8; i++ {
		v = v<<8 | uint64(g.byte())
	}
	return v
}

var v4Bases = []netip.Addr{
	netip.MustParseAddr("203.0.113.0"), netip.MustParseAddr("198.51.100.0"), netip.MustParseAddr("192.0.2.0"),
}

// specs draws up to three range sets of up to three ranges each, over the
// documentation prefixes, with bounds and gateways that are sometimes
// absent, outside the subnet, of the other family or not addresses at all.
func (g *gen) specs() [][]core.RangeSpec {
	if g.intn(16) == 0 {
		return nil
	}
	specs := make([][]core.RangeSpec, 1+g.intn(3))
	for i := range specs {
		set := make([]core.RangeSpec, g.intn(4))
		for j := range set {
			set[j] = g.spec()
		}
		specs[i] = set
	}
	return specs
}

func (g *gen) spec() core.RangeSpec {
	var base netip.Addr
	var bits int
	if g.intn(2) == 0 {
		base = v4Bases[g.intn(len(v4Bases))]
		bits = 22 + g.intn(11) // 22..32: too large, fine and too small
	} else {
		b := netip.MustParseAddr("2001:db8::").As16()
		b[5] = g.byte()
		base = netip.AddrFrom16(b)
		bits = []int{32, 48, 64, 96, 112, 120, 124, 126, 127, 128}[g.intn(10)]
	}
	if g.intn(4) == 0 { // host bits set, sometimes
		base = offset(base, uint64(g.byte()))
	}
	s := core.RangeSpec{Subnet: base.String() + "/" + strconv.Itoa(bits)}
	if g.intn(8) == 0 {
		s.Subnet = []string{"", "203.0.113.0", "2001:db8::/129", "fe80::%eth0/64", "::ffff:203.0.113.0/120"}[g.intn(5)]
	}
	s.RangeStart = g.bound(base)
	s.RangeEnd = g.bound(base)
	s.Gateway = g.bound(base)
	if g.intn(2) == 0 {
		s.Exclude = g.exclusions(base, bits)
	}
	return s
}

// exclusions draws "exclude" entries near base: addresses, CIDRs of the
// subnet (the whole subnet sometimes), CIDRs with host bits set or reaching
// outside it, the other family and entries that are not addresses at all.
func (g *gen) exclusions(base netip.Addr, bits int) []string {
	out := make([]string, g.intn(5))
	for i := range out {
		a := offset(base, uint64(g.byte()))
		switch g.intn(8) {
		case 0:
			out[i] = []string{"x", "", "203.0.113.0/33", "2001:db8::1", "198.51.100.7", "fe80::1%eth0", " 203.0.113.9 ", "::ffff:203.0.113.9"}[g.intn(8)]
		case 1, 2:
			b := bits + g.intn(a.BitLen()-bits+1) - g.intn(2) // sometimes one bit short
			p := netip.PrefixFrom(a, b)
			if g.intn(4) > 0 {
				p = p.Masked()
			}
			out[i] = p.String()
		default:
			out[i] = a.String()
		}
	}
	return out
}

// bound draws an optional address near base, or a malformed one.
func (g *gen) bound(base netip.Addr) string {
	switch g.intn(8) {
	case 0, 1, 2:
		return ""
	case 3:
		return []string{"x", "203.0.113.1%eth0", "2001:db8::1", " 203.0.113.9 ", "::ffff:203.0.113.9"}[g.intn(5)]
	}
	return offset(base, uint64(g.byte())).String()
}

// addrNear draws an address inside one of set's ranges, just outside it,
// the same address IPv4-mapped, or the zero Addr.
func (g *gen) addrNear(set core.RangeSet) netip.Addr {
	r := set[g.intn(len(set))]
	switch g.intn(8) {
	case 0:
		return netip.Addr{}
	case 1:
		return r.RangeEnd.Next()
	case 2:
		return r.Gateway
	case 3:
		if r.RangeStart.Is4() {
			return netip.AddrFrom16(r.RangeStart.As16())
		}
		return r.RangeStart.WithZone("eth0")
	}
	return offset(r.RangeStart, uint64(g.byte()))
}

// taken draws ascending reserved addresses within seg, as the store
// reports them.
func (g *gen) taken(seg core.Segment) []netip.Addr {
	var out []netip.Addr
	cur := seg.From
	for k := g.intn(6); k > 0 && cur.IsValid() && !seg.To.Less(cur); k-- {
		cur = offset(cur, uint64(g.intn(4)))
		if !cur.IsValid() || seg.To.Less(cur) {
			break
		}
		out = append(out, cur)
		cur = cur.Next()
	}
	return out
}

// offset adds n to a, saturating at the family's last address.
func offset(a netip.Addr, n uint64) netip.Addr {
	for ; n > 0; n-- {
		next := a.Next()
		if !next.IsValid() {
			break
		}
		a = next
	}
	return a
}
