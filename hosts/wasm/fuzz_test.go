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
// not), reservations seen in the store and requests, runs every core
// operation on both hosts and requires identical results, identical errors
// (type, fields and message, and what errors.As finds) and panics in the
// same places.
func FuzzHostsAgree(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 24, 0, 0, 0, 0, 0, 7, 3, 9})
	f.Add([]byte{1, 2, 64, 1, 5, 200, 3, 9, 9, 2, 1, 1, 0, 4})
	f.Add([]byte{2, 1, 30, 0xff, 0xff, 0xff, 0x10, 0x20, 0x30, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte("203.0.113.0/24 198.51.100.0/24 2001:db8::/64"))
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
		requested := make([]netip.Addr, g.intn(4))
		for i := range requested {
			requested[i] = g.addrNear(sets[g.intn(len(sets))])
		}
		agree(t, "AssignRequested", func(c hosts.Core) any {
			per, un := c.AssignRequested(sets, requested)
			return hoststest.Assigned{PerSet: per, Unmatched: un}
		}, w, n)
		for _, set := range sets {
			last := netip.Addr{}
			if g.intn(3) > 0 {
				last = g.addrNear(set)
			}
			order := set.SearchOrder(last)
			agree(t, "SearchOrder", func(c hosts.Core) any { return c.SearchOrder(set, last) }, w, n)
			observed := make([]core.Observation, len(order))
			for i, seg := range order {
				observed[i] = core.Observation{Segment: seg, Taken: g.taken(seg), Complete: g.intn(4) > 0}
			}
			pick := g.intn(6) - 1
			agree(t, "Choose", func(c hosts.Core) any { return c.Choose(set, observed, pick) }, w, n)
			if choice := set.Choose(observed, pick); choice.Found && set[choice.Range].IsExcluded(choice.Addr) {
				t.Fatalf("Choose picked excluded address %s of %v", choice.Addr, set[choice.Range].Exclude)
			}
			addr := g.addrNear(set)
			agree(t, "CheckRequested", func(c hosts.Core) any {
				i, err := c.CheckRequested(set, addr)
				return hoststest.Checked{Range: i, Err: err}
			}, w, n)
			agree(t, "CheckRequested errors.As", func(c hosts.Core) any {
				_, err := c.CheckRequested(set, addr)
				return hoststest.As(err)
			}, w, n)
			agree(t, "RangeCapacities", func(c hosts.Core) any { return c.RangeCapacities(set) }, w, n)
			seg := order[g.intn(len(order))]
			agree(t, "SegmentCapacity", func(c hosts.Core) any { return c.SegmentCapacity(set, seg) }, w, n)
			parts := g.intn(10) - 1
			agree(t, "Split", func(c hosts.Core) any { return c.Split(seg, parts) }, w, n)
			seed := g.uint64()
			agree(t, "Spot", func(c hosts.Core) any { return c.Spot(set, seed) }, w, n)
			if a := set.Spot(seed); excludedIn(set, a) {
				t.Fatalf("Spot(%d) = excluded address %s", seed, a)
			}
			agree(t, "RangeExclusions", func(c hosts.Core) any { return c.RangeExclusions(set) }, w, n)
			agree(t, "WithoutExcluded", func(c hosts.Core) any { return c.WithoutExcluded(set, order) }, w, n)
			for _, piece := range set.WithoutExcluded(order) {
				if excludedIn(set, piece.From) || excludedIn(set, piece.To) || piece.To.Less(piece.From) {
					t.Fatalf("WithoutExcluded left %v", piece)
				}
			}
		}
	})
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
