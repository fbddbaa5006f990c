// Package core holds every allocation decision the etcd IPAM plugin makes,
// as pure functions over plain values.
//
// Nothing here performs I/O, starts goroutines, reads a clock or draws random
// numbers: the same inputs give the same answer on every node of a cluster,
// and the package can be compiled to WebAssembly and run by hosts/wasm exactly
// as hosts/native runs it. The semantics follow the reference host-local
// plugin (containernetworking/plugins, plugins/ipam/host-local): the same
// range defaults, the same validation, the same round-robin search order.
//
// The etcd store does the reading and writing; core decides each step of an
// allocation (Step): which addresses to read or count, which candidates to
// offer in one write, and when the allocation is done or has failed, given
// what every earlier step found.
package core
