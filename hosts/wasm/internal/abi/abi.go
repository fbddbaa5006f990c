// Package abi is the byte encoding that carries the core's arguments and
// results across the WebAssembly boundary between hosts/wasm and its guest.
//
// Both sides import this one package, so an encoder and its decoder can never
// disagree. The encoding is deliberately small and hand-written rather than
// encoding/json: the guest links only what it uses, and every megabyte of
// module costs start-up time in a plugin that runs once per container.
//
// The format, in order of the values written:
//   - unsigned integers are LEB128 varints; signed ones are zig-zag varints;
//   - a bool is one byte, 0 or 1;
//   - a string is its length (varint) then its bytes;
//   - a slice is its length plus one (varint; 0 means a nil slice, so that
//     results round-trip exactly, nil and empty alike) then its elements;
//   - a netip.Addr is a tag byte (0 invalid, 4 IPv4, 6 IPv6, 7 IPv6 with a
//     zone) then 0, 4 or 16 address bytes, then the zone string for tag 7;
//   - a netip.Prefix is its address then its bit count (signed, -1 invalid);
//   - structs are their fields in declaration order.
//
// The call convention (see package main in hosts/wasm/guest) moves these
// bytes through linear memory as a pointer and a length.
package abi

import (
	"errors"
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
)

// Names of the functions the guest exports. Every operation takes the length
// of its encoded arguments, already written at the address Buffer returned,
// and returns the address of its encoded result in the high 32 bits and the
// result's length in the low 32 bits. The result stays valid until the next
// call into the same instance.
const (
	// Buffer(n uint32) uint32 returns the address of a guest buffer of at
	// least n bytes for the next call's arguments.
	Buffer                = "buffer"
	CanonicalizeRangeSets = "canonicalize_range_sets"
	ValidateRangeSets     = "validate_range_sets"
	SearchOrder           = "search_order"
	Choose                = "choose"
	AssignRequested       = "assign_requested"
	CheckRequested        = "check_requested"
	RangeCapacities       = "range_capacities"
	SegmentCapacity       = "segment_capacity"
	Split                 = "split"
	Spot                  = "spot"
)

// Operations lists every operation export (all but Buffer), so that a host
// can check a module provides them all before using it.
var Operations = []string{
	CanonicalizeRangeSets, ValidateRangeSets, SearchOrder, Choose, AssignRequested,
	CheckRequested, RangeCapacities, SegmentCapacity, Split, Spot,
}

// Pack joins a result's address and length into an operation's return value.
func Pack(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// Unpack splits an operation's return value into address and length.
func Unpack(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }

const (
	tagInvalid = 0
	tagV4      = 4
	tagV6      = 6
	tagV6Zone  = 7
)

// Writer appends encoded values to B.
type Writer struct{ B []byte }

// Uint writes an unsigned varint.
func (w *Writer) Uint(v uint64) {
	for v >= 0x80 {
		w.B = append(w.B, byte(v)|0x80)
		v >>= 7
	}
	w.B = append(w.B, byte(v))
}

// Int writes a signed (zig-zag) varint.
func (w *Writer) Int(v int) { w.Uint(uint64(v<<1) ^ uint64(v>>63)) }

// Bool writes one byte.
func (w *Writer) Bool(b bool) {
	if b {
		w.B = append(w.B, 1)
	} else {
		w.B = append(w.B, 0)
	}
}

// String writes a length-prefixed string.
func (w *Writer) String(s string) {
	w.Uint(uint64(len(s)))
	w.B = append(w.B, s...)
}

// sliceLen writes a slice's length plus one, or 0 for a nil slice.
func (w *Writer) sliceLen(n int, isNil bool) {
	if isNil {
		w.Uint(0)
		return
	}
	w.Uint(uint64(n) + 1)
}

// Addr writes an address, keeping IPv4-mapped IPv6 and zones distinct.
func (w *Writer) Addr(a netip.Addr) {
	switch {
	case !a.IsValid():
		w.B = append(w.B, tagInvalid)
	case a.Is4():
		b := a.As4()
		w.B = append(append(w.B, tagV4), b[:]...)
	case a.Zone() != "":
		b := a.As16()
		w.B = append(append(w.B, tagV6Zone), b[:]...)
		w.String(a.Zone())
	default:
		b := a.As16()
		w.B = append(append(w.B, tagV6), b[:]...)
	}
}

// Prefix writes a prefix as its address and bit count.
func (w *Writer) Prefix(p netip.Prefix) {
	w.Addr(p.Addr())
	w.Int(p.Bits())
}

// Addrs writes a slice of addresses.
func (w *Writer) Addrs(as []netip.Addr) {
	w.sliceLen(len(as), as == nil)
	for _, a := range as {
		w.Addr(a)
	}
}

// Uints writes a slice of unsigned integers.
func (w *Writer) Uints(vs []uint64) {
	w.sliceLen(len(vs), vs == nil)
	for _, v := range vs {
		w.Uint(v)
	}
}

// RangeSpecs writes the unparsed range sets of a configuration.
func (w *Writer) RangeSpecs(specs [][]core.RangeSpec) {
	w.sliceLen(len(specs), specs == nil)
	for _, set := range specs {
		w.sliceLen(len(set), set == nil)
		for _, s := range set {
			w.String(s.Subnet)
			w.String(s.RangeStart)
			w.String(s.RangeEnd)
			w.String(s.Gateway)
		}
	}
}

// RangeSet writes one canonical range set.
func (w *Writer) RangeSet(set core.RangeSet) {
	w.sliceLen(len(set), set == nil)
	for _, r := range set {
		w.Prefix(r.Subnet)
		w.Addr(r.RangeStart)
		w.Addr(r.RangeEnd)
		w.Addr(r.Gateway)
	}
}

// RangeSets writes a slice of range sets.
func (w *Writer) RangeSets(sets []core.RangeSet) {
	w.sliceLen(len(sets), sets == nil)
	for _, s := range sets {
		w.RangeSet(s)
	}
}

// Segment writes one segment.
func (w *Writer) Segment(s core.Segment) {
	w.Int(s.Range)
	w.Addr(s.From)
	w.Addr(s.To)
}

// Segments writes a slice of segments.
func (w *Writer) Segments(segs []core.Segment) {
	w.sliceLen(len(segs), segs == nil)
	for _, s := range segs {
		w.Segment(s)
	}
}

// Observations writes what the store saw of some segments.
func (w *Writer) Observations(obs []core.Observation) {
	w.sliceLen(len(obs), obs == nil)
	for _, o := range obs {
		w.Segment(o.Segment)
		w.Addrs(o.Taken)
		w.Bool(o.Complete)
	}
}

// Choice writes the result of Choose.
func (w *Writer) Choice(c core.Choice) {
	w.Bool(c.Found)
	w.Addr(c.Addr)
	w.Int(c.Range)
	w.Bool(c.Exhausted)
	w.Segments(c.Resume)
}

// ConfigError writes a possibly nil configuration error.
func (w *Writer) ConfigError(e *core.ConfigError) {
	if e == nil {
		w.Bool(false)
		return
	}
	w.Bool(true)
	w.Int(e.RangeSet)
	w.Int(e.Range)
	w.String(e.Reason)
}

// ConfigErrors writes a slice of configuration errors.
func (w *Writer) ConfigErrors(es []*core.ConfigError) {
	w.sliceLen(len(es), es == nil)
	for _, e := range es {
		w.ConfigError(e)
	}
}

// Error writes a possibly nil error as its message. The core's errors other
// than *core.ConfigError are plain messages (fmt.Errorf without %w), so the
// message is all there is to carry.
func (w *Writer) Error(err error) {
	if err == nil {
		w.Bool(false)
		return
	}
	w.Bool(true)
	w.String(err.Error())
}

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

// Uints reads a slice of unsigned integers.
func (r *Reader) Uints() []uint64 {
	n, ok := r.sliceLen()
	if !ok {
		return nil
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = r.Uint()
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
			set[j] = core.RangeSpec{Subnet: r.String(), RangeStart: r.String(), RangeEnd: r.String(), Gateway: r.String()}
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
		out[i] = core.Range{Subnet: r.Prefix(), RangeStart: r.Addr(), RangeEnd: r.Addr(), Gateway: r.Addr()}
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

// Choice reads the result of Choose.
func (r *Reader) Choice() core.Choice {
	return core.Choice{Found: r.Bool(), Addr: r.Addr(), Range: r.Int(), Exhausted: r.Bool(), Resume: r.Segments()}
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

// Error reads a possibly nil error, rebuilt as errors.New of its message:
// the same type and text that fmt.Errorf without %w gives natively.
func (r *Reader) Error() error {
	if !r.Bool() {
		return nil
	}
	return errors.New(r.String())
}
