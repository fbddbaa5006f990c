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

// NodeIndexKey is the key in node's index that points at the attachment
// holding a; NodeIndexValue is its value.
func (n *Network) NodeIndexKey(node string, a netip.Addr) string { return n.keys.nodeAddr(node, a) }

// NodeIndexValue is the value of a node index key: which attachment holds
// the address.
func NodeIndexValue(containerID, ifName string) string { return attachmentRef(containerID, ifName) }

// SeenKey is the key of node's liveness record.
func (n *Network) SeenKey(node string) string { return n.keys.seen(node) }
