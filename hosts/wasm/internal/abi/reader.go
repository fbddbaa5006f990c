package abi

import (
	"errors"
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
)

// ErrMalformed reports bytes that are not a valid encoding: a bug on one
// side of the boundary, never bad user input.
var ErrMalformed = errors.New("abi: malformed encoding")

// Reader decodes values from b. The first malformed value sets an error that
// sticks, and every later read returns a zero value, so that a caller checks
// once, in Done.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b; decoded strings are copies, so b may be
// reused once decoding ends.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

func (r *Reader) fail() { r.err = ErrMalformed; r.b = nil }

// Done reports ErrMalformed if any read failed or bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail()
	}
	return r.err
}

// Uint reads an unsigned varint.
func (r *Reader) Uint() uint64 {
	var v uint64
	for i := 0; i < 10; i++ {
		if len(r.b) == 0 {
			r.fail()
			return 0
		}
		c := r.b[0]
		r.b = r.b[1:]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v
		}
	}
	r.fail()
	return 0
}

// Int reads a signed varint.
func (r *Reader) Int() int {
	u := r.Uint()
	return int(u>>1) ^ -int(u&1)
}

// Bool reads one byte.
func (r *Reader) Bool() bool {
	if len(r.b) == 0 {
		r.fail()
		return false
	}
	c := r.b[0]
	r.b = r.b[1:]
	if c > 1 {
		r.fail()
		return false
	}
	return c == 1
}

func (r *Reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.bytes(r.Uint())) }

// sliceLen reads a slice's length; ok is false for a nil slice. A length
// beyond the bytes left is malformed (every element takes at least one
// byte), which bounds what a corrupt length can make a reader allocate.
func (r *Reader) sliceLen() (n int, ok bool) {
	v := r.Uint()
	if v == 0 || r.err != nil {
		return 0, false
	}
	if v-1 > uint64(len(r.b)) {
		r.fail()
		return 0, false
	}
	return int(v - 1), true
}

// Addr reads an address.
func (r *Reader) Addr() netip.Addr {
	if len(r.b) == 0 {
		r.fail()
		return netip.Addr{}
	}
	tag := r.b[0]
	r.b = r.b[1:]
	switch tag {
	case tagInvalid:
		return netip.Addr{}
	case tagV4:
		return netip.AddrFrom4([4]byte(r.fixed(4)))
	case tagV6, tagV6Zone:
		a := netip.AddrFrom16([16]byte(r.fixed(16)))
		if tag == tagV6Zone {
			a = a.WithZone(r.String())
		}
		return a
	}
	r.fail()
	return netip.Addr{}
}

// fixed reads n bytes, or returns n zero bytes after a failure so that the
// array conversions in Addr never panic.
func (r *Reader) fixed(n int) []byte {
	b := r.bytes(uint64(n))
	if b == nil {
		return make([]byte, n)
	}
	return b
}

// Prefix reads a prefix.
func (r *Reader) Prefix() netip.Prefix {
	a := r.Addr()
	bits := r.Int()
	if !a.IsValid() {
		return netip.Prefix{}
	}
	return netip.PrefixFrom(a, bits)
}

// Addrs reads a slice of addresses.
func (r *Reader) Addrs() []netip.Addr {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = r.Addr()
	}
	return out
}

// RangeSpecs reads unparsed range sets.
func (r *Reader) RangeSpecs() [][]core.RangeSpec {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([][]core.RangeSpec, n)
	for i := range out {
		m, ok := r.sliceLen()
		if !ok {
			continue
		}
		set := make([]core.RangeSpec, m)
		for j := range set {
			set[j] = core.RangeSpec{Subnet: r.String(), RangeStart: r.String(), RangeEnd: r.String(), Gateway: r.String(), Exclude: r.Strings()}
		}
		out[i] = set
	}
	return out
}

// RangeSet reads one range set.
func (r *Reader) RangeSet() core.RangeSet {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make(core.RangeSet, n)
	for i := range out {
		out[i] = core.Range{Subnet: r.Prefix(), RangeStart: r.Addr(), RangeEnd: r.Addr(), Gateway: r.Addr(), Exclude: r.Spans()}
	}
	return out
}

// Strings reads a slice of strings.
func (r *Reader) Strings() []string {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.String()
	}
	return out
}

// Spans reads a slice of address spans.
func (r *Reader) Spans() []core.Span {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]core.Span, n)
	for i := range out {
		out[i] = core.Span{From: r.Addr(), To: r.Addr()}
	}
	return out
}

// RangeSets reads a slice of range sets.
func (r *Reader) RangeSets() []core.RangeSet {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]core.RangeSet, n)
	for i := range out {
		out[i] = r.RangeSet()
	}
	return out
}

// Segment reads one segment.
func (r *Reader) Segment() core.Segment {
	return core.Segment{Range: r.Int(), From: r.Addr(), To: r.Addr()}
}

// Segments reads a slice of segments.
func (r *Reader) Segments() []core.Segment {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]core.Segment, n)
	for i := range out {
		out[i] = r.Segment()
	}
	return out
}

// Observations reads what the store saw of some segments.
func (r *Reader) Observations() []core.Observation {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]core.Observation, n)
	for i := range out {
		out[i] = core.Observation{Segment: r.Segment(), Taken: r.Addrs(), Complete: r.Bool()}
	}
	return out
}

// ConfigError reads a possibly nil configuration error.
func (r *Reader) ConfigError() *core.ConfigError {
	if !r.Bool() {
		return nil
	}
	return &core.ConfigError{RangeSet: r.Int(), Range: r.Int(), Reason: r.String()}
}

// ConfigErrors reads a slice of configuration errors.
func (r *Reader) ConfigErrors() []*core.ConfigError {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]*core.ConfigError, n)
	for i := range out {
		out[i] = r.ConfigError()
	}
	return out
}

// RequestedError reads a possibly nil error of CheckRequested.
func (r *Reader) RequestedError() *core.RequestedError {
	if !r.Bool() {
		return nil
	}
	return &core.RequestedError{Addr: r.Addr(), Set: r.RangeSet(), Gateway: r.Bool(), Excluded: r.Bool(), Subnet: r.Prefix()}
}
