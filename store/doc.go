// Package store keeps a network's allocations in etcd: the key layout, the
// transactions that make reservation and release safe, decoding (and
// recovering damaged) records, and connecting to etcd. Which address to
// take is decided by package core, the order of operations, deadlines and
// retries by package ipam. Its errors are typed (errors.go); it knows
// nothing of CNI.
//
// Every key lives under /etcd-cni/networks/<network>/:
//
//	ips/<address>                  one key per allocated address; the value is an Allocation (JSON)
//	containers/<containerID>/<ifname>  one key per attachment; the value is an Attachment (JSON)
//	last-reserved/<range set index>    the address that range set handed out last (round-robin state)
//
// Addresses in keys are zero-padded (203.000.113.002, 2001:0db8:0000:...)
// so that etcd's byte order is address order and a range read over a span
// of addresses returns its taken addresses in ascending order.
//
// An address key and its attachment key are always created together in one
// transaction that fails when any of them exists, so an address can never
// be handed out twice; both carry the same create revision, which lets a
// release delete only the address keys its own attachment created.
//
// Network names, container IDs and interface names are path-escaped in keys
// (url.PathEscape), so none of them can reach outside its network's prefix
// or be confused with another key.
package store
