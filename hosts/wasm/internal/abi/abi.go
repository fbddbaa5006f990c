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
	// Step takes a core.Request and the answers so far and returns the
	// next core.Action: one call per round of an ADD's I/O.
	Step           = "step"
	Capacities     = "capacities"
	CheckRequested = "check_requested"
)

// Operations lists every operation export (all but Buffer), so that a host
// can check a module provides them all before using it.
var Operations = []string{CanonicalizeRangeSets, ValidateRangeSets, Step, Capacities, CheckRequested}

// Pack joins a result's address and length into an operation's return value.
func Pack(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// Unpack splits an operation's return value into address and length.
func Unpack(v uint64) (ptr, n uint32) { return uint32(v >> 32), uint32(v) }

// Tag bytes of an encoded netip.Addr, shared by Writer and Reader.
const (
	tagInvalid = 0
	tagV4      = 4
	tagV6      = 6
	tagV6Zone  = 7
)
