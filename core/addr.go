package core

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// ParseAddr parses an IPv4 or IPv6 address the way host-local's net.ParseIP
// does: an IPv4-mapped IPv6 address is taken as the IPv4 address, and zones
// (fe80::1%eth0) are refused because an allocated address has none.
func ParseAddr(s string) (netip.Addr, error) {
	trimmed := strings.TrimSpace(s)
	a, err := netip.ParseAddr(trimmed)
	if err != nil {
		return netip.Addr{}, errors.New(strconv.Quote(s) + " is not an IPv4 or IPv6 address")
	}
	if a.Zone() != "" {
		return netip.Addr{}, errors.New(strconv.Quote(s) + " has an IPv6 zone; give the address without %zone")
	}
	return a.Unmap(), nil
}

// ParseRequestedAddr parses an address asked for in CNI_ARGS, args or
// runtimeConfig. Like host-local it also accepts CIDR notation
// ("192.0.2.7/24") and uses only the address part.
func ParseRequestedAddr(s string) (netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return netip.Addr{}, errors.New(strconv.Quote(s) + " is not an IP address or CIDR")
		}
		return p.Addr().Unmap(), nil
	}
	return ParseAddr(s)
}

// lastAddr returns the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= bits {
				b[i] |= 0x80 >> bit
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// distance returns b-a+1 (the number of addresses from a to b inclusive),
// saturating at the largest uint64. It requires a <= b in one family.
func distance(a, b netip.Addr) uint64 {
	a16, b16 := a.As16(), b.As16()
	var hiA, loA, hiB, loB uint64
	for i := 0; i < 8; i++ {
		hiA = hiA<<8 | uint64(a16[i])
		hiB = hiB<<8 | uint64(b16[i])
		loA = loA<<8 | uint64(a16[8+i])
		loB = loB<<8 | uint64(b16[8+i])
	}
	hi := hiB - hiA
	lo := loB - loA
	if loB < loA {
		hi--
	}
	if hi != 0 || lo == ^uint64(0) {
		return ^uint64(0)
	}
	return lo + 1
}

// addOffset returns a+n, or false when that passes the family's last address.
func addOffset(a netip.Addr, n uint64) (netip.Addr, bool) {
	if a.Is4() {
		b := a.As4()
		v := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
		if n > 0xffffffff-v {
			return netip.Addr{}, false
		}
		v += n
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
	}
	b := a.As16()
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[8+i])
	}
	sum := lo + n
	if sum < lo {
		if hi == ^uint64(0) {
			return netip.Addr{}, false
		}
		hi++
	}
	lo = sum
	for i := 7; i >= 0; i-- {
		b[i] = byte(hi)
		b[8+i] = byte(lo)
		hi >>= 8
		lo >>= 8
	}
	return netip.AddrFrom16(b), true
}
