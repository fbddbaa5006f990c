package store

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Root is the prefix of every key the plugin writes.
const Root = "/etcd-cni/networks/"

const (
	ipsDir          = "ips/"
	containersDir   = "containers/"
	lastReservedDir = "last-reserved/"
	nodesDir        = "nodes/"
	seenDir         = "seen/"
	holdsDir        = "holds/"
	podsDir         = "pods/"
	heldDir         = "held/"
	leasesDir       = "leases/"
	coolingDir      = "cooling/"
	coolLeasesDir   = "cooling-leases/"
)

// keys builds the key names of one network.
type keys struct{ prefix string }

// MaxNameLength bounds network names and container IDs, so that every key
// stays far below etcd's request size limit (1.5 MiB by default) however
// many keys one transaction touches. Runtimes use 64-character IDs.
const MaxNameLength = 1024

// newKeys encodes the network name into the prefix of its keys. Names are
// encoded, never interpreted: url.PathEscape turns "/" into "%2F" (and "%"
// into "%25"), so a name cannot reach outside its prefix, and the encoding
// is one-to-one, so two networks never share keys. ".." stays "..", which
// etcd treats as two ordinary characters: its keys are not paths.
func newKeys(network string) (keys, error) {
	if err := checkName(NetworkName, network); err != nil {
		return keys{}, err
	}
	return keys{prefix: Root + url.PathEscape(network) + "/"}, nil
}

// checkName rejects names that keys could hold but values could not: the
// records are JSON, which would silently replace invalid UTF-8, so such a
// name could be written but never found again.
func checkName(what, name string) error {
	switch {
	case name == "":
		return &NameError{What: what, Reason: "is empty"}
	case len(name) > MaxNameLength:
		return &NameError{What: what, Reason: fmt.Sprintf("is %d bytes long; the limit is %d", len(name), MaxNameLength)}
	case !utf8.ValidString(name):
		return &NameError{What: what, Reason: fmt.Sprintf("%q is not valid UTF-8", name)}
	}
	return nil
}

// CheckAttachment checks a container ID and interface name before
// anything reads or writes their keys. A *NameError says which is wrong.
func CheckAttachment(containerID, ifName string) error {
	if err := checkName(ContainerID, containerID); err != nil {
		return err
	}
	return checkName(IfName, ifName)
}

func (k keys) ip(a netip.Addr) string { return k.prefix + ipsDir + AddrKey(a) }

// ipSpan returns the key range [from, to] as etcd's [key, end).
func (k keys) ipSpan(from, to netip.Addr) (string, string) {
	return k.ip(from), k.ip(to) + "\x00"
}

func (k keys) ips() string { return k.prefix + ipsDir }

// heldMark marks a held address, beside its ips/ key, so that the held
// addresses of a range are one count over [held/<from>, held/<to>].
func (k keys) heldMark(a netip.Addr) string { return k.prefix + heldDir + AddrKey(a) }

func (k keys) heldSpan(from, to netip.Addr) (string, string) {
	return k.heldMark(from), k.heldMark(to) + "\x00"
}

// coolingMark marks a cooling address, beside its ips/ key and bound to
// the same lease, so that a range's cooling addresses are one count over
// [cooling/<from>, cooling/<to>]; its value is when the cooling ends
// (coolingValue), so that the same request sorted by value also says when
// the first of them is free again.
func (k keys) coolingMark(a netip.Addr) string { return k.prefix + coolingDir + AddrKey(a) }

func (k keys) coolingSpan(from, to netip.Addr) (string, string) {
	return k.coolingMark(from), k.coolingMark(to) + "\x00"
}

func (k keys) container(containerID, ifName string) string {
	return k.containerDir(containerID) + url.PathEscape(ifName)
}

// containerDir is the prefix of every attachment of one container: the
// escaped ID holds no "/", so no other container's keys share it.
func (k keys) containerDir(containerID string) string {
	return k.prefix + containersDir + url.PathEscape(containerID) + "/"
}

func (k keys) containers() string { return k.prefix + containersDir }

// nodeDir is the prefix of one node's index: a key per address the node
// allocated, so that GC, reclaim and per-node counts read that node's keys
// and never the whole network's.
func (k keys) nodeDir(node string) string {
	return k.prefix + nodesDir + url.PathEscape(node) + "/"
}

func (k keys) nodeAddr(node string, a netip.Addr) string { return k.nodeDir(node) + AddrKey(a) }

// attachmentRef is the value of a node index key: the attachment key's
// name below containers/, from which parseAttachmentRef gets the names
// back.
func attachmentRef(containerID, ifName string) string {
	return url.PathEscape(containerID) + "/" + url.PathEscape(ifName)
}

func parseAttachmentRef(ref string) (containerID, ifName string, err error) {
	escID, escIf, ok := strings.Cut(ref, "/")
	if !ok {
		return "", "", fmt.Errorf("node index value %q is not CONTAINER/IFNAME", ref)
	}
	if containerID, err = url.PathUnescape(escID); err == nil {
		ifName, err = url.PathUnescape(escIf)
	}
	if err != nil {
		return "", "", fmt.Errorf("node index value %q: %w", ref, err)
	}
	return containerID, ifName, nil
}

// lease is the key of the lease record of a node's sticky holds.
func (k keys) lease(node string) string { return k.prefix + leasesDir + url.PathEscape(node) }

// coolingLease is the key of the lease record of a node's cooling holds:
// a lease of its own, since cooldown and sticky last differently long.
func (k keys) coolingLease(node string) string {
	return k.prefix + coolLeasesDir + url.PathEscape(node)
}

// seen is the key of a node's liveness record.
func (k keys) seen(node string) string { return k.prefix + seenDir + url.PathEscape(node) }

func (k keys) seens() string { return k.prefix + seenDir }

func (k keys) lastReserved(rangeSet int) string {
	return k.prefix + lastReservedDir + strconv.Itoa(rangeSet)
}

// AddrKey writes an address in fixed width, so that key order is address
// order: 203.000.113.002, or all eight IPv6 groups with four digits each.
func AddrKey(a netip.Addr) string {
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%03d.%03d.%03d.%03d", b[0], b[1], b[2], b[3])
	}
	b := a.As16()
	var sb strings.Builder
	for i := 0; i < 16; i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02x%02x", b[i], b[i+1])
	}
	return sb.String()
}

// ParseAddrKey reads an address written by AddrKey.
func ParseAddrKey(s string) (netip.Addr, error) {
	if strings.Contains(s, ".") {
		parts := strings.Split(s, ".")
		if len(parts) != 4 {
			return netip.Addr{}, fmt.Errorf("address key %q is not four fields", s)
		}
		var b [4]byte
		for i, p := range parts {
			v, err := strconv.ParseUint(p, 10, 8)
			if err != nil {
				return netip.Addr{}, fmt.Errorf("address key %q: %w", s, err)
			}
			b[i] = byte(v)
		}
		return netip.AddrFrom4(b), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address key %q is not an address", s)
	}
	return a, nil
}
