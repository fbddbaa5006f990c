package store

import "net/netip"

// Key names for code outside this package that must touch exactly the
// keys an ADD touches without going through its transactions: the scale
// benchmark's floor allocator, which measures what etcd costs for those
// keys alone.

// AttachmentKey is the key of the attachment of (containerID, ifName).
func (n *Network) AttachmentKey(containerID, ifName string) string {
	return n.keys.container(containerID, ifName)
}

// AddressKey is the key that says who holds address a.
func (n *Network) AddressKey(a netip.Addr) string { return n.keys.ip(a) }

// PositionKey is the key of range set rangeSet's round-robin position.
func (n *Network) PositionKey(rangeSet int) string { return n.keys.lastReserved(rangeSet) }
