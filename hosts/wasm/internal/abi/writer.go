package abi

import (
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
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
			w.Strings(s.Exclude)
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
		w.Spans(r.Exclude)
	}
}

// Strings writes a slice of strings.
func (w *Writer) Strings(ss []string) {
	w.sliceLen(len(ss), ss == nil)
	for _, s := range ss {
		w.String(s)
	}
}

// Spans writes a slice of address spans.
func (w *Writer) Spans(spans []core.Span) {
	w.sliceLen(len(spans), spans == nil)
	for _, s := range spans {
		w.Addr(s.From)
		w.Addr(s.To)
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

// RequestedError writes a possibly nil error of CheckRequested, field by
// field, so that the host rebuilds the very value the guest returned.
func (w *Writer) RequestedError(e *core.RequestedError) {
	if e == nil {
		w.Bool(false)
		return
	}
	w.Bool(true)
	w.Addr(e.Addr)
	w.RangeSet(e.Set)
	w.Bool(e.Gateway)
	w.Bool(e.Excluded)
	w.Prefix(e.Subnet)
}
