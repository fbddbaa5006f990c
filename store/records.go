package store

import (
	"net/netip"
	"time"
)

// Allocation is the value of an ips/<address> key: who holds the address,
// a container's attachment or, with no container, a hold.
type Allocation struct {
	ContainerID string    `json:"containerID,omitempty"`
	IfName      string    `json:"ifName,omitempty"`
	Node        string    `json:"node,omitempty"`
	RangeSet    int       `json:"rangeSet"`
	Created     time.Time `json:"created,omitzero"`
	Pod         *PodRef   `json:"pod,omitempty"`
	// Hold is set on a held address (no container): for whom, why and
	// until when.
	Hold *Hold `json:"hold,omitempty"`
}

// Attachment is the value of a containers/<id>/<ifname> key: every address
// one ADD returned, in result order, so that DEL, CHECK, GC and a repeated
// ADD find them without scanning the network.
type Attachment struct {
	ContainerID string         `json:"containerID"`
	IfName      string         `json:"ifName"`
	Node        string         `json:"node"`
	Created     time.Time      `json:"created"`
	IPs         []AttachedAddr `json:"ips"`
	// Pod is the Kubernetes pod the runtime named, nil if none.
	Pod *PodRef `json:"pod,omitempty"`
}

// AttachedAddr is one address of an attachment, as the ADD returned it.
type AttachedAddr struct {
	Address  netip.Prefix `json:"address"`
	Gateway  netip.Addr   `json:"gateway,omitzero"`
	RangeSet int          `json:"rangeSet"`
	// Reserved is the operator's reservation the address was taken
	// from: DEL turns it back into that hold instead of freeing it.
	Reserved *Hold `json:"reserved,omitempty"`
}

// StoredAttachment is an Attachment with the etcd revisions that let a
// later transaction check it is still the same.
type StoredAttachment struct {
	Attachment
	CreateRevision int64
	ModRevision    int64
	// Damaged is set when the record could not be decoded; the names
	// then come from the key and IPs from the address keys that the
	// same transaction created (see damaged.go).
	Damaged bool
}

// Position is the value of a last-reserved/<range set> key: the range set's
// round-robin position, and who moved it when, so that an allocator can
// tell that other nodes are allocating on the network right now.
type Position struct {
	Addr netip.Addr `json:"ip"`
	Node string     `json:"node,omitempty"`
	At   time.Time  `json:"at,omitzero"`
}
