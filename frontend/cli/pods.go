package main

import (
	"strings"

	"github.com/etcd-cni/etcd-ipam/store"
)

// parsePod reads NAMESPACE/NAME, as --pod takes it: names that a
// Kubernetes pod can have (store.CheckIdentity), the only ones an
// identity holds.
func parsePod(flag, text string) (namespace, name string, err error) {
	parts := strings.Split(text, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", usageErrorf("%s %q is not NAMESPACE/NAME", flag, text)
	}
	if err := store.CheckIdentity(store.Identity{Namespace: parts[0], Name: parts[1], IfName: "eth0"}); err != nil {
		return "", "", usageErrorf("%s %q: %v", flag, text, err)
	}
	return parts[0], parts[1], nil
}

// parseIdentity reads NAMESPACE/NAME[/IFNAME], as reserve --for takes it;
// the interface is eth0, Kubernetes' pod interface, unless given.
func parseIdentity(flag, text string) (*store.Identity, error) {
	parts := strings.Split(text, "/")
	if len(parts) == 2 {
		parts = append(parts, "eth0")
	}
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, usageErrorf("%s %q is not NAMESPACE/NAME or NAMESPACE/NAME/IFNAME", flag, text)
	}
	id := &store.Identity{Namespace: parts[0], Name: parts[1], IfName: parts[2]}
	if err := store.CheckIdentity(*id); err != nil {
		return nil, usageErrorf("%s %q: %v", flag, text, err)
	}
	return id, nil
}

// podOf is the pod an allocation is for, as ls shows it: its attachment's
// pod, or whom its hold is for; "" if none.
func podOf(a store.Allocation) string {
	switch {
	case a.Pod != nil:
		return a.Pod.String()
	case a.Hold != nil && a.Hold.For != nil:
		return a.Hold.For.Namespace + "/" + a.Hold.For.Name
	}
	return ""
}
