package core

import (
	"errors"
	"net/netip"
	"strconv"
)

// RangeSpec is one range as a user writes it in the network configuration.
// Empty strings mean "use the default".
type RangeSpec struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
	Gateway    string `json:"gateway,omitempty"`
	// Exclude lists addresses and CIDRs of the subnet never to hand out.
	Exclude []string `json:"exclude,omitempty"`
}

// Range is one canonical pool of addresses inside a subnet: every field is
// set, RangeStart <= RangeEnd, and all lie in the subnet's family.
type Range struct {
	Subnet     netip.Prefix
	RangeStart netip.Addr
	RangeEnd   netip.Addr
	Gateway    netip.Addr
	// Exclude is what the range never hands out besides its gateway:
	// sorted, disjoint, non-adjacent spans within RangeStart..RangeEnd,
	// nil when there are none.
	Exclude []Span
}

// CanonicalizeRange validates spec and fills in host-local's defaults:
// gateway = network + 1, rangeStart = network + 1, rangeEnd = the last
// address of the subnet, less the broadcast address for IPv4. The gateway
// is never handed out (Choose skips it), so a /24 starts at .2.
func CanonicalizeRange(spec RangeSpec) (Range, error) {
	if spec.Subnet == "" {
		return Range{}, errors.New(`"subnet" is missing; give a CIDR such as "203.0.113.0/24"`)
	}
	subnet, err := netip.ParsePrefix(spec.Subnet)
	if err != nil {
		return Range{}, errors.New("subnet " + strconv.Quote(spec.Subnet) + ` is not a CIDR; write it as address/prefix-length, e.g. "203.0.113.0/24"`)
	}
	if subnet.Addr().Zone() != "" || subnet.Addr().Is4In6() {
		return Range{}, errors.New("subnet " + strconv.Quote(spec.Subnet) + " must be a plain IPv4 or IPv6 prefix (no zone, no IPv4-mapped IPv6)")
	}
	bitLen := subnet.Addr().BitLen()
	// Like host-local: a /31, /32, /127 or /128 has no address to hand out
	// besides the network and gateway.
	if subnet.Bits() > bitLen-2 {
		return Range{}, errors.New("subnet " + subnet.String() + " is too small to allocate from; use a prefix of /" + strconv.Itoa(bitLen-2) + " or shorter")
	}
	if network := subnet.Masked(); network != subnet {
		return Range{}, errors.New("subnet " + spec.Subnet + " has host bits set; for a /" + strconv.Itoa(subnet.Bits()) +
			" the network address is " + network.Addr().String() + ", so write " + strconv.Quote(network.String()))
	}
	r := Range{Subnet: subnet}
	networkAddr := subnet.Addr()

	if spec.Gateway == "" {
		r.Gateway = networkAddr.Next()
	} else {
		gw, err := ParseAddr(spec.Gateway)
		if err != nil {
			return Range{}, &prefixedError{"gateway: ", err}
		}
		if gw.BitLen() != bitLen {
			return Range{}, errors.New("gateway " + gw.String() + " is not in the address family of subnet " + subnet.String())
		}
		r.Gateway = gw
	}

	if spec.RangeStart == "" {
		r.RangeStart = networkAddr.Next()
	} else {
		start, err := ParseAddr(spec.RangeStart)
		if err != nil {
			return Range{}, &prefixedError{"rangeStart: ", err}
		}
		if !subnet.Contains(start) {
			return Range{}, errors.New("rangeStart " + start.String() + " is not in subnet " + subnet.String() + "; pick an address inside the subnet")
		}
		r.RangeStart = start
	}

	if spec.RangeEnd == "" {
		r.RangeEnd = lastAddr(subnet)
		if bitLen == 32 {
			r.RangeEnd = r.RangeEnd.Prev() // never the IPv4 broadcast address
		}
	} else {
		end, err := ParseAddr(spec.RangeEnd)
		if err != nil {
			return Range{}, &prefixedError{"rangeEnd: ", err}
		}
		if !subnet.Contains(end) {
			return Range{}, errors.New("rangeEnd " + end.String() + " is not in subnet " + subnet.String() + "; pick an address inside the subnet")
		}
		r.RangeEnd = end
	}
	if r.RangeEnd.Less(r.RangeStart) {
		return Range{}, errors.New("rangeStart " + r.RangeStart.String() + " is after rangeEnd " + r.RangeEnd.String() + "; swap them")
	}
	if len(spec.Exclude) > 0 {
		x, err := parseExclusions(spec.Exclude, r)
		if err != nil {
			return Range{}, err
		}
		r.Exclude = x
		if r.Capacity() == 0 {
			return Range{}, errors.New("every address of range " + r.String() + " is excluded or the gateway, so it has none to hand out; remove entries from \"exclude\" or widen the range")
		}
	}
	return r, nil
}

// Contains reports whether a is an address of this range (between
// RangeStart and RangeEnd inclusive, in the subnet). The gateway counts as
// contained; it is excluded from allocation, not from the range.
func (r Range) Contains(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.BitLen() != r.Subnet.Addr().BitLen() {
		return false
	}
	return r.Subnet.Contains(a) && !a.Less(r.RangeStart) && !r.RangeEnd.Less(a)
}

// Overlaps reports whether two ranges share an address.
func (r Range) Overlaps(o Range) bool {
	if r.Subnet.Addr().BitLen() != o.Subnet.Addr().BitLen() {
		return false
	}
	return r.Contains(o.RangeStart) || r.Contains(o.RangeEnd) ||
		o.Contains(r.RangeStart) || o.Contains(r.RangeEnd)
}

// Capacity is the number of addresses the range can hand out: RangeStart to
// RangeEnd, less the gateway when it lies inside and less the excluded
// addresses. It saturates at the largest uint64 for huge IPv6 ranges (a
// default /64 has exactly 2^64-2).
func (r Range) Capacity() uint64 {
	return r.handable(r.RangeStart, r.RangeEnd)
}

// Family returns 4 or 6.
func (r Range) Family() int {
	if r.Subnet.Addr().Is4() {
		return 4
	}
	return 6
}

// String names the range the way host-local's errors do: start-end.
func (r Range) String() string {
	return r.RangeStart.String() + "-" + r.RangeEnd.String()
}

// Spec returns the canonical range written back as a RangeSpec, with every
// default made explicit and the exclusions as the fewest addresses and
// CIDRs that cover them.
func (r Range) Spec() RangeSpec {
	spec := RangeSpec{
		Subnet:     r.Subnet.String(),
		RangeStart: r.RangeStart.String(),
		RangeEnd:   r.RangeEnd.String(),
		Gateway:    r.Gateway.String(),
	}
	for _, s := range r.Exclude {
		spec.Exclude = append(spec.Exclude, spanPrefixes(s)...)
	}
	return spec
}
