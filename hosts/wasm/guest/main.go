//go:build wasip1

// Command guest is package core compiled to a WebAssembly reactor module for
// hosts/wasm. Build it with `go generate ./hosts/wasm`, which runs
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s\ -w
//
// and embeds the result in hosts/wasm.
//
// The module does no I/O: it reads nothing, writes only a panic message to
// stderr, and needs neither a clock nor randomness (the host gives it fake
// ones). Each export decodes its arguments (package abi) from the buffer
// that "buffer" handed out, calls core, and returns its encoded result as a
// packed pointer and length into a buffer that stays valid until the next
// call. The host serializes calls, so one pair of buffers suffices.
//
// A malformed argument is a bug in the host, so it panics: the host sees a
// trap, discards this instance and reports the failure.
package main

import (
	"unsafe"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts/wasm/internal/abi"
)

// in receives each call's arguments; out holds the latest result. Both are
// package variables so that the garbage collector keeps them (and the
// addresses handed to the host) alive between calls.
var in, out []byte

func main() {}

//go:wasmexport buffer
func buffer(n uint32) uint32 {
	if uint32(cap(in)) < n {
		in = make([]byte, n)
	}
	in = in[:cap(in)]
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(in))))
}

// args returns a reader over the n argument bytes the host wrote.
func args(n uint32) *abi.Reader { return abi.NewReader(in[:n]) }

// reply checks that the arguments were read whole and returns the result
// that encode writes.
func reply(r *abi.Reader, encode func(w *abi.Writer)) uint64 {
	if err := r.Done(); err != nil {
		panic(err.Error())
	}
	w := abi.Writer{B: out[:0]}
	encode(&w)
	out = w.B
	return abi.Pack(uint32(uintptr(unsafe.Pointer(unsafe.SliceData(out)))), uint32(len(out)))
}

//go:wasmexport canonicalize_range_sets
func canonicalizeRangeSets(n uint32) uint64 {
	r := args(n)
	specs := r.RangeSpecs()
	return reply(r, func(w *abi.Writer) {
		sets, err := core.CanonicalizeRangeSets(specs)
		w.RangeSets(sets)
		// CanonicalizeRangeSets returns nil or a *core.ConfigError.
		ce, _ := err.(*core.ConfigError)
		if err != nil && ce == nil {
			panic("CanonicalizeRangeSets returned an error that is not a *core.ConfigError")
		}
		w.ConfigError(ce)
	})
}

//go:wasmexport validate_range_sets
func validateRangeSets(n uint32) uint64 {
	r := args(n)
	specs := r.RangeSpecs()
	return reply(r, func(w *abi.Writer) { w.ConfigErrors(core.ValidateRangeSets(specs)) })
}

//go:wasmexport step
func step(n uint32) uint64 {
	r := args(n)
	req, answers := r.Request(), r.Answers()
	return reply(r, func(w *abi.Writer) { w.Action(core.Step(req, answers)) })
}

//go:wasmexport capacities
func capacities(n uint32) uint64 {
	r := args(n)
	sets := r.RangeSets()
	return reply(r, func(w *abi.Writer) { w.RangeCapacities(core.Capacities(sets)) })
}

//go:wasmexport check_requested
func checkRequested(n uint32) uint64 {
	r := args(n)
	set, addr := r.RangeSet(), r.Addr()
	return reply(r, func(w *abi.Writer) {
		idx, err := set.CheckRequested(addr)
		w.Int(idx)
		// CheckRequested returns nil or a *core.RequestedError.
		re, _ := err.(*core.RequestedError)
		if err != nil && re == nil {
			panic("CheckRequested returned an error that is not a *core.RequestedError")
		}
		w.RequestedError(re)
	})
}
